"""Set-based SQL for one chunk: one statement per step for the whole chunk, never one per row.

Every function takes the open transaction's connection; the service decides the order. All
values travel as bound parameters; table and column names are constants. Rows travel as ONE
JSON text parameter unpacked with `json_to_recordset`: pg8000 escapes Python lists element by
element in Python (it cost ~40% of the worker's time), while json.dumps runs in C and PostgreSQL
parses JSON fast. Lists of E.164 phones (validated: '+' and digits only) go as array literals. For the
same reason, the statements that return a row per lead (contact ids, created leads) aggregate them into
ONE JSON value read with json.loads: pg8000 reads and decodes each result row in Python (with the
enrollments written by the lead insert itself, this took ~13% off the worker's CPU per row).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import pg8000.native

from leadimport.rules.pipeline import LeadCandidate, RowRejection
from leadimport.rules.scrub import PhoneFacts

_E164_CHARS = frozenset("+0123456789")


def phone_array(phones: Sequence[str]) -> str:
    """A PostgreSQL text[] literal of E.164 phones (nothing to escape in '+' and digits)."""
    for p in phones:
        if not p or not _E164_CHARS.issuperset(p):
            raise ValueError("not an E.164 phone")
    return "{" + ",".join(phones) + "}"


def id_array(ids: Sequence[int]) -> str:
    """A PostgreSQL bigint[] literal."""
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


def _json(rows: object) -> str:
    return orjson.dumps(rows).decode()  # compact UTF-8 like json.dumps(ensure_ascii=False), 2-4x faster


def claim_chunk(conn: pg8000.native.Connection, import_id: str, chunk_no: int, first_row: int, row_count: int,
                outcome: str) -> bool:
    """The done-marker. False when this chunk was already done (redelivery): the caller rolls back."""
    rows = conn.run(
        """INSERT INTO lead_import_chunks (import_id, chunk_no, first_row, row_count, outcome)
           VALUES (CAST(:i AS uuid), :n, :f, :c, :o) ON CONFLICT DO NOTHING RETURNING 1""",
        i=import_id, n=chunk_no, f=first_row, c=row_count, o=outcome,
    )
    return bool(rows)


def claim_chunk_of_running_import(conn: pg8000.native.Connection, import_id: str, chunk_no: int, first_row: int,
                                  row_count: int) -> tuple[bool, str]:
    """The done-marker of a chunk to process, and the import's status read after locking its row FOR KEY SHARE
    (one round trip): a cancel or failure committed since the worker read the import is seen here, and an undo
    (FOR UPDATE) waits until this chunk has committed. Returns (claimed, status)."""
    rows = conn.run(
        """WITH claimed AS (
               INSERT INTO lead_import_chunks (import_id, chunk_no, first_row, row_count, outcome)
               VALUES (CAST(:i AS uuid), :n, :f, :c, 'processed') ON CONFLICT DO NOTHING RETURNING 1)
           SELECT (SELECT count(*) FROM claimed), status FROM lead_imports WHERE id = CAST(:i AS uuid)
           FOR KEY SHARE""",
        i=import_id, n=chunk_no, f=first_row, c=row_count,
    )
    return (bool(rows and rows[0][0]), str(rows[0][1]) if rows else "unknown")


def take_import_slot(conn: pg8000.native.Connection, import_id: str, cap: int) -> bool:
    """One of the import's `cap` write slots for this transaction: a transaction-level advisory lock in the
    single-bigint key space (apart from the phones' two-int locks). False when its other chunks in flight hold
    all of them: the chunk waits its turn outside the database."""
    rows = conn.run(
        "SELECT s FROM generate_series(0, CAST(:n AS int) - 1) AS s"
        " WHERE pg_try_advisory_xact_lock(hashtextextended(:i, s)) LIMIT 1",
        i=import_id, n=cap,
    )
    return bool(rows)


def lock_phones(conn: pg8000.native.Connection, company_id: int, phones: Sequence[str]) -> None:
    """Serialize work on the same (company, phone) across chunks and imports, in one global order
    (sorted lock keys), so two workers never deadlock and never both create a live lead for a number."""
    if phones:
        conn.run(
            """SELECT count(pg_advisory_xact_lock(phone_lock_company(:c), k))
               FROM (SELECT DISTINCT hashtext(p) AS k FROM unnest(CAST(:p AS text[])) AS p ORDER BY k) AS keys""",
            c=company_id, p=phone_array(phones),
        )


def phone_facts(conn: pg8000.native.Connection, *, company_id: int, import_id: str, owner_type: str,
                owner_id: int, phones: Sequence[str], scope: str, scope_offer_id: int | None) -> dict[str, PhoneFacts]:
    """Blacklist, contact flags, scrub history in scope and the owner's live lead, for all phones, in one query.
    Phones absent from the result have no facts (not blacklisted, no flags, no history, no live lead)."""
    if not phones:
        return {}
    rows = conn.run(
        """
        WITH p AS (SELECT DISTINCT unnest(CAST(:phones AS text[])) AS phone),
        scoped AS (
            SELECT l.id, l.caller_id, l.status <> 'expired' AND (l.expires_at IS NULL OR l.expires_at > now()) AS alive
            FROM leads l
            WHERE :scope <> 'none' AND l.company_id = :c AND l.caller_id = ANY(CAST(:phones AS text[]))
              AND l.import_id IS DISTINCT FROM CAST(:imp AS uuid)
              AND (:scope = 'company'
                   OR l.offer_id = CAST(:scope_offer AS bigint)
                   OR l.schedule_id IN (SELECT s.id FROM schedules s WHERE s.company_id = :c
                                        AND s.offer_id = CAST(:scope_offer AS bigint))
                   OR (l.owner_type = :ot AND l.owner_id = :oid))
        ),
        history AS (
            SELECT s.caller_id, bool_or(s.alive) AS existing, bool_or(k.dialed) AS dialed, bool_or(k.connected) AS connected,
                   bool_or(k.converted) AS converted,
                   array_remove(array_agg(DISTINCT k.disposition), NULL) AS dispositions
            FROM scoped s LEFT JOIN calls k ON k.company_id = :c AND k.lead_id = s.id
            GROUP BY s.caller_id
        )
        SELECT p.phone, b.phone IS NOT NULL, ct.id, COALESCE(ct.opted_out, false), COALESCE(ct.blocked, false),
               COALESCE(h.existing, false), COALESCE(h.dialed, false), COALESCE(h.connected, false),
               COALESCE(h.converted, false), COALESCE(h.dispositions, '{}'), live.id, live.stale
        FROM p
        -- LATERAL + LIMIT 1: one index probe per phone. A plain join let the planner hash every live lead
        -- of the owner (or every contact of the company) on each chunk: cost growing with the tables.
        LEFT JOIN LATERAL (SELECT x.phone FROM blacklist x WHERE x.company_id = :c AND x.phone = p.phone LIMIT 1) b
               ON true
        LEFT JOIN LATERAL (SELECT x.id, x.opted_out, x.blocked FROM contacts x
                           WHERE x.company_id = :c AND x.phone = p.phone LIMIT 1) ct ON true
        LEFT JOIN history h ON h.caller_id = p.phone
        -- A lead still marked live but past its expiry is "stale": dead for every rule (the importer expires it).
        LEFT JOIN LATERAL (SELECT x.id, x.expires_at IS NOT NULL AND x.expires_at <= now() AS stale FROM leads x
                           WHERE x.company_id = :c AND x.owner_type = :ot AND x.owner_id = :oid
                             AND x.caller_id = p.phone AND x.status = 'live'
                             -- this import's own lead for the phone is an in-file duplicate, decided by the claims
                             AND x.import_id IS DISTINCT FROM CAST(:imp AS uuid)
                           LIMIT 1) live ON true
        -- only phones with something to say: most phones of a fresh list have no facts at all
        -- (a known contact too: its id spares the lead insert an upsert of it)
        WHERE b.phone IS NOT NULL OR ct.id IS NOT NULL OR h.caller_id IS NOT NULL OR live.id IS NOT NULL
        """,
        phones=phone_array(phones), scope=scope, c=company_id, imp=import_id, scope_offer=scope_offer_id,
        ot=owner_type, oid=owner_id,
    )
    return {
        r[0]: PhoneFacts(phone=r[0], blacklisted=r[1], contact_id=r[2], opted_out=r[3], blocked=r[4], existing=r[5],
                         dialed=r[6], connected=r[7], converted=r[8], dispositions=frozenset(r[9] or ()),
                         live_lead_id=None if r[11] else r[10], stale_lead_id=r[10] if r[11] else None)
        for r in rows or []
    }


class PhoneClaim(NamedTuple):
    """Which row of this import holds a phone so far (a row of an earlier-processed chunk)."""

    row_no: int
    refreshed: bool  # that row refreshed a live lead (it counted as updated, not created)
    recorded: bool  # kept in lead_import_phones; else the holder is the lead that row created


def phone_claims(conn: pg8000.native.Connection, company_id: int, import_id: str, phones: Sequence[str]
                 ) -> dict[str, PhoneClaim]:
    """Which row of this import holds each phone so far. A row that created a lead holds its phone by that lead
    (its import, row and caller_id never change, and its contact cannot be deleted while it exists: the phone
    keeps its facts); every other holder is recorded in lead_import_phones (a row that refreshed or skipped a
    live lead, or was scrubbed; every row of a dry run; a row that took the phone over from another), and a
    recorded claim wins over a lead (the lead of a row that lost its phone; without a recorded claim a phone has
    at most one lead of the import)."""
    if not phones:
        return {}
    rows = conn.run(
        """SELECT phone, row_no, refreshed, true FROM lead_import_phones
           WHERE import_id = CAST(:i AS uuid) AND phone = ANY(CAST(:p AS text[]))
           UNION ALL
           SELECT p.phone, l.import_row, false, false FROM unnest(CAST(:p AS text[])) AS p(phone)
           -- LATERAL + LIMIT 1 and an import test no index serves: one probe per phone by (company, caller_id)
           -- whatever the statistics say (with `caller_id = ANY(...) AND import_id = ...` the planner read every
           -- lead of the import for each chunk: statistics from before the import make its id look rare)
           CROSS JOIN LATERAL (SELECT x.import_row FROM leads x WHERE x.company_id = :c AND x.caller_id = p.phone
                               AND x.import_id IS NOT DISTINCT FROM CAST(:i AS uuid) LIMIT 1) l""",
        c=company_id, i=import_id, p=phone_array(phones),
    )
    out: dict[str, PhoneClaim] = {}
    for phone, row_no, refreshed, recorded in sorted(rows or [], key=lambda r: bool(r[3])):
        out[phone] = PhoneClaim(row_no, bool(refreshed), bool(recorded))  # the recorded one, else the lead
    return out


def save_phone_claims(conn: pg8000.native.Connection, import_id: str, claims: dict[str, int],
                      refreshed_rows: AbstractSet[int] = frozenset(), held: Collection[str] = ()) -> None:
    """Record which row holds each phone now (the claims phone_claims does not find by a lead). `held`: the
    phones with a recorded claim of an earlier chunk (phone_claims, read under the phones' locks): those claims
    move to their new row; the others are plain inserts (no other writer can claim the phone meanwhile, so no
    upsert's speculative insertion). Phones, rows and the refreshed flags travel as three array literals
    (validated phones, integers and t/f: nothing to escape), cheaper to build and to parse than a JSON record per
    claim."""
    if not claims:
        return
    moved = {p: r for p, r in claims.items() if p in held} if held else {}
    new = {p: r for p, r in claims.items() if p not in moved} if moved else claims

    def flags(rows: Collection[int]) -> str:  # a boolean[] literal: whether each row refreshed a live lead
        return "{" + ",".join("t" if r in refreshed_rows else "f" for r in rows) + "}"

    if moved:
        conn.run(
            """UPDATE lead_import_phones x SET row_no = t.r, refreshed = t.f
               FROM unnest(CAST(:p AS text[]), CAST(:r AS int[]), CAST(:f AS boolean[])) AS t(p, r, f)
               WHERE x.import_id = CAST(:i AS uuid) AND x.phone = t.p""",
            i=import_id, p=phone_array(list(moved)), r=id_array(list(moved.values())), f=flags(moved.values()),
        )
    if new:
        conn.run(
            """INSERT INTO lead_import_phones (import_id, phone, row_no, refreshed)
               SELECT CAST(:i AS uuid), t.p, t.r, t.f
               FROM unnest(CAST(:p AS text[]), CAST(:r AS int[]), CAST(:f AS boolean[])) AS t(p, r, f) ORDER BY t.p""",
            i=import_id, p=phone_array(list(new)), r=id_array(list(new.values())), f=flags(new.values()),
        )


class ClaimConflictError(Exception):
    """A new lead's phone holds a claim recorded by an earlier chunk that phone_claims did not read (another
    writer removed the phone's facts meanwhile): the plan is wrong, the chunk is planned again."""


def is_claim_conflict(exc: BaseException) -> bool:
    """A plan made on facts that changed: the claim inserted over an earlier chunk's claim of the same phone (a
    plain insert: see save_phone_claims), a lead inserted for a phone another row holds by a recorded claim
    (insert_leads), or a new lead meeting a live one of the owner (one this import holds that the facts no longer
    lead to, or one another writer made live without the phone's lock). The chunk is planned again, on facts
    read again and every claim."""
    if isinstance(exc, ClaimConflictError):
        return True
    fields = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    return fields.get("C") == "23505" and fields.get("n") in ("lead_import_phones_pkey", "leads_one_live_per_owner")


def scope_offer_id(conn: pg8000.native.Connection, company_id: int, owner_type: str, owner_id: int) -> int | None:
    if owner_type == "offer":
        return owner_id
    rows = conn.run("SELECT offer_id FROM schedules WHERE id = :s AND company_id = :c", s=owner_id, c=company_id)
    return rows[0][0] if rows else None


def first_action(conn: pg8000.native.Connection, company_id: int, schedule_id: int) -> tuple[int, int] | None:
    """(position, delay_minutes) of the schedule's first action, or None for a schedule without actions."""
    rows = conn.run(
        "SELECT position, delay_minutes FROM schedule_actions WHERE company_id = :c AND schedule_id = :s"
        " ORDER BY position LIMIT 1",
        c=company_id, s=schedule_id,
    )
    return (rows[0][0], rows[0][1]) if rows else None


def upsert_contacts(conn: pg8000.native.Connection, company_id: int, candidates: Sequence[LeadCandidate],
                    opt: str | None, block: str | None) -> dict[str, int]:
    """Look up or create the contact of each candidate's phone (one per company and phone), in the given order;
    apply opt/block flags. Returns phone -> contact id."""
    if not candidates:
        return {}
    rows = conn.run(
        """WITH up AS (
               INSERT INTO contacts AS ct (company_id, phone, country, time_zone, opted_out, blocked)
               SELECT :c, p, r, z, :opt = 'opt_out', :block = 'block'
               FROM json_to_recordset(CAST(:rows AS json)) AS t(p text, r text, z text)
               ORDER BY p
               ON CONFLICT (company_id, phone) DO UPDATE SET
                   country = COALESCE(ct.country, EXCLUDED.country),
                   time_zone = COALESCE(ct.time_zone, EXCLUDED.time_zone),
                   opted_out = CASE :opt WHEN 'opt_out' THEN true WHEN 'opt_in' THEN false ELSE ct.opted_out END,
                   blocked = CASE :block WHEN 'block' THEN true WHEN 'unblock' THEN false ELSE ct.blocked END,
                   updated_at = now()
               RETURNING phone, id)
           SELECT CAST(COALESCE(json_object_agg(phone, id), '{}') AS text) FROM up""",
        c=company_id, rows=_json([{"p": c.phone, "r": c.region, "z": c.time_zone} for c in candidates]),
        opt=opt or "", block=block or "",
    )
    found: dict[str, int] = orjson.loads(rows_text(rows))
    return found


class NewLead(NamedTuple):  # one per lead created: a named tuple costs a third of a frozen dataclass
    """A lead the plan creates: its row, its contact and its expiry."""

    candidate: LeadCandidate
    contact_id: int | None  # None: the phone has no contact yet; the lead's statement creates it
    expires_at: datetime | None
    tokens_json: bytes  # encode_tokens(candidate.tokens): the same bytes go to the lead row and to Redis


def insert_leads(conn: pg8000.native.Connection, *, company_id: int, owner_type: str, owner_id: int, import_id: str,
                 leads: Sequence[NewLead], max_contact_attempts: int | None,
                 enroll_in: list[tuple[int, int, datetime]], not_enrolled: Collection[int] = ()) -> int:
    """Insert the leads and, in the same statement, enroll them (`enroll_in`: (schedule id, action position, next
    action time)) but the rows in `not_enrolled` (contacts that take no calls); returns how many were inserted.
    A plain insert: the plan creates a lead only where the facts, read under the phone's lock, found no live
    one for the owner, and the done-marker stops a redelivery first. Should another writer (one that does not
    take the phone locks) have made one live meanwhile, the unique index fails the statement, and the chunk is
    planned again (is_claim_conflict): it sees that lead in the facts. (ON CONFLICT DO NOTHING cost 8 us of
    PostgreSQL CPU per lead: the speculative insertion into each unique index.) A lead without a contact id
    creates its contact in the same statement: a plain insert too (the facts, read under the phones' locks, found
    none, and no importer can create one meanwhile); one statement instead of two (-1 round trip, one JSON fewer
    each way). Each row carries its own traffic source and buyers (its own values, or the import's defaults). The
    rows go in as jsonb: each lead's tokens are then taken as they are, not parsed a second time from the json's
    text (json_to_recordset: 6.5 -> 5.0 us of PostgreSQL CPU per row over 2,000 realistic rows, medians of 15).
    Raises ClaimConflictError when a new lead's phone is held by another row's recorded claim."""
    if not leads:
        return 0
    first = enroll_in[0] if enroll_in else None
    buyers: dict[tuple[int, ...], str] = {}  # the array literal of each buyer list (most rows share the default)
    result = conn.run(
        """WITH t AS (SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb))
                         AS t(row_no int, phone text, contact_id bigint, r text, z text, email text, exp timestamptz,
                              ip text, prio int, ts bigint, buyers text, sub_id text, tokens jsonb)),
           new_contacts AS (
               INSERT INTO contacts (company_id, phone, country, time_zone)
               SELECT :c, phone, r, z FROM t WHERE contact_id IS NULL ORDER BY phone
               RETURNING phone, id),
           created AS (
               INSERT INTO leads (company_id, owner_type, owner_id, contact_id, caller_id, email, expires_at, remote_ip,
                                  lead_priority, traffic_source_id, buyer_ids, sub_id, tokens, max_contact_attempts,
                                  next_action_at, import_id, import_row)
               SELECT :c, :ot, :oid, COALESCE(t.contact_id, n.id), t.phone, t.email, t.exp, CAST(t.ip AS inet), t.prio,
                      t.ts, CAST(t.buyers AS bigint[]), t.sub_id, t.tokens, :mca,
                      CASE WHEN t.row_no <> ALL(CAST(:no_enroll AS int[])) THEN CAST(:next_at AS timestamptz) END,
                      CAST(:imp AS uuid), t.row_no
               FROM t LEFT JOIN new_contacts n ON t.contact_id IS NULL AND n.phone = t.phone
               RETURNING id, import_row),
           enrolled AS (
               INSERT INTO schedule_enrollments (company_id, lead_id, schedule_id, action_position, next_action_at)
               SELECT :c, created.id, e.s, e.pos, e.at
               FROM created CROSS JOIN json_to_recordset(CAST(:enroll AS json)) AS e(s bigint, pos int, at timestamptz)
               WHERE created.import_row <> ALL(CAST(:no_enroll AS int[])))
           SELECT (SELECT count(*) FROM created),
                  -- new leads whose phone another row holds by a recorded claim that phone_claims did not read
                  -- (ClaimConflictError): one probe of the claims' key per lead (a scalar subquery: as a join, the
                  -- planner may hash every claim on stale statistics; as a filter of `created`, it changed that
                  -- statement's join plan)
                  (SELECT count(*) FROM t WHERE (SELECT x.row_no FROM lead_import_phones x
                                                 WHERE x.import_id = CAST(:imp AS uuid) AND x.phone = t.phone) <> t.row_no)""",
        c=company_id, ot=owner_type, oid=owner_id, no_enroll=id_array(sorted(not_enrolled)),
        mca=max_contact_attempts, next_at=first[2] if first else None, imp=import_id,
        rows=_json([{"row_no": c.row_no, "phone": c.phone, "contact_id": lead.contact_id,
                     "r": c.region if lead.contact_id is None else None,
                     "z": c.time_zone if lead.contact_id is None else None, "email": c.email,
                     "exp": lead.expires_at, "ip": c.remote_ip, "prio": c.lead_priority, "ts": c.traffic_source_id,
                     "buyers": buyers.get(c.buyer_ids) or buyers.setdefault(c.buyer_ids, id_array(c.buyer_ids)),
                     "sub_id": c.sub_id, "tokens": orjson.Fragment(lead.tokens_json)}
                    for lead in leads for c in (lead.candidate,)]),
        enroll=_json([{"s": sid, "pos": pos, "at": at.isoformat()} for sid, pos, at in enroll_in]),
    )
    inserted, held_by_others = (int(result[0][0]), int(result[0][1])) if result else (0, 0)
    if held_by_others:
        raise ClaimConflictError(f"{held_by_others} of {len(leads)} new leads' phones hold another row's claim")
    if inserted != len(leads):  # a plain INSERT ... SELECT inserts every row or fails: never here
        raise RuntimeError(f"{inserted} of {len(leads)} leads inserted")
    return inserted


def rows_text(result: list[list[Any]] | None) -> str:
    """The one text value of a statement that aggregates its rows into JSON (one row, one column)."""
    if not result or not isinstance(result[0][0], str):
        raise RuntimeError(f"expected one row holding the aggregated JSON as text, got {result!r:.200}")
    return result[0][0]


def expire_leads(conn: pg8000.native.Connection, company_id: int, lead_ids: list[int]) -> None:
    """Leads leave their schedule: status expired, active enrollments ended.

    `lead_id = ANY(ids)` is redundant with the CTE but lets the planner use the index on the enrollments'
    lead_id directly instead of joining against the CTE's guessed size; a growing import spent 30 ms a
    call here at 100k leads (pg_stat_statements), rising with the table."""
    if lead_ids:
        conn.run(
            """WITH l AS (UPDATE leads SET status = 'expired', next_action_at = NULL, updated_at = now()
                          WHERE company_id = :c AND id = ANY(CAST(:ids AS bigint[])) AND status = 'live' RETURNING id)
               UPDATE schedule_enrollments SET status = 'ended', ended_at = now()
               WHERE lead_id = ANY(CAST(:ids AS bigint[])) AND lead_id IN (SELECT id FROM l) AND status = 'active'""",
            c=company_id, ids=id_array(lead_ids),
        )


def manage_schedule_runs(conn: pg8000.native.Connection, company_id: int, import_id: str, schedule_id: int,
                         lead_ids: list[int], mode: str, first_position: int | None,
                         next_action_at: datetime | None) -> None:
    """Manage Schedule for existing live leads: stop (end the run), start (enroll at the first action
    unless running), restart (end the run and enroll again at the first action). The runs as they were are
    recorded for undo."""
    if not lead_ids:
        return
    log_runs(conn, company_id, import_id, lead_ids)
    if mode in ("stop", "restart"):
        conn.run(
            """UPDATE schedule_enrollments SET status = 'ended', ended_at = now()
               WHERE company_id = :c AND schedule_id = :s AND lead_id = ANY(CAST(:ids AS bigint[]))
                 AND status = 'active'""",
            c=company_id, s=schedule_id, ids=id_array(lead_ids),
        )
    if mode in ("start", "restart") and first_position is not None:
        conn.run(
            """INSERT INTO schedule_enrollments (company_id, lead_id, schedule_id, action_position, next_action_at)
               SELECT :c, l, :s, :pos, CAST(:at AS timestamptz) FROM unnest(CAST(:ids AS bigint[])) AS l
               ON CONFLICT DO NOTHING""",
            c=company_id, s=schedule_id, ids=id_array(lead_ids), pos=first_position, at=next_action_at,
        )


_PREVIOUS = """jsonb_build_object(
        'status', l.status, 'owner_type', l.owner_type, 'owner_id', l.owner_id, 'next_action_at', l.next_action_at,
        'email', l.email, 'expires_at', l.expires_at, 'remote_ip', l.remote_ip, 'lead_priority', l.lead_priority,
        'traffic_source_id', l.traffic_source_id, 'buyer_ids', l.buyer_ids, 'sub_id', l.sub_id, 'tokens', l.tokens,
        'max_contact_attempts', l.max_contact_attempts,
        'enrollments', COALESCE((SELECT jsonb_agg(jsonb_build_object('schedule_id', e.schedule_id,
                                                                     'position', e.action_position,
                                                                     'next_action_at', e.next_action_at))
                                 FROM schedule_enrollments e WHERE e.lead_id = l.id AND e.status = 'active'),
                                '[]'::jsonb))"""
"""A lead as it was before an import changed it (a constant SQL expression over `l`), for undo."""


def expire_leads_logged(conn: pg8000.native.Connection, company_id: int, import_id: str,
                        leads: Sequence[tuple[int, int]]) -> None:
    """Expire Existing: the owner's live leads (lead id, the row that replaces it) expire and leave their
    schedule; what they were is recorded for undo."""
    if not leads:
        return
    ids = id_array([lead for lead, _ in leads])
    conn.run(
        f"""WITH t AS (SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS t(l bigint, r int)),
                 prev AS (SELECT l.id, t.r, {_PREVIOUS} AS previous FROM leads l JOIN t ON t.l = l.id
                          WHERE l.company_id = :c AND l.status = 'live'),
                 log AS (INSERT INTO lead_import_changes (import_id, lead_id, kind, row_no, previous)
                         SELECT CAST(:imp AS uuid), id, 'expired', r, previous FROM prev ON CONFLICT DO NOTHING),
                 l AS (UPDATE leads SET status = 'expired', next_action_at = NULL, updated_at = now()
                       WHERE company_id = :c AND id IN (SELECT id FROM prev) RETURNING id)
            UPDATE schedule_enrollments SET status = 'ended', ended_at = now()
            WHERE lead_id = ANY(CAST(:ids AS bigint[])) AND lead_id IN (SELECT id FROM l) AND status = 'active'""",  # noqa: S608 - constant
        c=company_id, imp=import_id, ids=ids, rows=_json([{"l": lead, "r": row} for lead, row in leads]),
    )


def move_leads(conn: pg8000.native.Connection, company_id: int, import_id: str, leads: Sequence[tuple[int, int]],
               schedule_id: int, first_position: int | None, next_action_at: datetime | None,
               without_run: Collection[int] = ()) -> list[tuple[str, dict[str, str], datetime | None]]:
    """Move To Another Schedule: live leads (lead id, the row that moves it) leave their owner for `schedule_id`
    and start its first action. A live lead the target already had for the same caller_id expires (the moved
    lead replaces it). What each was is recorded for undo. Returns (caller_id, tokens, expires_at) of the moved
    leads, for their tokens under the new owner."""
    if not leads:
        return []
    ids = id_array([lead for lead, _ in leads])
    conn.run(
        f"""WITH t AS (SELECT * FROM json_to_recordset(CAST(:rows AS json)) AS t(l bigint, r int)),
                src AS (SELECT l.id, l.caller_id, t.r, {_PREVIOUS} AS previous FROM leads l JOIN t ON t.l = l.id
                        WHERE l.company_id = :c AND l.status = 'live'),
                clash AS (SELECT l.id, src.r, {_PREVIOUS} AS previous FROM leads l JOIN src ON l.caller_id = src.caller_id
                          WHERE l.company_id = :c AND l.owner_type = 'schedule' AND l.owner_id = :s
                            AND l.status = 'live'),
                log AS (INSERT INTO lead_import_changes (import_id, lead_id, kind, row_no, previous)
                        SELECT CAST(:imp AS uuid), id, 'moved', r, previous FROM src
                        UNION ALL SELECT CAST(:imp AS uuid), id, 'expired', r, previous FROM clash
                        ON CONFLICT DO NOTHING),
                expired AS (UPDATE leads x SET status = 'expired', next_action_at = NULL, updated_at = now()
                            WHERE x.company_id = :c AND x.id IN (SELECT id FROM clash) RETURNING x.id)
           UPDATE schedule_enrollments SET status = 'ended', ended_at = now()
           WHERE status = 'active' AND (lead_id = ANY(CAST(:ids AS bigint[])) OR lead_id IN (SELECT id FROM expired))""",  # noqa: S608 - constant
        c=company_id, ids=ids, s=schedule_id, imp=import_id, rows=_json([{"l": lead, "r": row} for lead, row in leads]),
    )
    moved = conn.run(
        """UPDATE leads SET owner_type = 'schedule', owner_id = :s,
                  next_action_at = CASE WHEN id = ANY(CAST(:quiet AS bigint[])) THEN NULL
                                        ELSE CAST(:at AS timestamptz) END,
                  updated_at = now()
           WHERE company_id = :c AND id = ANY(CAST(:ids AS bigint[])) AND status = 'live'
           RETURNING id, caller_id, tokens, expires_at""",
        c=company_id, ids=ids, s=schedule_id, at=next_action_at, quiet=id_array(sorted(without_run)),
    ) or []
    to_enroll = [r[0] for r in moved if r[0] not in without_run]  # contacts that take no calls get no run
    if first_position is not None and to_enroll:
        conn.run(
            """INSERT INTO schedule_enrollments (company_id, lead_id, schedule_id, action_position, next_action_at)
               SELECT :c, l, :s, :pos, CAST(:at AS timestamptz) FROM unnest(CAST(:ids AS bigint[])) AS l
               ON CONFLICT DO NOTHING""",
            c=company_id, s=schedule_id, ids=id_array(to_enroll), pos=first_position, at=next_action_at,
        )
    return [(r[1], dict(r[2] or {}), r[3]) for r in moved]


def update_leads(conn: pg8000.native.Connection, company_id: int, import_id: str,
                 updates: Sequence[tuple[LeadCandidate, int, datetime | None]],
                 max_contact_attempts: int | None) -> list[tuple[str, dict[str, str], datetime | None]]:
    """Re-imported rows refresh the owner's live lead: (row, lead id, the row's expiry or None). The lead takes
    the row's tokens (over its own), and its email, expiry, remote IP, priority, sub id, traffic source and buyers
    where the row (or the import's defaults) has them; what it was is recorded for undo. Returns (caller_id,
    tokens, expires_at) of the refreshed leads, for their tokens in Redis."""
    if not updates:
        return []
    result = conn.run(
        f"""WITH t AS (SELECT * FROM json_to_recordset(CAST(:rows AS json))
                       AS t(l bigint, r int, email text, exp timestamptz, ip text, prio int, ts bigint, buyers text,
                            sub_id text, tokens jsonb)),
                prev AS (SELECT l.id, t.r, {_PREVIOUS} AS previous FROM leads l JOIN t ON t.l = l.id
                         WHERE l.company_id = :c AND l.status = 'live' FOR UPDATE OF l),
                log AS (INSERT INTO lead_import_changes (import_id, lead_id, kind, row_no, previous)
                        SELECT CAST(:imp AS uuid), id, 'updated', r, previous FROM prev
                        -- a second row of the import refreshing the same lead (an in-file duplicate that won it
                        -- over): the lead's state before the import stays, the row is the latest
                        ON CONFLICT (import_id, lead_id, kind) DO UPDATE SET row_no = EXCLUDED.row_no),
                up AS (UPDATE leads l SET
                           tokens = l.tokens || t.tokens, email = COALESCE(t.email, l.email),
                           expires_at = COALESCE(t.exp, l.expires_at), remote_ip = COALESCE(CAST(t.ip AS inet), l.remote_ip),
                           lead_priority = COALESCE(t.prio, l.lead_priority), sub_id = COALESCE(t.sub_id, l.sub_id),
                           traffic_source_id = COALESCE(t.ts, l.traffic_source_id),
                           buyer_ids = CASE WHEN t.buyers = '{{}}' THEN l.buyer_ids ELSE CAST(t.buyers AS bigint[]) END,
                           max_contact_attempts = COALESCE(CAST(:mca AS int), l.max_contact_attempts),
                           updated_at = now()
                       FROM t WHERE l.id = t.l AND l.id IN (SELECT id FROM prev)
                       RETURNING l.caller_id, l.tokens, l.expires_at)
           SELECT CAST(COALESCE(json_agg(json_build_array(caller_id, tokens, expires_at)), '[]') AS text) FROM up""",  # noqa: S608 - constant
        c=company_id, imp=import_id, mca=max_contact_attempts,
        rows=_json([{"l": lead_id, "r": c.row_no, "email": c.email, "exp": exp.isoformat() if exp else None,
                     "ip": c.remote_ip, "prio": c.lead_priority, "ts": c.traffic_source_id,
                     "buyers": id_array(c.buyer_ids), "sub_id": c.sub_id, "tokens": _pg_safe(c.tokens)}
                    for c, lead_id, exp in updates]),
    )
    return [(phone, dict(tokens or {}), datetime.fromisoformat(exp) if exp else None)
            for phone, tokens, exp in orjson.loads(rows_text(result))]


def apply_contact_flags(conn: pg8000.native.Connection, company_id: int, import_id: str,
                        candidates: Sequence[LeadCandidate], opt: str | None, block: str | None) -> None:
    """Apply Opt-Out / Opt-In and Block / Unblock to the contact of every row with a valid phone (created,
    refreshed, scrubbed or duplicate alike; a contact is created where none exists), recording the flags as
    they were for undo. A contact that opts out or is blocked takes no more calls: the runs of its live leads
    end."""
    if not candidates or (opt is None and block is None):
        return
    phones = sorted({c.phone for c in candidates})
    by_phone = {c.phone: c for c in candidates}
    conn.run(
        """WITH old AS (SELECT id, opted_out, blocked FROM contacts
                        WHERE company_id = :c AND phone = ANY(CAST(:p AS text[]))),
                up AS (INSERT INTO contacts AS ct (company_id, phone, country, time_zone, opted_out, blocked)
                       SELECT :c, t.p, t.r, t.z, :opt = 'opt_out', :block = 'block'
                       FROM json_to_recordset(CAST(:rows AS json)) AS t(p text, r text, z text)
                       ORDER BY t.p
                       ON CONFLICT (company_id, phone) DO UPDATE SET
                           opted_out = CASE :opt WHEN 'opt_out' THEN true WHEN 'opt_in' THEN false ELSE ct.opted_out END,
                           blocked = CASE :block WHEN 'block' THEN true WHEN 'unblock' THEN false ELSE ct.blocked END,
                           updated_at = now()
                       RETURNING id, opted_out, blocked)
           INSERT INTO lead_import_contact_flags (import_id, contact_id, opted_out, blocked)
           SELECT CAST(:imp AS uuid), up.id, COALESCE(old.opted_out, false), COALESCE(old.blocked, false)
           FROM up LEFT JOIN old ON old.id = up.id
           WHERE old.id IS NULL OR old.opted_out <> up.opted_out OR old.blocked <> up.blocked
           ON CONFLICT DO NOTHING""",
        c=company_id, imp=import_id, p=phone_array(phones), opt=opt or "", block=block or "",
        rows=_json([{"p": p, "r": by_phone[p].region, "z": by_phone[p].time_zone} for p in phones]),
    )
    if opt == "opt_out" or block == "block":
        running = conn.run(
            """SELECT DISTINCT l.id FROM leads l JOIN schedule_enrollments e ON e.lead_id = l.id AND e.status = 'active'
               WHERE l.company_id = :c AND l.caller_id = ANY(CAST(:p AS text[])) AND l.status = 'live'""",
            c=company_id, p=phone_array(phones),
        ) or []
        end_runs(conn, company_id, import_id, [r[0] for r in running])


def end_runs(conn: pg8000.native.Connection, company_id: int, import_id: str, lead_ids: Sequence[int]) -> None:
    """End the active schedule runs of these leads (Manage Schedule for a contact that takes no calls)."""
    if lead_ids:
        log_runs(conn, company_id, import_id, lead_ids)
        conn.run("UPDATE schedule_enrollments SET status = 'ended', ended_at = now()"
                 " WHERE company_id = :c AND lead_id = ANY(CAST(:ids AS bigint[])) AND status = 'active'",
                 c=company_id, ids=id_array(lead_ids))


def log_runs(conn: pg8000.native.Connection, company_id: int, import_id: str, lead_ids: Sequence[int]) -> None:
    """Record the active schedule runs of other imports' leads before this import stops or (re)starts them."""
    conn.run(
        """INSERT INTO lead_import_changes (import_id, lead_id, kind, previous)
           SELECT CAST(:imp AS uuid), l.id, 'runs',
                  jsonb_build_object('enrollments', COALESCE(
                      (SELECT jsonb_agg(jsonb_build_object('schedule_id', e.schedule_id, 'position', e.action_position,
                                                           'next_action_at', e.next_action_at))
                       FROM schedule_enrollments e WHERE e.lead_id = l.id AND e.status = 'active'), '[]'::jsonb))
           FROM leads l
           WHERE l.company_id = :c AND l.id = ANY(CAST(:ids AS bigint[]))
             AND l.import_id IS DISTINCT FROM CAST(:imp AS uuid)
           ON CONFLICT DO NOTHING""",
        c=company_id, imp=import_id, ids=id_array(lead_ids),
    )


def source_leads(conn: pg8000.native.Connection, company_id: int, owner_type: str, owner_id: int,
                 phones: Sequence[str]) -> dict[str, tuple[dict[str, str], str | None]]:
    """Copy To This Schedule: the live leads of another owner for these phones: phone -> (tokens, email)."""
    if not phones:
        return {}
    rows = conn.run(
        """SELECT caller_id, tokens, email FROM leads
           WHERE company_id = :c AND owner_type = :ot AND owner_id = :oid AND status = 'live'
             AND (expires_at IS NULL OR expires_at > now()) AND caller_id = ANY(CAST(:p AS text[]))""",
        c=company_id, ot=owner_type, oid=owner_id, p=phone_array(phones),
    ) or []
    return {r[0]: (dict(r[1] or {}), r[2]) for r in rows}


def insert_rejections(conn: pg8000.native.Connection, import_id: str, rejections: Sequence[RowRejection]) -> None:
    if rejections:
        conn.run(
            """INSERT INTO lead_import_rejections (import_id, row_no, reason, message, "values")
               SELECT CAST(:i AS uuid), r, reason, m, v
               FROM json_to_recordset(CAST(:rows AS json)) AS t(r int, reason text, m text, v jsonb)
               ON CONFLICT (import_id, row_no) DO UPDATE SET reason = EXCLUDED.reason, message = EXCLUDED.message""",
            i=import_id,
            rows=_json([{"r": r.row_no, "reason": r.reason, "m": r.message.replace("\x00", "\\0"),
                         "v": _pg_safe(r.values)} for r in rejections]),
        )


def encode_tokens(tokens: dict[str, str]) -> bytes:
    """A lead's tokens as the JSON both PostgreSQL and Redis keep (NUL shown as the two characters \\0)."""
    encoded = orjson.dumps(tokens)
    # orjson writes NUL as \u0000; the reader removes NULs from values, so this is the rare path
    return orjson.dumps(_pg_safe(tokens)) if b"\\u0000" in encoded else encoded


def _pg_safe(values: dict[str, str]) -> dict[str, str]:
    """PostgreSQL text and jsonb cannot hold NUL: show it as the escape a user can read."""
    return {k.replace("\x00", "\\0"): v.replace("\x00", "\\0") for k, v in values.items()}


def lead_rows_for_takeover(conn: pg8000.native.Connection, import_id: str, rows: list[int]) -> list[tuple[int, int]]:
    """(lead id, row) of leads this import created for the given rows (an in-file duplicate that lost)."""
    if not rows:
        return []
    found = conn.run(
        "SELECT id, import_row FROM leads WHERE import_id = CAST(:i AS uuid) AND import_row = ANY(CAST(:r AS int[]))",
        i=import_id, r=id_array(rows),
    )
    return [(r[0], r[1]) for r in found or []]


def rejected_rows(conn: pg8000.native.Connection, import_id: str, rows: Sequence[int]) -> set[int]:
    """Which of these rows of the import already have a rejection recorded."""
    if not rows:
        return set()
    found = conn.run("SELECT row_no FROM lead_import_rejections WHERE import_id = CAST(:i AS uuid)"
                     " AND row_no = ANY(CAST(:r AS int[]))", i=import_id, r=id_array(rows))
    return {r[0] for r in found or []}


def record_chunk_counts(conn: pg8000.native.Connection, import_id: str, chunk_no: int, created: int, updated: int,
                        rejected: int) -> None:
    conn.run("UPDATE lead_import_chunks SET created_leads = :c, updated_leads = :u, rejected_rows = :r"
             " WHERE import_id = CAST(:i AS uuid) AND chunk_no = :n",
             c=created, u=updated, r=rejected, i=import_id, n=chunk_no)
