"""Use case: one chunk of rows -> contacts, leads, tokens and enrollments, or recorded rejections. Exactly once.

Per chunk, inside ONE database transaction:
  1. the done-marker (import, chunk) — a redelivered chunk finds it and changes nothing;
  2. advisory locks on (company, phone) for every phone of the chunk, in a global order;
  3. one query for every fact the scrub needs (blacklist, contacts, history in scope, live lead);
  4. in-file duplicates decided against the import's phone claims (whatever order chunks run in);
  5. set-based writes: contacts, leads, enrollments, rejections;
  6. tokens stamped in Redis for the leads just created; the import's counters last (its row stays locked only
     until COMMIT, not through the Redis round trips), then COMMIT.
If Redis or the database fails anywhere, the transaction rolls back and the message is retried:
a lead is never committed without its tokens, and never created twice.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from leadimport.imports import repository as import_repo
from leadimport.imports.status import ImportStatus
from leadimport.messages import ChunkMessage
from leadimport.options import ImportOptions
from leadimport.reasons import Reason
from leadimport.rules.chunk_plan import Takeover, decide
from leadimport.rules.pipeline import CompanyRefs, LeadCandidate, RowRejection, RowRules
from leadimport.services.token_reconciliation import reconcile_import_tokens
from leadimport.store import chunks as sql
from leadimport.store.companies import company_refs
from leadimport.store.db import Database
from leadimport.store.row_warnings import insert_row_warnings
from leadimport.store.tokens import TokenStamp, TokenStore

logger = Logger(child=True)
_UNPROCESSED_MESSAGE = {
    ImportStatus.CANCELLED: "Not imported: the import was cancelled before this row was processed.",
    ImportStatus.FAILED: "Not imported: the import failed before this row was processed (see the import's error).",
}
ACTION_CACHE_SECONDS = 60  # a schedule's first action, cached per container


@dataclass(frozen=True)
class ChunkResult:
    import_id: str
    chunk_no: int
    outcome: str  # processed | duplicate | skipped | unknown_import | throttled (over its import's cap: later)
    created: int = 0
    updated: int = 0
    rejected: int = 0
    unprocessed: int = 0
    import_status: str | None = None
    seconds: float = 0.0  # a processed chunk: from reading its import to COMMIT (its rows per second)


def _no_phase(_name: str) -> AbstractContextManager[None]:
    return nullcontext()


# Where a chunk's time goes, phase by phase (rules, facts, decide, write, stamp, counters): the worker wraps each
# in an X-Ray subsegment when tracing is on; otherwise a null context (well under a microsecond a chunk).
PhaseTimer = Callable[[str], AbstractContextManager[Any]]


class ChunkImporter:
    def __init__(self, db: Database, tokens: TokenStore, phase: PhaseTimer = _no_phase):
        self.db = db
        self.tokens = tokens
        self.phase = phase
        self._actions: dict[tuple[int, int], tuple[float, tuple[int, int] | None]] = {}
        self._refs: dict[int, tuple[float, CompanyRefs]] = {}

    def record_unreadable(self, body: str, error: str) -> str | None:
        return record_unreadable_chunk(self.db, body, error)

    def record_failed_chunk(self, msg: ChunkMessage, error: str, attempts: int) -> str | None:
        """The last attempt of a chunk that failed every time: its rows are listed as unprocessed (the import
        accounts for every row), and the import fails with a sentence naming the chunk, its rows and the error
        (never a value). Returns the import's status after, or None when the chunk was done meanwhile."""
        imp = self._load_import(msg.import_id)
        if imp is None:
            return None
        last = max([n for n, _ in msg.rows] + [r.row_no for r in msg.rejected], default=msg.first_row)
        with self.db.transaction() as conn:
            if not sql.claim_chunk(conn, msg.import_id, msg.chunk_no, msg.first_row, msg.row_count, "failed"):
                return None
            # Failed first, in the same transaction: counting this chunk as done must not complete the import.
            import_repo.fail_in(conn, msg.import_id, (
                f"Chunk {msg.chunk_no} of this import (rows {msg.first_row} to {last}) could not be imported after "
                f"{attempts} attempts: {error}. The rows of the other chunks were imported; this chunk's rows are "
                "listed as unprocessed in the errors. Contact support with the import id if the cause is not clear."))
            status, _ = self._count_unprocessed(conn, msg, imp, (
                f"Not imported: this row's chunk ({msg.chunk_no}) failed {attempts} times ({error}); "
                "fix the cause and import the error CSV's unprocessed rows again."))
        return status

    def import_chunk(self, msg: ChunkMessage) -> ChunkResult:
        started = time.perf_counter()
        result = self._import_chunk(msg)
        return replace(result, seconds=time.perf_counter() - started) if result.outcome == "processed" else result

    def _import_chunk(self, msg: ChunkMessage) -> ChunkResult:
        imp = self._load_import(msg.import_id)
        if imp is None:
            logger.error("chunk for an unknown import dropped", extra={"import_id": msg.import_id, "chunk": msg.chunk_no})
            return ChunkResult(msg.import_id, msg.chunk_no, "unknown_import")
        if imp["status"] in (ImportStatus.CANCELLED, ImportStatus.FAILED):
            return self._skip(msg, imp)

        cap = imp.get("max_concurrency")
        if cap and not self._slot_free(msg.import_id, cap):
            # Every slot is taken by its other chunks: back to the queue before any row is read (the write
            # transaction takes the slot for real; one freed between this look and that one is rare).
            return self._throttled(msg, imp)
        options = ImportOptions.model_validate(imp["options"])
        rules = RowRules(options, msg.source_columns, msg.columns, self._company_refs(imp["company_id"]))
        candidates: list[LeadCandidate] = []
        rejections: list[RowRejection] = [
            RowRejection(r.row_no, r.reason, r.message, rules.source_values(r.values)) for r in msg.rejected
        ]
        with self.phase("rules"):
            for row_no, values in msg.rows:
                result = rules.apply(row_no, values, msg.warnings_of(row_no))
                if isinstance(result, LeadCandidate):
                    candidates.append(result)
                else:
                    rejections.append(result)
        return self._write(msg, imp, options, candidates, rejections)

    # ------------------------------------------------------------------------------------------

    def _load_import(self, import_id: str) -> dict[str, Any] | None:
        return import_repo.import_for_chunk(self.db, import_id)

    def _skip(self, msg: ChunkMessage, imp: dict[str, Any]) -> ChunkResult:
        """Cancelled or failed import: the chunk is counted as unprocessed and its rows kept for download."""
        with self.db.transaction() as conn:
            if not sql.claim_chunk(conn, msg.import_id, msg.chunk_no, msg.first_row, msg.row_count, "skipped"):
                return ChunkResult(msg.import_id, msg.chunk_no, "duplicate")
            status, count = self._count_unprocessed(conn, msg, imp, _UNPROCESSED_MESSAGE[imp["status"]])
        return ChunkResult(msg.import_id, msg.chunk_no, "skipped", unprocessed=count, import_status=status)

    def _count_unprocessed(self, conn: Any, msg: ChunkMessage, imp: dict[str, Any], message: str) -> tuple[str, int]:
        """Every row of the chunk listed as unprocessed (with its values, for the error CSV) and counted so;
        returns the import's status after and the row count."""
        rules = RowRules(ImportOptions.model_validate(imp["options"]), msg.source_columns, msg.columns)
        rows = [(n, v) for n, v in msg.rows] + [(r.row_no, r.values) for r in msg.rejected]
        sql.insert_rejections(conn, msg.import_id, [RowRejection(n, Reason.UNPROCESSED, message,
                                                                 rules.source_values(v)) for n, v in rows])
        status = import_repo.add_chunk_counters(conn, msg.import_id, chunks=1, processed=0, created=0, updated=0,
                                                rejected=0, unprocessed=len(rows), rejections={}, warnings={})
        return status, len(rows)

    def _write(self, msg: ChunkMessage, imp: dict[str, Any], options: ImportOptions,
               candidates: list[LeadCandidate], rejections: list[RowRejection]) -> ChunkResult:
        """Read the facts, let `decide` plan the chunk, apply the plan: all in one transaction."""
        try:
            try:
                return self._write_running(msg, imp, options, candidates, list(rejections))
            except Exception as exc:
                if not sql.is_claim_conflict(exc):
                    raise
                # The plan met a claim or a live lead it did not know of (another writer deleted a claimed phone's
                # contact or ended its lead, or made a lead live without the phone's lock meanwhile): rolled back;
                # planned again with the facts read again and every claim read.
                logger.info("chunk planned again with every phone claim read",
                            extra={"import_id": msg.import_id, "chunk": msg.chunk_no})
                return self._write_running(msg, imp, options, candidates, list(rejections), every_claim=True)
        except _ImportEndedError as ended:  # cancelled or failed since it was read: rolled back, rows unprocessed
            return self._skip(msg, {**imp, "status": ended.status})
        except _ThrottledError:  # its import's other chunks hold every slot: nothing written, it comes back later
            return self._throttled(msg, imp)

    def _slot_free(self, import_id: str, cap: int) -> bool:
        """Whether one of the import's write slots is free now (taken and let go at once)."""
        with self.db.transaction() as conn:
            return sql.take_import_slot(conn, import_id, cap)

    def _throttled(self, msg: ChunkMessage, imp: dict[str, Any]) -> ChunkResult:
        logger.info("chunk over its import's cap: it goes back to the queue",
                    extra={"import_id": msg.import_id, "chunk": msg.chunk_no, "cap": imp.get("max_concurrency")})
        return ChunkResult(msg.import_id, msg.chunk_no, "throttled")

    def _write_running(self, msg: ChunkMessage, imp: dict[str, Any], options: ImportOptions,
                       candidates: list[LeadCandidate], rejections: list[RowRejection],
                       every_claim: bool = False) -> ChunkResult:
        company_id: int = imp["company_id"]
        owner_type: str = imp["owner_type"]
        owner_id: int = imp["owner_id"]
        lm = options.lead_management
        with self.db.transaction() as conn:
            cap = imp.get("max_concurrency")  # read with the import for every chunk: a change applies at once
            if cap and not sql.take_import_slot(conn, msg.import_id, cap):
                raise _ThrottledError
            claimed, status_now = sql.claim_chunk_of_running_import(conn, msg.import_id, msg.chunk_no, msg.first_row,
                                                                    msg.row_count)
            if not claimed:
                return ChunkResult(msg.import_id, msg.chunk_no, "duplicate")
            if status_now in (ImportStatus.CANCELLED, ImportStatus.FAILED):
                raise _ImportEndedError(status_now)
            # Facts: locks first (they serialize every writer of these phones), then what the rules need.
            with self.phase("facts"):
                phones = sorted({c.phone for c in candidates})
                sql.lock_phones(conn, company_id, phones)
                scope_offer = (sql.scope_offer_id(conn, company_id, owner_type, owner_id)
                               if options.scrub.scope == "offer" else None)
                facts = sql.phone_facts(conn, company_id=company_id, import_id=msg.import_id, owner_type=owner_type,
                                        owner_id=owner_id, phones=phones, scope=options.scrub.scope,
                                        scope_offer_id=scope_offer)
                # A phone this import claimed in an earlier chunk had facts then (a row claims a phone when it creates
                # a lead and its contact, refreshes or skips the owner's live lead, or is scrubbed by its contact or
                # history), and nearly always still has: the claims are read only for the phones with facts (a
                # tenth of a new list's), every phone in a dry run (it writes no contact or lead). A lead keeps its
                # contact, so its phone always has facts (and a lead another writer deletes or re-keys leaves its
                # claim recorded: migration 0014). Should another writer have removed the facts of a phone with a
                # recorded claim since, the new claim's insert or the new lead's check meets the earlier claim: the
                # chunk is planned again with every claim read (_write).
                claims = sql.phone_claims(conn, company_id, msg.import_id,
                                          phones if options.dry_run or every_claim else list(facts))

            with self.phase("decide"):
                plan = decide(candidates, facts, {p: claim.row_no for p, claim in claims.items()}, options, owner_type)
            rejections.extend(plan.rejections)
            with self.phase("write"):  # apply the plan
                lost_to_takeover = Takeovers()
                if plan.takeovers:
                    lost_to_takeover = self._take_over(conn, msg.import_id, company_id, plan.takeovers,
                                                       {t.held_row for t in plan.takeovers if claims[t.phone].refreshed})
                # A row that creates a lead holds its phone by that lead (phone_claims): recorded are the others,
                # and a phone an earlier row held (its holder changes). Fewer rows and index entries per lead: at
                # 1M rows the claims insert was 5.6 us of PostgreSQL per row.
                by_lead = set() if options.dry_run else {c.row_no for c in plan.create}
                sql.save_phone_claims(conn, msg.import_id,
                                      {p: row for p, row in plan.claims.items() if row not in by_lead or p in claims},
                                      {c.row_no for c, _ in plan.update},
                                      {p for p, claim in claims.items() if claim.recorded})
                if lm.copy_to_this_schedule_from is not None and plan.create:
                    self._copy_from(conn, company_id, lm.copy_to_this_schedule_from.type,
                                    lm.copy_to_this_schedule_from.id, plan.create)
                stamps: list[TokenStamp] = []
                if options.dry_run:
                    created_count, updated_count = len(plan.create), len(plan.update)
                else:
                    sql.expire_leads(conn, company_id, plan.stale_lead_ids)  # past their expiry: dead for every rule
                    sql.apply_contact_flags(conn, company_id, msg.import_id, candidates, lm.opt, lm.block)
                    sql.expire_leads_logged(conn, company_id, msg.import_id, plan.expire_leads)
                    stamps.extend(self._move(conn, company_id, msg.import_id, plan.move_leads,
                                             lm.move_to_schedule_id, plan.move_without_run))
                    if plan.managed_lead_ids:
                        action = self._first_action(conn, company_id, owner_id)
                        sql.manage_schedule_runs(
                            conn, company_id, msg.import_id, owner_id, plan.managed_lead_ids, lm.manage_schedule,
                            action[0] if action else None,
                            datetime.now(UTC) + timedelta(minutes=action[1]) if action else None)
                    sql.end_runs(conn, company_id, msg.import_id, plan.stop_lead_ids)
                    now = datetime.now(UTC)
                    refreshed = sql.update_leads(
                        conn, company_id, msg.import_id,
                        [(c, lead_id, _expires_at(c, options, now)) for c, lead_id in plan.update],
                        lm.max_contact_attempts)
                    updated_count = len(refreshed)
                    stamps.extend(TokenStamp(company_id, owner_type, owner_id, phone, tokens, expires_at)
                                  for phone, tokens, expires_at in refreshed)
                    known_contacts = {p: f.contact_id for p, f in facts.items() if f.contact_id is not None}
                    created = self._create_leads(conn, msg.import_id, company_id, owner_type, owner_id,
                                                 plan.create, plan.not_enrolled, options, known_contacts)
                    created_count = len(created)
                    stamps.extend(TokenStamp(company_id, owner_type, owner_id, lead.candidate.phone,
                                             lead.candidate.tokens, lead.expires_at, lead.tokens_json)
                                  for lead in created)

                all_rejections = rejections + lost_to_takeover.rejections
                sql.insert_rejections(conn, msg.import_id, all_rejections)
                warnings = Counter(w for c in [*plan.create, *(c for c, _ in plan.update)] for w in c.warnings)
                insert_row_warnings(conn, msg.import_id, [*plan.create, *(c for c, _ in plan.update)])
                sql.record_chunk_counts(conn, msg.import_id, msg.chunk_no, created_count, updated_count,
                                        len(rejections))
            if stamps:
                # Inside the transaction: a Redis failure rolls the chunk back for a retry.
                with self.phase("stamp"):
                    self.tokens.stamp(stamps)
            # Last: the import's row is locked by this update until COMMIT, and the import's other chunks update it
            # too; before the stamp, they waited for this chunk's Redis round trips.
            with self.phase("counters"):
                status = import_repo.add_chunk_counters(
                    conn, msg.import_id, chunks=1, processed=msg.row_count,
                    created=created_count - lost_to_takeover.created, updated=updated_count - lost_to_takeover.updated,
                    rejected=len(rejections) + lost_to_takeover.created + lost_to_takeover.updated,
                    unprocessed=0, rejections=dict(Counter(r.reason for r in all_rejections)), warnings=dict(warnings),
                )
        logger.info("chunk imported", extra={"import_id": msg.import_id, "chunk": msg.chunk_no,
                                             "created_leads": created_count, "updated_leads": updated_count,
                                             "rejected_rows": len(rejections), "import_status": status})
        if status == ImportStatus.COMPLETED and not options.dry_run:
            self._reconcile_tokens(msg.import_id)
        return ChunkResult(msg.import_id, msg.chunk_no, "processed", created=created_count, updated=updated_count,
                           rejected=len(rejections), import_status=status)

    def _create_leads(self, conn: Any, import_id: str, company_id: int, owner_type: str, owner_id: int,
                      final: list[LeadCandidate], not_enrolled: set[int], options: ImportOptions,
                      known_contacts: dict[str, int]) -> list[sql.NewLead]:
        """Contacts, then leads with their enrollments; returns the leads created."""
        if not final:
            return []
        lm = options.lead_management
        if lm.opt is None and lm.block is None:
            # The facts know every contact of these phones (read under their locks): the lead's statement creates
            # the missing ones.
            contacts: dict[str, int] = known_contacts
        else:
            # Opt/Block flags were applied to every row's contact already (apply_contact_flags created the missing
            # ones in this transaction, after the facts were read): look them up or create them, keeping the flags.
            contacts = sql.upsert_contacts(conn, company_id, sorted(final, key=lambda c: c.phone), None, None)
        now = datetime.now(UTC)
        leads = [sql.NewLead(c, contacts.get(c.phone), _expires_at(c, options, now), sql.encode_tokens(c.tokens))
                 for c in final]
        sql.insert_leads(  # every lead, or ClaimConflictError
            conn, company_id=company_id, owner_type=owner_type, owner_id=owner_id, import_id=import_id, leads=leads,
            max_contact_attempts=lm.max_contact_attempts,
            enroll_in=self._enrollments(conn, company_id, owner_type, owner_id, options, now),
            not_enrolled=not_enrolled,
        )
        return leads

    def _enrollments(self, conn: Any, company_id: int, owner_type: str, owner_id: int, options: ImportOptions,
                     now: datetime) -> list[tuple[int, int, datetime]]:
        """(schedule, first action position, next action time) for each schedule a new lead is enrolled in:
        the owner schedule, and the "Add To Schedule" one; none when "Schedule Leads?" is off."""
        lm = options.lead_management
        if not lm.schedule_leads:
            return []
        schedules = [owner_id] if owner_type == "schedule" else []
        if lm.add_to_schedule_id is not None:
            schedules.append(lm.add_to_schedule_id)
        out = []
        for schedule_id in schedules:
            action = self._first_action(conn, company_id, schedule_id)
            if action is not None:
                out.append((schedule_id, action[0], now + timedelta(minutes=action[1])))
        return out

    def _reconcile_tokens(self, import_id: str) -> None:
        """The import just completed: tokens Redis lost meanwhile (a restart, a failover) are stamped again. Best
        effort here (the chunk is committed); the sweep checks any import this did not finish for."""
        try:
            reconcile_import_tokens(self.db, self.tokens, import_id)
        except Exception:  # noqa: BLE001 - the sweep does it later
            logger.warning("token check at completion failed; the sweep will do it", extra={"import_id": import_id},
                           exc_info=True)

    def _company_refs(self, company_id: int) -> CompanyRefs:
        """The company's traffic sources and buyers (rows may name their own), cached per container."""
        cached = self._refs.get(company_id)
        if cached is None or cached[0] < time.monotonic():
            cached = (time.monotonic() + ACTION_CACHE_SECONDS, company_refs(self.db, company_id))
            self._refs[company_id] = cached
        return cached[1]

    def _first_action(self, conn: Any, company_id: int, schedule_id: int) -> tuple[int, int] | None:
        key = (company_id, schedule_id)
        cached = self._actions.get(key)
        if cached is None or cached[0] < time.monotonic():
            cached = (time.monotonic() + ACTION_CACHE_SECONDS, sql.first_action(conn, company_id, schedule_id))
            self._actions[key] = cached
        return cached[1]

    def _move(self, conn: Any, company_id: int, import_id: str, leads: list[tuple[int, int]],
              schedule_id: int | None, without_run: set[int]) -> list[TokenStamp]:
        """Move To Another Schedule; returns the moved leads' tokens to stamp under their new owner."""
        if not leads or schedule_id is None:
            return []
        action = self._first_action(conn, company_id, schedule_id)
        moved = sql.move_leads(conn, company_id, import_id, leads, schedule_id, action[0] if action else None,
                               datetime.now(UTC) + timedelta(minutes=action[1]) if action else None, without_run)
        return [TokenStamp(company_id, "schedule", schedule_id, phone, tokens, expires_at)
                for phone, tokens, expires_at in moved]

    def _copy_from(self, conn: Any, company_id: int, owner_type: str, owner_id: int,
                   final: list[LeadCandidate]) -> None:
        """Copy To This Schedule: a new lead takes the source owner's lead's tokens and email where the
        row has none (the row's own values win)."""
        sources = sql.source_leads(conn, company_id, owner_type, owner_id, [c.phone for c in final])
        for c in final:
            source = sources.get(c.phone)
            if source is not None:
                tokens, email = source
                c.tokens = {**tokens, **c.tokens}
                c.email = c.email or email

    def _take_over(self, conn: Any, import_id: str, company_id: int, takeovers: list[Takeover],
                   refreshed: set[int]) -> Takeovers:
        """Rows of earlier-processed chunks that lost their phone to a row of this chunk (the plan's takeovers)
        become duplicate_in_file; a lead one created expires (a lead one refreshed is refreshed again by the
        winner). Returns the rejections to record and how many of those rows had counted as created / updated."""
        held_rows = [t.held_row for t in takeovers]
        already_rejected = sql.rejected_rows(conn, import_id, held_rows)
        leads = sql.lead_rows_for_takeover(conn, import_id, held_rows)
        sql.expire_leads(conn, company_id, [lead_id for lead_id, _ in leads])
        out = Takeovers()
        for t in takeovers:
            if t.held_row in already_rejected:
                continue
            out.rejections.append(RowRejection(t.held_row, Reason.DUPLICATE_IN_FILE, t.message, {}))
            if t.held_row in refreshed:
                out.updated += 1
            else:
                out.created += 1
        return out


class _ThrottledError(Exception):
    pass


class _ImportEndedError(Exception):
    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


@dataclass
class Takeovers:
    rejections: list[RowRejection] = field(default_factory=list)
    created: int = 0  # of those rows, how many had counted as created
    updated: int = 0  # ... and as updated


def _expires_at(c: LeadCandidate, options: ImportOptions, now: datetime) -> datetime | None:
    """The row's own expires_in, else the import's Hours Until Expiration, else none."""
    hours = options.lead_management.hours_until_expiration
    seconds = c.expires_in_seconds if c.expires_in_seconds is not None else (hours * 3600 if hours else None)
    return now + timedelta(seconds=seconds) if seconds is not None else None


def _describe_unreadable(chunk_no: int | None, error: str) -> str:
    which = f"Chunk {chunk_no}" if chunk_no is not None else "A chunk"
    return (f"{which} of this import could not be processed after several attempts ({error}). "
            "The rows of the other chunks were imported; contact support with the import id.")


def record_unreadable_chunk(db: Database, body: str, error: str) -> str | None:
    """Last attempt of an unreadable message: mark its import failed with a clear error (no hanging)."""
    from leadimport.messages import peek_import_id

    import_id, chunk_no = peek_import_id(body)
    if import_id is None:
        logger.error("unreadable chunk message with no import id: it goes to the DLQ")
        return None
    try:
        import_repo.fail(db, import_id, _describe_unreadable(chunk_no, error))
    except Exception:  # noqa: BLE001 - a malformed id must not hide the original failure
        logger.exception("could not record the unreadable chunk on its import")
        return None
    return import_id
