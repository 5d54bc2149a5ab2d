"""The chunk's decisions, as one pure function: `decide(candidates, facts, claims, options) -> ChunkPlan`.

Given the rows that passed the row rules (`LeadCandidate`s), what the database knows about their
phones (`PhoneFacts`) and which row of the import holds each phone so far (`claims`, written by
chunks processed earlier), it decides, in this order (the first rejection of a row wins):

1. blacklist: a blacklisted number is rejected on every row it appears on;
2. in-file duplicates: one row per phone per import keeps it, the first or the last by the
   `duplicates` policy, whatever order chunks run in. Inside the chunk the policy picks; against an
   earlier-processed chunk the claim decides, and when this chunk's row should win, the holding row is
   *taken over* (it becomes duplicate_in_file and its lead, if any, is expired by the store);
3. scrub: scope history (existing, dialed, connected, converted, dispositions), then the contact's flags;
4. the owner's existing live lead (a lead past its expiry is not live: the plan expires it as it meets it):
   Expire Existing replaces it, Move To Another Schedule moves it away, otherwise `existing_leads`
   decides: `update` refreshes it with the row's values (counted as updated), `skip` records the row as
   `duplicate_lead`; in both, Manage Schedule acts on the existing lead's run;
5. calls: a contact that is opted out or blocked (after this import's own Opt-Out/Opt-In, Block/Unblock)
   gets no schedule run: its new lead is created for inbound matching only, with a warning, and Manage
   Schedule never starts a run for it.

No I/O here: the service reads the facts and claims, calls `decide`, and the store applies the plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from leadimport.options import ImportOptions
from leadimport.reasons import Reason, RowWarning
from leadimport.rules.pipeline import LeadCandidate, RowRejection
from leadimport.rules.scrub import NO_FACTS, PhoneFacts, blacklist_reason, scrub_reason


@dataclass(frozen=True, slots=True)
class Takeover:
    """A row of an earlier-processed chunk that loses its phone to `winner_row` of this chunk."""

    held_row: int
    winner_row: int
    message: str
    phone: str


@dataclass(slots=True)
class ChunkPlan:
    create: list[LeadCandidate] = field(default_factory=list)  # rows that get a new lead, in row order
    update: list[tuple[LeadCandidate, int]] = field(default_factory=list)  # (row, the live lead it refreshes)
    rejections: list[RowRejection] = field(default_factory=list)  # this chunk's rows, rejected
    claims: dict[str, int] = field(default_factory=dict)  # phone -> row of this chunk that holds it now
    takeovers: list[Takeover] = field(default_factory=list)
    expire_leads: list[tuple[int, int]] = field(default_factory=list)  # Expire Existing: (lead id, row)
    move_leads: list[tuple[int, int]] = field(default_factory=list)  # Move To Another Schedule: (lead id, row)
    move_without_run: set[int] = field(default_factory=set)  # moved leads of contacts that take no calls
    stale_lead_ids: list[int] = field(default_factory=list)  # live by status, past their expiry: expire them
    managed_lead_ids: list[int] = field(default_factory=list)  # Manage Schedule acts on these
    stop_lead_ids: list[int] = field(default_factory=list)  # Restart of a contact that takes no calls: stop only
    not_enrolled: set[int] = field(default_factory=set)  # rows whose new lead gets no schedule run


def decide(candidates: Iterable[LeadCandidate], facts: Mapping[str, PhoneFacts], claims: Mapping[str, int],
           options: ImportOptions, owner_type: str) -> ChunkPlan:
    plan = ChunkPlan()
    policy = options.duplicates

    kept: list[LeadCandidate] = []
    for c in candidates:
        hit = blacklist_reason(facts.get(c.phone, NO_FACTS))
        if hit:
            plan.rejections.append(RowRejection(c.row_no, hit[0], hit[1], c.values))
        else:
            kept.append(c)

    winners: list[LeadCandidate] = []
    for c in _one_row_per_phone(kept, policy, plan.rejections):
        held = claims.get(c.phone)
        if held is not None and held != c.row_no:
            if keeps_phone(held, c.row_no, policy):
                plan.rejections.append(RowRejection(c.row_no, Reason.DUPLICATE_IN_FILE,
                                                    duplicate_message(held, policy), c.values))
                continue
            plan.takeovers.append(Takeover(held, c.row_no, duplicate_message(c.row_no, policy), c.phone))
        plan.claims[c.phone] = c.row_no
        winners.append(c)

    lm = options.lead_management
    manages = lm.manage_schedule != "nothing" and owner_type == "schedule"
    for c in winners:
        f = facts.get(c.phone, NO_FACTS)
        hit = scrub_reason(f, options.scrub)
        if hit:
            plan.rejections.append(RowRejection(c.row_no, hit[0], hit[1], c.values))
            continue
        if f.stale_lead_id is not None:
            plan.stale_lead_ids.append(f.stale_lead_id)
        no_calls = takes_no_calls(f, options)
        if f.live_lead_id is not None:
            if lm.expire_existing:
                plan.expire_leads.append((f.live_lead_id, c.row_no))
            elif lm.move_to_schedule_id is not None:
                plan.move_leads.append((f.live_lead_id, c.row_no))
                if no_calls is not None:
                    plan.move_without_run.add(f.live_lead_id)
            else:
                done: str | None = None  # what Manage Schedule does to the existing lead's run
                if manages:
                    if no_calls is None:
                        plan.managed_lead_ids.append(f.live_lead_id)
                        done = lm.manage_schedule
                    elif lm.manage_schedule in ("stop", "restart"):
                        plan.stop_lead_ids.append(f.live_lead_id)
                        done = "stop"
                if lm.existing_leads == "update":
                    if done is not None:
                        c.warnings.append(_MANAGED_WARNING[done])
                    plan.update.append((c, f.live_lead_id))
                else:
                    plan.rejections.append(RowRejection(
                        c.row_no, Reason.DUPLICATE_LEAD, existing_lead_message(owner_type, lm.manage_schedule),
                        c.values))
                continue
        if no_calls is not None:
            c.warnings.append(no_calls)
            plan.not_enrolled.add(c.row_no)
        plan.create.append(c)
    return plan


_MANAGED_WARNING = {"stop": RowWarning.SCHEDULE_STOPPED, "start": RowWarning.SCHEDULE_STARTED,
                    "restart": RowWarning.SCHEDULE_RESTARTED}


def takes_no_calls(facts: PhoneFacts, options: ImportOptions) -> str | None:
    """The warning of a contact that must not be called (opted out or blocked, after this import's own flags),
    or None when it may be."""
    lm = options.lead_management
    opted_out = lm.opt == "opt_out" or (lm.opt != "opt_in" and facts.opted_out)
    blocked = lm.block == "block" or (lm.block != "unblock" and facts.blocked)
    if opted_out:
        return RowWarning.NOT_ENROLLED_OPTED_OUT
    if blocked:
        return RowWarning.NOT_ENROLLED_BLOCKED
    return None


def keeps_phone(held: int, row: int, policy: str) -> bool:
    """True when the row holding the phone keeps it against `row` (first: the lower row; last: the higher)."""
    return held < row if policy == "first" else held > row


def duplicate_message(winner_row: int, policy: str) -> str:
    which = "an earlier" if policy == "first" else "a later"
    return f"The same phone number appears on {which} row ({winner_row}) of this file, which was imported instead."


def existing_lead_message(owner_type: str, manage_schedule: str) -> str:
    done = {"stop": " Its schedule run was stopped.", "start": " Its schedule run was started (if it was not running).",
            "restart": " Its schedule run was restarted at the first action."}.get(manage_schedule, "")
    return (f"This {owner_type} already has a live lead for this number, which was kept;"
            f" choose \"Expire Existing Leads\" to replace it.{done}")


def _one_row_per_phone(candidates: list[LeadCandidate], policy: str,
                       rejections: list[RowRejection]) -> list[LeadCandidate]:
    """Inside the chunk: the policy's row of each phone; the others are duplicate_in_file."""
    best: dict[str, LeadCandidate] = {}
    for c in candidates:
        held = best.get(c.phone)
        if held is None or not keeps_phone(held.row_no, c.row_no, policy):
            best[c.phone] = c
    out = []
    for c in candidates:
        if best[c.phone] is c:
            out.append(c)
        else:
            rejections.append(RowRejection(c.row_no, Reason.DUPLICATE_IN_FILE,
                                           duplicate_message(best[c.phone].row_no, policy), c.values))
    return out


__all__ = ["ChunkPlan", "Takeover", "decide", "duplicate_message", "existing_lead_message", "keeps_phone"]
