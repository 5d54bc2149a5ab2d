"""Use case: one chunk of rows -> contacts, leads, tokens and enrollments, or recorded rejections. Exactly once.

Per chunk, inside ONE database transaction:
  1. the done-marker (import, chunk) — a redelivered chunk finds it and changes nothing;
  2. advisory locks on (company, phone) for every phone of the chunk, in a global order;
  3. one query for every fact the scrub needs (blacklist, contacts, history in scope, live lead);
  4. in-file duplicates decided against the import's phone claims (whatever order chunks run in);
  5. set-based writes: contacts, leads, enrollments, rejections, the import's counters;
  6. tokens stamped in Redis for the leads just created, then COMMIT.
If Redis or the database fails anywhere, the transaction rolls back and the message is retried:
a lead is never committed without its tokens, and never created twice.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from leadimport.messages import ChunkMessage
from leadimport.options import ImportOptions
from leadimport.reasons import Reason
from leadimport.rules.pipeline import LeadCandidate, RowRejection, RowRules
from leadimport.rules.scrub import NO_FACTS, blacklist_reason, scrub_reason
from leadimport.store import chunks as sql
from leadimport.store.db import Database
from leadimport.store.tokens import TokenStamp, TokenStore

logger = Logger(child=True)
ACTION_CACHE_SECONDS = 60  # a schedule's first action, cached per container


@dataclass(frozen=True)
class ChunkResult:
    import_id: str
    chunk_no: int
    outcome: str  # processed | duplicate | skipped | unknown_import
    created: int = 0
    rejected: int = 0
    unprocessed: int = 0
    import_status: str | None = None


class ChunkImporter:
    def __init__(self, db: Database, tokens: TokenStore):
        self.db = db
        self.tokens = tokens
        self._actions: dict[tuple[int, int], tuple[float, tuple[int, int] | None]] = {}

    def record_unreadable(self, body: str, error: str) -> str | None:
        return record_unreadable_chunk(self.db, body, error)

    def import_chunk(self, msg: ChunkMessage) -> ChunkResult:
        imp = self._load_import(msg.import_id)
        if imp is None:
            logger.error("chunk for an unknown import dropped", extra={"import_id": msg.import_id, "chunk": msg.chunk_no})
            return ChunkResult(msg.import_id, msg.chunk_no, "unknown_import")
        if imp["status"] in ("cancelled", "failed"):
            return self._skip(msg, imp)

        options = ImportOptions.model_validate(imp["options"])
        rules = RowRules(options, msg.source_columns, msg.columns)
        candidates: list[LeadCandidate] = []
        rejections: list[RowRejection] = [
            RowRejection(r.row_no, r.reason, r.message, rules.source_values(r.values)) for r in msg.rejected
        ]
        for row_no, values in msg.rows:
            result = rules.apply(row_no, values)
            if isinstance(result, LeadCandidate):
                candidates.append(result)
            else:
                rejections.append(result)
        return self._write(msg, imp, options, candidates, rejections)

    # ------------------------------------------------------------------------------------------

    def _load_import(self, import_id: str) -> dict[str, Any] | None:
        rows = self.db.rows(
            "SELECT id::text AS id, company_id, owner_type, owner_id, options, status FROM lead_imports"
            " WHERE id = CAST(:i AS uuid)", i=import_id,
        )
        return rows[0] if rows else None

    def _skip(self, msg: ChunkMessage, imp: dict[str, Any]) -> ChunkResult:
        """Cancelled import: the chunk is counted as unprocessed and its rows kept for download."""
        rules = RowRules(ImportOptions.model_validate(imp["options"]), msg.source_columns, msg.columns)
        rows = [(n, v) for n, v in msg.rows] + [(r.row_no, r.values) for r in msg.rejected]
        with self.db.transaction() as conn:
            if not sql.claim_chunk(conn, msg.import_id, msg.chunk_no, msg.first_row, msg.row_count, "skipped"):
                return ChunkResult(msg.import_id, msg.chunk_no, "duplicate")
            sql.insert_rejections(
                conn, msg.import_id, [n for n, _ in rows], [Reason.UNPROCESSED] * len(rows),
                ["Not imported: the import was cancelled before this row was processed."] * len(rows),
                [rules.source_values(v) for _, v in rows],
            )
            state = sql.add_to_counters(conn, msg.import_id, chunks=1, processed=0, created=0, rejected=0,
                                        unprocessed=len(rows), rejections={}, warnings={})
        return ChunkResult(msg.import_id, msg.chunk_no, "skipped", unprocessed=len(rows), import_status=state["status"])

    def _write(self, msg: ChunkMessage, imp: dict[str, Any], options: ImportOptions,
               candidates: list[LeadCandidate], rejections: list[RowRejection]) -> ChunkResult:
        company_id: int = imp["company_id"]
        owner_type: str = imp["owner_type"]
        owner_id: int = imp["owner_id"]
        lm = options.lead_management
        dry_run = options.dry_run
        takeover_rejections: list[RowRejection] = []
        takeover_created = 0

        with self.db.transaction() as conn:
            if not sql.claim_chunk(conn, msg.import_id, msg.chunk_no, msg.first_row, msg.row_count, "processed"):
                return ChunkResult(msg.import_id, msg.chunk_no, "duplicate")
            phones = sorted({c.phone for c in candidates})
            sql.lock_phones(conn, company_id, phones)
            scope_offer = (sql.scope_offer_id(conn, company_id, owner_type, owner_id)
                           if options.scrub.scope == "offer" else None)
            facts = sql.phone_facts(conn, company_id=company_id, import_id=msg.import_id, owner_type=owner_type,
                                    owner_id=owner_id, phones=phones, scope=options.scrub.scope,
                                    scope_offer_id=scope_offer)

            # Blacklist first.
            kept: list[LeadCandidate] = []
            for c in candidates:
                hit = blacklist_reason(facts.get(c.phone, NO_FACTS))
                if hit:
                    rejections.append(RowRejection(c.row_no, hit[0], hit[1], c.values))
                else:
                    kept.append(c)

            # In-file duplicates within the chunk (first or last row by policy), then across chunks: the
            # import's phone claims decide, whatever the order chunks run in.
            kept, dupes = _dedupe_in_chunk(kept, options.duplicates)
            rejections.extend(dupes)
            claims = sql.phone_claims(conn, msg.import_id, [c.phone for c in kept])
            winners: list[LeadCandidate] = []
            new_claims: dict[str, int] = {}
            lost_rows: list[tuple[int, int]] = []  # (row that lost, row that holds the phone now)
            for c in kept:
                held = claims.get(c.phone)
                if held is not None and held != c.row_no and _first_wins(held, c.row_no, options.duplicates):
                    rejections.append(RowRejection(c.row_no, Reason.DUPLICATE_IN_FILE,
                                                   _dup_message(held, options.duplicates), c.values))
                    continue
                if held is not None and held != c.row_no:
                    lost_rows.append((held, c.row_no))
                new_claims[c.phone] = c.row_no
                winners.append(c)
            sql.save_phone_claims(conn, msg.import_id, new_claims)
            if lost_rows:
                takeover_rejections, takeover_created = self._take_over(conn, msg.import_id, company_id, lost_rows,
                                                                        options)

            # Scrub, then the owner's existing live lead.
            final: list[LeadCandidate] = []
            expire_ids: list[int] = []
            managed: list[int] = []  # existing live leads whose schedule run "Manage Schedule" acts on
            moving: list[int] = []  # existing live leads that "Move To Another Schedule" moves away
            for c in winners:
                f = facts.get(c.phone, NO_FACTS)
                hit = scrub_reason(f, options.scrub)
                if hit:
                    rejections.append(RowRejection(c.row_no, hit[0], hit[1], c.values))
                    continue
                if f.live_lead_id is not None:
                    if lm.expire_existing:
                        expire_ids.append(f.live_lead_id)
                    elif lm.move_to_schedule_id is not None:
                        moving.append(f.live_lead_id)
                    else:
                        managed.append(f.live_lead_id)
                        rejections.append(RowRejection(
                            c.row_no, Reason.DUPLICATE_LEAD, _existing_lead_message(owner_type, lm.manage_schedule),
                            c.values))
                        continue
                final.append(c)

            if lm.copy_to_this_schedule_from is not None and final:
                self._copy_from(conn, company_id, lm.copy_to_this_schedule_from.type,
                                lm.copy_to_this_schedule_from.id, final)
            if dry_run:
                created_count = len(final)
            else:
                sql.expire_leads(conn, company_id, expire_ids)
                moved_stamps = self._move(conn, company_id, moving, lm.move_to_schedule_id)
                if managed and lm.manage_schedule != "nothing" and owner_type == "schedule":
                    action = self._first_action(conn, company_id, owner_id)
                    sql.manage_schedule_runs(
                        conn, company_id, owner_id, managed, lm.manage_schedule, action[0] if action else None,
                        datetime.now(UTC) + timedelta(minutes=action[1]) if action else None)
                created, lost = self._create_leads(conn, msg.import_id, company_id, owner_type, owner_id, final,
                                                   options)
                rejections.extend(lost)
                created_count = len(created)
                by_row = {c.row_no: c for c in final}
                stamps = [TokenStamp(company_id, owner_type, owner_id, by_row[row].phone, by_row[row].tokens, expires_at)
                          for _, row, expires_at in created] + moved_stamps

            all_rejections = rejections + takeover_rejections
            sql.insert_rejections(conn, msg.import_id, [r.row_no for r in all_rejections],
                                  [r.reason for r in all_rejections], [r.message for r in all_rejections],
                                  [r.values for r in all_rejections])
            warnings = Counter(w for c in final for w in c.warnings)
            state = sql.add_to_counters(
                conn, msg.import_id, chunks=1, processed=msg.row_count,
                created=created_count - takeover_created, rejected=len(rejections) + takeover_created,
                unprocessed=0, rejections=dict(Counter(r.reason for r in all_rejections)), warnings=dict(warnings),
            )
            conn.run("UPDATE lead_import_chunks SET created_leads = :c, rejected_rows = :r"
                     " WHERE import_id = CAST(:i AS uuid) AND chunk_no = :n",
                     c=created_count, r=len(rejections), i=msg.import_id, n=msg.chunk_no)
            if not dry_run:
                # Last, still inside the transaction: a Redis failure rolls the chunk back for a retry.
                self.tokens.stamp(stamps)
        logger.info("chunk imported", extra={"import_id": msg.import_id, "chunk": msg.chunk_no,
                                             "created_leads": created_count, "rejected_rows": len(rejections),
                                             "import_status": state["status"]})
        return ChunkResult(msg.import_id, msg.chunk_no, "processed", created=created_count, rejected=len(rejections),
                           import_status=state["status"])

    def _create_leads(self, conn: Any, import_id: str, company_id: int, owner_type: str, owner_id: int,
                      final: list[LeadCandidate], options: ImportOptions
                      ) -> tuple[list[tuple[int, int, datetime | None]], list[RowRejection]]:
        """Contacts, then leads with their enrollments; returns (lead id, row, expires_at) of the created."""
        if not final:
            return [], []
        lm = options.lead_management
        by_phone = sorted(final, key=lambda c: c.phone)
        contacts = sql.upsert_contacts(conn, company_id, [c.phone for c in by_phone], [c.region for c in by_phone],
                                       [c.time_zone for c in by_phone], lm.opt, lm.block)
        now = datetime.now(UTC)
        default_expiry = lm.hours_until_expiration * 3600 if lm.hours_until_expiration else None
        expires_at: list[datetime | None] = []
        for c in final:
            seconds = c.expires_in_seconds if c.expires_in_seconds is not None else default_expiry
            expires_at.append(now + timedelta(seconds=seconds) if seconds is not None else None)
        d = options.defaults
        rows = sql.insert_leads(
            conn, company_id=company_id, owner_type=owner_type, owner_id=owner_id, import_id=import_id,
            rows=[c.row_no for c in final], phones=[c.phone for c in final],
            contact_ids=[contacts[c.phone] for c in final], emails=[c.email for c in final],
            expires_at=expires_at, ips=[c.remote_ip for c in final], priorities=[c.lead_priority for c in final],
            sub_ids=[c.sub_id for c in final], tokens=[c.tokens for c in final],
            traffic_source_id=d.traffic_source_id, buyer_ids=list(d.buyer_ids),
            max_contact_attempts=lm.max_contact_attempts,
            enroll_in=self._enrollments(conn, company_id, owner_type, owner_id, options, now),
        )
        expiry_by_row = {c.row_no: e for c, e in zip(final, expires_at, strict=True)}
        created = [(lead_id, row, expiry_by_row[row]) for lead_id, row in rows]
        created_rows = {row for _, row in rows}
        lost = [RowRejection(c.row_no, Reason.DUPLICATE_LEAD,
                             "Another import created a live lead for this number at the same time.", c.values)
                for c in final if c.row_no not in created_rows]
        return created, lost

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

    def _first_action(self, conn: Any, company_id: int, schedule_id: int) -> tuple[int, int] | None:
        key = (company_id, schedule_id)
        cached = self._actions.get(key)
        if cached is None or cached[0] < time.monotonic():
            cached = (time.monotonic() + ACTION_CACHE_SECONDS, sql.first_action(conn, company_id, schedule_id))
            self._actions[key] = cached
        return cached[1]

    def _move(self, conn: Any, company_id: int, lead_ids: list[int], schedule_id: int | None) -> list[TokenStamp]:
        """Move To Another Schedule; returns the moved leads' tokens to stamp under their new owner."""
        if not lead_ids or schedule_id is None:
            return []
        action = self._first_action(conn, company_id, schedule_id)
        moved = sql.move_leads(conn, company_id, lead_ids, schedule_id, action[0] if action else None,
                               datetime.now(UTC) + timedelta(minutes=action[1]) if action else None)
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

    def _take_over(self, conn: Any, import_id: str, company_id: int, lost_rows: list[tuple[int, int]],
                   options: ImportOptions) -> tuple[list[RowRejection], int]:
        """An earlier-processed chunk holds a phone that a row of this chunk should own (first/last row wins).
        The other row becomes duplicate_in_file; its lead, if it created one, is expired. Returns the
        rejections to record and how many of those rows had counted as created."""
        held_rows = [held for held, _ in lost_rows]
        already_rejected = {r[0] for r in conn.run(
            "SELECT row_no FROM lead_import_rejections WHERE import_id = CAST(:i AS uuid)"
            " AND row_no = ANY(CAST(:r AS int[]))", i=import_id, r=sql.id_array(held_rows)) or []}
        leads = sql.lead_rows_for_takeover(conn, import_id, held_rows)
        sql.expire_leads(conn, company_id, [lead_id for lead_id, _ in leads])
        out = [RowRejection(held, Reason.DUPLICATE_IN_FILE, _dup_message(winner, options.duplicates), {})
               for held, winner in lost_rows if held not in already_rejected]
        return out, len(out)


def _existing_lead_message(owner_type: str, manage_schedule: str) -> str:
    done = {"stop": " Its schedule run was stopped.", "start": " Its schedule run was started (if it was not running).",
            "restart": " Its schedule run was restarted at the first action."}.get(manage_schedule, "")
    return (f"This {owner_type} already has a live lead for this number, which was kept;"
            f" choose \"Expire Existing Leads\" to replace it.{done}")


def _first_wins(held: int, row: int, policy: str) -> bool:
    """True when the row holding the phone keeps it against `row`."""
    return held < row if policy == "first" else held > row


def _dup_message(winner_row: int, policy: str) -> str:
    which = "an earlier" if policy == "first" else "a later"
    return f"The same phone number appears on {which} row ({winner_row}) of this file, which was imported instead."


def _dedupe_in_chunk(candidates: list[LeadCandidate], policy: str) -> tuple[list[LeadCandidate], list[RowRejection]]:
    best: dict[str, LeadCandidate] = {}
    for c in candidates:
        held = best.get(c.phone)
        if held is None or not _first_wins(held.row_no, c.row_no, policy):
            best[c.phone] = c
    keep = {id(c) for c in best.values()}
    kept = [c for c in candidates if id(c) in keep]
    dupes = [RowRejection(c.row_no, Reason.DUPLICATE_IN_FILE, _dup_message(best[c.phone].row_no, policy), c.values)
             for c in candidates if id(c) not in keep]
    return kept, dupes



def _describe_unreadable(chunk_no: int | None, error: str) -> str:
    which = f"Chunk {chunk_no}" if chunk_no is not None else "A chunk"
    return (f"{which} of this import could not be processed after several attempts ({error}). "
            "The rows of the other chunks were imported; contact support with the import id.")


def record_unreadable_chunk(db: Database, body: str, error: str) -> str | None:
    """Last attempt of an unreadable message: mark its import failed with a clear error (no hanging)."""
    from leadimport.messages import peek_import_id
    from leadimport.store.imports import fail_import

    import_id, chunk_no = peek_import_id(body)
    if import_id is None:
        logger.error("unreadable chunk message with no import id: it goes to the DLQ")
        return None
    try:
        fail_import(db, import_id, _describe_unreadable(chunk_no, error))
    except Exception:  # noqa: BLE001 - a malformed id must not hide the original failure
        logger.exception("could not record the unreadable chunk on its import")
        return None
    return import_id
