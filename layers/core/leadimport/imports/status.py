"""The import's lifecycle, written once: its statuses and the transitions between them.

Everything that moves an import (the repository's SQL, the API, the stuck detector, the page)
asks this table. A final status (completed, failed, cancelled) never changes again; the database
holds the same table (migration 0004, checked against this one by a test) and refuses any other
change, so even a hand-written UPDATE cannot bring a failed import back.

    awaiting_upload ──upload──> queued ──claim──> splitting ──split done──> processing ──last chunk──> completed
                                  ^                 │  └──all chunks already done──────────────────────> completed
                                  │ start           └──preview──> awaiting_confirmation
    every non-final status ──> failed | cancelled
"""

from __future__ import annotations

from enum import StrEnum


class ImportStatus(StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    QUEUED = "queued"
    SPLITTING = "splitting"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL

    def can_transition_to(self, target: ImportStatus) -> bool:
        return target in TRANSITIONS[self]


S = ImportStatus
FINAL: frozenset[ImportStatus] = frozenset({S.COMPLETED, S.FAILED, S.CANCELLED})
# Statuses in which work is under way and the stuck detector watches progress.
ACTIVE: frozenset[ImportStatus] = frozenset({S.QUEUED, S.SPLITTING, S.PROCESSING})
# Statuses an import can be created in (not a transition: the row is new).
INITIAL: frozenset[ImportStatus] = frozenset({S.AWAITING_UPLOAD, S.QUEUED, S.FAILED})

_ENDINGS = frozenset({S.FAILED, S.CANCELLED})
TRANSITIONS: dict[ImportStatus, frozenset[ImportStatus]] = {
    S.AWAITING_UPLOAD: frozenset({S.QUEUED}) | _ENDINGS,
    S.AWAITING_CONFIRMATION: frozenset({S.QUEUED}) | _ENDINGS,
    S.QUEUED: frozenset({S.SPLITTING}) | _ENDINGS,
    S.SPLITTING: frozenset({S.AWAITING_CONFIRMATION, S.PROCESSING, S.COMPLETED}) | _ENDINGS,
    S.PROCESSING: frozenset({S.COMPLETED}) | _ENDINGS,
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
}


def can_transition(source: str, target: str) -> bool:
    """True when an import in `source` may move to `target` (unknown statuses: False)."""
    try:
        return ImportStatus(source).can_transition_to(ImportStatus(target))
    except ValueError:
        return False


def sources_of(target: ImportStatus) -> list[str]:
    """The statuses an import may be in to move to `target`: the SQL's `status = ANY(...)` guard."""
    return sorted(s.value for s, targets in TRANSITIONS.items() if target in targets)


def all_transitions() -> list[tuple[str, str]]:
    return sorted((s.value, t.value) for s, targets in TRANSITIONS.items() for t in targets)


__all__ = ["ACTIVE", "FINAL", "INITIAL", "TRANSITIONS", "ImportStatus", "all_transitions", "can_transition",
           "sources_of"]
