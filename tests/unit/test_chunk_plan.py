"""The chunk plan, without a database: blacklist before duplicates, first/last row wins whatever order chunks
run in, takeovers, scrub, and the owner's existing live lead."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadimport.options import ImportOptions
from leadimport.rules.chunk_plan import ChunkPlan, decide
from leadimport.rules.pipeline import LeadCandidate
from leadimport.rules.scrub import PhoneFacts

pytestmark = pytest.mark.unit


def row(n: int, phone: str) -> LeadCandidate:
    return LeadCandidate(row_no=n, phone=phone, region="US", time_zone=None, email=None, expires_in_seconds=None,
                         remote_ip=None, lead_priority=None, sub_id=None, tokens={}, row=[phone], source_columns=["caller_id"])


def opts(**kw: Any) -> ImportOptions:
    return ImportOptions.model_validate(kw)


def reasons(plan: ChunkPlan) -> dict[int, str]:
    return {r.row_no: r.reason for r in plan.rejections}


def test_blacklist_comes_before_in_file_duplicates() -> None:
    facts = {"+1": PhoneFacts("+1", blacklisted=True)}
    plan = decide([row(1, "+1"), row(2, "+1"), row(3, "+2")], facts, {}, opts(), "schedule")
    assert reasons(plan) == {1: "blacklisted", 2: "blacklisted"}
    assert [c.row_no for c in plan.create] == [3]
    assert plan.claims == {"+2": 3}


@pytest.mark.parametrize(("policy", "kept"), [("first", 1), ("last", 3)])
def test_inside_a_chunk_the_policy_picks_the_row(policy: str, kept: int) -> None:
    plan = decide([row(1, "+1"), row(2, "+1"), row(3, "+1")], {}, {}, opts(duplicates=policy), "schedule")
    assert [c.row_no for c in plan.create] == [kept]
    assert reasons(plan) == {r: "duplicate_in_file" for r in (1, 2, 3) if r != kept}
    assert plan.claims == {"+1": kept}


def test_a_claim_of_an_earlier_processed_chunk_loses_to_a_lower_row_and_is_taken_over() -> None:
    plan = decide([row(1, "+1")], {}, {"+1": 2}, opts(), "schedule")
    assert [c.row_no for c in plan.create] == [1]
    assert [(t.held_row, t.winner_row) for t in plan.takeovers] == [(2, 1)]
    assert plan.claims == {"+1": 1}
    kept = decide([row(3, "+1")], {}, {"+1": 2}, opts(), "schedule")
    assert reasons(kept) == {3: "duplicate_in_file"} and not kept.takeovers and not kept.claims


def simulate(n_rows: int, phones: list[str], order: list[int], policy: str, chunk_size: int) -> dict[int, str]:
    """Run decide over chunks in `order` with a claims table, as the store does; the final outcome per row."""
    claims: dict[str, int] = {}
    outcome: dict[int, str] = {}
    chunks = [list(range(i, min(i + chunk_size, n_rows))) for i in range(0, n_rows, chunk_size)]
    for k in order:
        plan = decide([row(i + 1, phones[i]) for i in chunks[k]], {}, dict(claims), opts(duplicates=policy),
                      "schedule")
        for t in plan.takeovers:
            outcome[t.held_row] = "duplicate_in_file"
        for r in plan.rejections:
            outcome[r.row_no] = r.reason
        for c in plan.create:
            outcome[c.row_no] = "created"
        claims.update(plan.claims)
    return outcome


@settings(max_examples=200, deadline=None)
@given(phones=st.lists(st.sampled_from(["+1", "+2", "+3"]), min_size=1, max_size=12),
       chunk_size=st.integers(1, 4), policy=st.sampled_from(["first", "last"]), seed=st.integers(0, 10**6))
def test_first_or_last_row_wins_whatever_order_chunks_run_in(phones: list[str], chunk_size: int, policy: str,
                                                             seed: int) -> None:
    n = len(phones)
    order = list(range((n + chunk_size - 1) // chunk_size))
    random.Random(seed).shuffle(order)
    outcome = simulate(n, phones, order, policy, chunk_size)
    for phone in set(phones):
        rows = [i + 1 for i, p in enumerate(phones) if p == phone]
        winner = min(rows) if policy == "first" else max(rows)
        assert outcome[winner] == "created"
        assert all(outcome[r] == "duplicate_in_file" for r in rows if r != winner)


def test_three_rows_in_three_chunks_in_reverse_order_keep_row_1() -> None:
    assert simulate(3, ["+1"] * 3, [2, 1, 0], "first", 1) == {1: "created", 2: "duplicate_in_file",
                                                              3: "duplicate_in_file"}


def test_scrub_and_the_existing_lead_policy() -> None:
    facts = {"+1": PhoneFacts("+1", existing=True), "+2": PhoneFacts("+2", live_lead_id=20),
             "+3": PhoneFacts("+3", opted_out=True, live_lead_id=30)}
    rows = [row(1, "+1"), row(2, "+2"), row(3, "+3"), row(4, "+4")]
    scrub = {"scope": "company", "existing": True, "opted_out": True}
    # existing_leads "update" (the default): the live lead is refreshed, Manage Schedule acts on it
    update = decide(rows, facts, {}, opts(scrub=scrub, lead_management={"manage_schedule": "stop"}), "schedule")
    assert reasons(update) == {1: "scrubbed_existing", 3: "scrubbed_opted_out"}
    assert [(c.row_no, lead) for c, lead in update.update] == [(2, 20)]
    assert update.update[0][0].warnings == ["schedule_stopped"]
    assert update.managed_lead_ids == [20] and [c.row_no for c in update.create] == [4]
    # scrubbed rows still claim their phone: a later row of the same phone is a duplicate, not a second try
    assert update.claims == {"+1": 1, "+2": 2, "+3": 3, "+4": 4}
    skip = decide(rows, facts, {}, opts(scrub=scrub, lead_management={"manage_schedule": "stop",
                                                                       "existing_leads": "skip"}), "schedule")
    assert reasons(skip) == {1: "scrubbed_existing", 2: "duplicate_lead", 3: "scrubbed_opted_out"}
    assert skip.managed_lead_ids == [20] and not skip.update and [c.row_no for c in skip.create] == [4]
    expire = decide(rows, facts, {}, opts(scrub=scrub, lead_management={"expire_existing": True}), "schedule")
    assert expire.expire_leads == [(20, 2)] and [c.row_no for c in expire.create] == [2, 4]
    move = decide(rows, facts, {}, opts(scrub=scrub, lead_management={"move_to_schedule_id": 9}), "schedule")
    assert move.move_leads == [(20, 2)] and [c.row_no for c in move.create] == [2, 4]


def test_a_lead_past_its_expiry_is_not_live_and_is_expired_as_it_is_met() -> None:
    plan = decide([row(1, "+1")], {"+1": PhoneFacts("+1", stale_lead_id=7)}, {},
                  opts(lead_management={"existing_leads": "skip"}), "schedule")
    assert plan.stale_lead_ids == [7] and [c.row_no for c in plan.create] == [1] and not plan.rejections


@pytest.mark.parametrize(("facts", "lm", "warning"), [
    (PhoneFacts("+1", opted_out=True), {}, "not_enrolled_opted_out"),
    (PhoneFacts("+1", blocked=True), {}, "not_enrolled_blocked"),
    (PhoneFacts("+1"), {"opt": "opt_out"}, "not_enrolled_opted_out"),
    (PhoneFacts("+1"), {"block": "block"}, "not_enrolled_blocked"),
    (PhoneFacts("+1", opted_out=True), {"opt": "opt_in"}, None),
    (PhoneFacts("+1", blocked=True), {"block": "unblock"}, None),
])
def test_a_contact_that_takes_no_calls_gets_its_lead_but_no_schedule_run(facts: PhoneFacts, lm: dict[str, Any],
                                                                          warning: str | None) -> None:
    plan = decide([row(1, "+1")], {"+1": facts}, {}, opts(lead_management=lm), "schedule")
    assert [c.row_no for c in plan.create] == [1]
    assert plan.not_enrolled == ({1} if warning else set())
    assert plan.create[0].warnings == ([warning] if warning else [])


def test_manage_schedule_never_starts_a_run_for_a_contact_that_takes_no_calls() -> None:
    facts = {"+1": PhoneFacts("+1", opted_out=True, live_lead_id=10)}
    start = decide([row(1, "+1")], facts, {}, opts(lead_management={"manage_schedule": "start"}), "schedule")
    assert not start.managed_lead_ids and not start.stop_lead_ids and start.update[0][0].warnings == []
    restart = decide([row(1, "+1")], facts, {}, opts(lead_management={"manage_schedule": "restart"}), "schedule")
    assert not restart.managed_lead_ids and restart.stop_lead_ids == [10]
    assert restart.update[0][0].warnings == ["schedule_stopped"]
