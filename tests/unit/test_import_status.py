"""The import lifecycle table: final statuses are final, every status is reachable, the SQL guard agrees."""

from __future__ import annotations

import itertools

import pytest

from leadimport.imports.status import (
    ACTIVE,
    FINAL,
    INITIAL,
    TRANSITIONS,
    ImportStatus,
    all_transitions,
    can_transition,
    sources_of,
)

pytestmark = pytest.mark.unit


def test_a_final_status_never_changes() -> None:
    for final in FINAL:
        assert TRANSITIONS[final] == frozenset()
        for target in ImportStatus:
            assert not can_transition(final, target)


def test_every_status_is_reachable_from_a_status_an_import_is_created_in() -> None:
    seen = set(INITIAL)
    frontier = list(INITIAL)
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(ImportStatus)


def test_every_non_final_status_can_fail_and_be_cancelled() -> None:
    for status in set(ImportStatus) - FINAL:
        assert can_transition(status, "failed") and can_transition(status, "cancelled")
    assert ACTIVE < set(ImportStatus) - FINAL


@pytest.mark.parametrize(("source", "target"), list(itertools.product(list(ImportStatus), list(ImportStatus))))
def test_sources_of_agrees_with_the_table(source: ImportStatus, target: ImportStatus) -> None:
    assert (source.value in sources_of(target)) == source.can_transition_to(target)


def test_the_failed_import_cannot_come_back_as_completed_or_processing() -> None:
    assert not can_transition("failed", "completed")
    assert not can_transition("failed", "processing")
    assert not can_transition("cancelled", "processing")
    assert not can_transition("processing", "splitting")
    assert not can_transition("no-such-status", "failed")
    assert ("processing", "completed") in all_transitions()
