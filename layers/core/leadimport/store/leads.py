"""Leads beyond one chunk: the expiry sweep and undo's restoration. Set-based, one statement per step."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import pg8000.native

from leadimport.store.chunks import rows_text
from leadimport.store.tokens import TokenStamp

Key = tuple[int, str, int, str]  # (company, owner type, owner id, phone): a token key


def expire_due(conn: pg8000.native.Connection, limit: int) -> list[Key]:
    """Leads past their expiry leave live: status expired, schedule runs ended. Returns their token keys.
    A lead whose phone an importer is working on right now (it holds the phone's advisory lock, the key the
    chunk importer takes) is left to that importer, which expires it as it meets it; so is a row another
    transaction holds (SKIP LOCKED)."""
    rows = conn.run(
        """WITH candidates AS (SELECT id, company_id, caller_id FROM leads WHERE status = 'live' AND expires_at <= now()
                               ORDER BY expires_at LIMIT :n FOR UPDATE SKIP LOCKED),
                due AS (SELECT id FROM candidates
                        WHERE pg_try_advisory_xact_lock(phone_lock_company(company_id), hashtext(caller_id))),
                l AS (UPDATE leads SET status = 'expired', next_action_at = NULL, updated_at = now()
                      WHERE id IN (SELECT id FROM due) RETURNING id, company_id, owner_type, owner_id, caller_id),
                e AS (UPDATE schedule_enrollments SET status = 'ended', ended_at = now()
                      WHERE lead_id IN (SELECT id FROM l) AND status = 'active')
           SELECT company_id, owner_type, owner_id, caller_id FROM l""",
        n=limit,
    ) or []
    return [(int(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]


@dataclass
class Restoration:
    """What undo did in the database, for Redis: keys to remove first, then tokens to stamp."""

    removed: list[Key] = field(default_factory=list)
    stamps: list[TokenStamp] = field(default_factory=list)
    expired_created: int = 0


_RESTORED = """CAST(COALESCE(json_agg(json_build_array(company_id, owner_type, owner_id, caller_id, tokens, expires_at)),
                    '[]') AS text)"""


def _stamps(result: list[list[Any]]) -> list[TokenStamp]:
    return [TokenStamp(int(c), str(t), int(o), str(p), dict(tokens or {}), datetime.fromisoformat(x) if x else None)
            for c, t, o, p, tokens, x in json.loads(rows_text(result))]


def undo_import(conn: pg8000.native.Connection, company_id: int, import_id: str) -> Restoration:
    """Put back what an import did, in an order that keeps one live lead per owner and caller_id:
    1. the leads it created expire (their runs end);
    2. leads it moved go back to their owner, with their runs, when no live lead took their place there;
    3. leads it expired (Expire Existing, or a move's clash) are live again, with their runs, when nothing
       newer replaced them;
    4. leads it refreshed get their values back (when still live);
    5. schedule runs it stopped or (re)started are as they were;
    6. contacts get back the opt-out and block flags they had.
    Its record of changes is then spent: undoing again changes nothing more."""
    out = Restoration()
    created = conn.run(
        """WITH l AS (UPDATE leads SET status = 'expired', next_action_at = NULL, updated_at = now()
                      WHERE company_id = :c AND import_id = CAST(:i AS uuid) AND status = 'live'
                      RETURNING id, owner_type, owner_id, caller_id),
                e AS (UPDATE schedule_enrollments SET status = 'ended', ended_at = now()
                      WHERE lead_id IN (SELECT id FROM l) AND status = 'active')
           SELECT owner_type, owner_id, caller_id FROM l""",
        c=company_id, i=import_id,
    ) or []
    out.removed.extend((company_id, str(t), int(o), str(p)) for t, o, p in created)
    out.expired_created = len(created)

    # 2. moved leads go back (their tokens under the schedule they were moved to go away)
    moved = conn.run(
        f"""WITH ch AS (SELECT lead_id, previous FROM lead_import_changes WHERE import_id = CAST(:i AS uuid)
                        AND kind = 'moved'),
                 back AS (SELECT l.id, l.owner_type AS moved_type, l.owner_id AS moved_id, ch.previous
                          FROM leads l JOIN ch ON ch.lead_id = l.id
                          WHERE l.company_id = :c AND l.status = 'live'
                            AND NOT EXISTS (SELECT 1 FROM leads o WHERE o.company_id = :c AND o.status = 'live'
                                              AND o.owner_type = ch.previous->>'owner_type'
                                              AND o.owner_id = CAST(ch.previous->>'owner_id' AS bigint)
                                              AND o.caller_id = l.caller_id AND o.id <> l.id)
                          FOR UPDATE OF l),
                 ended AS (UPDATE schedule_enrollments SET status = 'ended', ended_at = now()
                           WHERE lead_id IN (SELECT id FROM back) AND status = 'active'),
                 up AS (UPDATE leads l SET owner_type = back.previous->>'owner_type',
                                          owner_id = CAST(back.previous->>'owner_id' AS bigint),
                                          next_action_at = CAST(back.previous->>'next_action_at' AS timestamptz),
                                          updated_at = now()
                        FROM back WHERE l.id = back.id
                        RETURNING l.id, l.company_id, l.owner_type, l.owner_id, l.caller_id, l.tokens, l.expires_at,
                                  back.moved_type, back.moved_id)
            SELECT {_RESTORED}, CAST(COALESCE(json_agg(json_build_array(moved_type, moved_id, caller_id)), '[]') AS text),
                   CAST(COALESCE(json_agg(id), '[]') AS text)
            FROM up""",  # noqa: S608 - constant
        c=company_id, i=import_id,
    )
    out.stamps.extend(_stamps([[moved[0][0]]]))
    out.removed.extend((company_id, str(t), int(o), str(p)) for t, o, p in json.loads(moved[0][1]))
    moved_back: list[int] = json.loads(moved[0][2])
    _restore_runs(conn, company_id, import_id, "moved", moved_back)

    # 3. expired leads live again
    revived = conn.run(
        f"""WITH ch AS (SELECT lead_id, previous FROM lead_import_changes WHERE import_id = CAST(:i AS uuid)
                        AND kind = 'expired'),
                 up AS (UPDATE leads l SET status = 'live',
                                          next_action_at = CAST(ch.previous->>'next_action_at' AS timestamptz),
                                          updated_at = now()
                        FROM ch WHERE l.id = ch.lead_id AND l.company_id = :c AND l.status = 'expired'
                          AND NOT EXISTS (SELECT 1 FROM leads o WHERE o.company_id = :c AND o.status = 'live'
                                            AND o.owner_type = l.owner_type AND o.owner_id = l.owner_id
                                            AND o.caller_id = l.caller_id)
                        RETURNING l.id, l.company_id, l.owner_type, l.owner_id, l.caller_id, l.tokens, l.expires_at)
            SELECT {_RESTORED}, CAST(COALESCE(json_agg(id), '[]') AS text) FROM up""",  # noqa: S608 - constant
        c=company_id, i=import_id,
    )
    out.stamps.extend(_stamps([[revived[0][0]]]))
    revived_ids: list[int] = json.loads(revived[0][1])
    _restore_runs(conn, company_id, import_id, "expired", revived_ids)

    # 4. refreshed leads get their values back
    refreshed = conn.run(
        f"""WITH ch AS (SELECT lead_id, previous AS p FROM lead_import_changes WHERE import_id = CAST(:i AS uuid)
                        AND kind = 'updated'),
                 up AS (UPDATE leads l SET
                            email = ch.p->>'email', expires_at = CAST(ch.p->>'expires_at' AS timestamptz),
                            remote_ip = CAST(ch.p->>'remote_ip' AS inet),
                            lead_priority = CAST(ch.p->>'lead_priority' AS int),
                            traffic_source_id = CAST(ch.p->>'traffic_source_id' AS bigint),
                            buyer_ids = ARRAY(SELECT CAST(jsonb_array_elements_text(ch.p->'buyer_ids') AS bigint)),
                            sub_id = ch.p->>'sub_id', tokens = ch.p->'tokens',
                            max_contact_attempts = CAST(ch.p->>'max_contact_attempts' AS int), updated_at = now()
                        FROM ch WHERE l.id = ch.lead_id AND l.company_id = :c AND l.status = 'live'
                        RETURNING l.company_id, l.owner_type, l.owner_id, l.caller_id, l.tokens, l.expires_at)
            SELECT {_RESTORED} FROM up""",  # noqa: S608 - constant
        c=company_id, i=import_id,
    )
    out.stamps.extend(_stamps(refreshed))

    # 5. schedule runs stopped or (re)started (Manage Schedule, Opt-Out, Block) are as they were (the leads
    # steps 2 and 3 brought back have their runs already: from this same record when there is one)
    runs = conn.run(
        """WITH ch AS (SELECT c.lead_id FROM lead_import_changes c JOIN leads l ON l.id = c.lead_id
                       WHERE c.import_id = CAST(:i AS uuid) AND c.kind = 'runs' AND l.company_id = :c
                         AND l.status = 'live' AND c.lead_id <> ALL(CAST(:done AS bigint[]))),
                ended AS (UPDATE schedule_enrollments SET status = 'ended', ended_at = now()
                          WHERE lead_id IN (SELECT lead_id FROM ch) AND status = 'active')
           SELECT CAST(COALESCE(json_agg(lead_id), '[]') AS text) FROM ch""",
        c=company_id, i=import_id, done="{" + ",".join(str(int(x)) for x in moved_back + revived_ids) + "}",
    )
    _restore_runs(conn, company_id, import_id, "runs", json.loads(rows_text(runs)))

    # 6. contact flags
    conn.run(
        """UPDATE contacts ct SET opted_out = f.opted_out, blocked = f.blocked, updated_at = now()
           FROM lead_import_contact_flags f
           WHERE f.import_id = CAST(:i AS uuid) AND ct.id = f.contact_id AND ct.company_id = :c""",
        c=company_id, i=import_id,
    )
    conn.run("DELETE FROM lead_import_changes WHERE import_id = CAST(:i AS uuid)", i=import_id)
    conn.run("DELETE FROM lead_import_contact_flags WHERE import_id = CAST(:i AS uuid)", i=import_id)
    return out


def _restore_runs(conn: pg8000.native.Connection, company_id: int, import_id: str, kind: str,
                  lead_ids: list[int]) -> None:
    """The schedule runs the leads had before the import (schedule, position, next action time): from the 'runs'
    record when the import stopped or restarted them before it expired or moved the lead (it saw them first),
    else from the change's own record."""
    if not lead_ids:
        return
    conn.run(
        """INSERT INTO schedule_enrollments (company_id, lead_id, schedule_id, action_position, next_action_at)
           SELECT :c, ch.lead_id, CAST(e->>'schedule_id' AS bigint), CAST(e->>'position' AS int),
                  CAST(e->>'next_action_at' AS timestamptz)
           FROM lead_import_changes ch
           CROSS JOIN jsonb_array_elements(COALESCE(
               (SELECT r.previous->'enrollments' FROM lead_import_changes r
                WHERE r.import_id = ch.import_id AND r.lead_id = ch.lead_id AND r.kind = 'runs'),
               ch.previous->'enrollments')) AS e
           WHERE ch.import_id = CAST(:i AS uuid) AND ch.kind = :k AND ch.lead_id = ANY(CAST(:ids AS bigint[]))
           ON CONFLICT DO NOTHING""",
        c=company_id, i=import_id, k=kind, ids="{" + ",".join(str(int(x)) for x in lead_ids) + "}",
    )


def own_live_lead_keys(conn: pg8000.native.Connection, import_id: str, after_row: int, limit: int
                       ) -> tuple[int | None, list[tuple[int, str]]]:
    """A page of the live, unexpired leads the import created: the next page's cursor (None after the last page)
    and (lead id, token key without the store's prefix: see TokenStore.key) of the leads of rows after_row + 1 ..
    after_row + limit. No lock and no tokens: most pages only confirm that Redis has every key (see
    live_leads_by_id). A page is a range of import rows, never "the next `limit` leads": that let the planner
    read every lead of the import for each page (a bitmap scan and a sort; the import's size times its pages),
    7 us of PostgreSQL CPU per lead at 100k, more as it grows."""
    rows = conn.run(
        """SELECT CAST(json_build_array(
                      (SELECT max(import_row) FROM leads WHERE import_id = CAST(:i AS uuid)),
                      (SELECT COALESCE(json_agg(json_build_array(id, concat_ws(':', company_id, owner_type, owner_id, caller_id))
                                                ORDER BY import_row), '[]')
                       FROM leads WHERE import_id = CAST(:i AS uuid) AND import_row > :after
                                    AND import_row <= :after + :n AND status = 'live'
                                    AND (expires_at IS NULL OR expires_at > now()))) AS text)""",
        i=import_id, after=after_row, n=limit,
    )
    last_row, page = orjson.loads(rows_text(rows))
    following = after_row + limit
    return (following if last_row is not None and following < last_row else None,
            [(int(lead), str(key)) for lead, key in page])


def changed_live_lead_keys(conn: pg8000.native.Connection, import_id: str, after_id: int, limit: int
                           ) -> tuple[int | None, list[tuple[int, str]]]:
    """A page of the live, unexpired leads the import refreshed or moved: the next page's cursor (None after the
    last page) and (lead id, token key without the prefix), for the import's next `limit` changes by lead id (read
    in the order of their primary key: a page costs its own size whatever the import's)."""
    rows = conn.run(
        """WITH changed AS (SELECT lead_id FROM lead_import_changes
                            WHERE import_id = CAST(:i AS uuid) AND lead_id > :after AND kind IN ('updated', 'moved')
                            ORDER BY lead_id LIMIT :n)
           SELECT CAST(json_build_array(
                      (SELECT count(*) FROM changed), (SELECT max(lead_id) FROM changed),
                      (SELECT COALESCE(json_agg(json_build_array(id, concat_ws(':', company_id, owner_type, owner_id, caller_id))
                                                ORDER BY id), '[]')
                       FROM leads WHERE id IN (SELECT lead_id FROM changed)
                                    AND status = 'live' AND (expires_at IS NULL OR expires_at > now()))) AS text)""",
        i=import_id, after=after_id, n=limit,
    )
    count, last_id, page = orjson.loads(rows_text(rows))
    return (int(last_id) if count == limit else None,
            [(int(lead), str(key)) for lead, key in page])


def live_leads_by_id(conn: pg8000.native.Connection, lead_ids: list[int]) -> list[TokenStamp]:
    """The leads among `lead_ids` still live and unexpired, with their tokens, locked FOR SHARE: an undo or an
    expiry removing their tokens waits until the caller's transaction has stamped them again."""
    if not lead_ids:
        return []
    rows = conn.run(
        """SELECT company_id, owner_type, owner_id, caller_id, tokens, expires_at FROM leads
            WHERE id = ANY(CAST(:ids AS bigint[])) AND status = 'live' AND (expires_at IS NULL OR expires_at > now()) ORDER BY id FOR SHARE""",
        ids="{" + ",".join(str(int(i)) for i in lead_ids) + "}",
    ) or []
    return [TokenStamp(int(r[0]), str(r[1]), int(r[2]), str(r[3]), dict(r[4] or {}), r[5]) for r in rows]
