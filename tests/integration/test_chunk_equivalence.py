"""The lean chunk write gives the same outcome whatever the chunking: the whole file as one chunk in row order (the
straightforward reference) against odd chunk sizes in shuffled order with redeliveries, each in its own copy of the
database. Every row's outcome, the counters, the live leads (row, tokens, email), the contacts, the enrollments
and the Redis values must be identical."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from leadimport.messages import ChunkMessage
from leadimport.services.import_chunk import ChunkImporter
from leadimport.store.db import ConnectionParams, Database
from leadimport.store.tokens import TokenStore
from tests.conftest import DatabaseClones, _with_database
from tests.integration.test_import_chunk import COLUMNS, SEEDED, make_import

pytestmark = pytest.mark.integration

OPTIONS = {"scrub": {"scope": "company", "dialed": True}, "lead_management": {"hours_until_expiration": 48}}


def file_rows() -> list[list[str]]:
    """A file with what a real list has: fresh numbers, in-file duplicates (near and far apart, with different
    tokens), bad phones, and numbers the database knows (blacklisted, dialed, an opted-out contact, a live lead)."""
    rnd = random.Random(7)
    fresh = [f"+1951876{n:04d}" for n in range(80)]
    rows = [[p, f"u{i}@example.com", f"interest {i}", "US"] for i, p in enumerate(fresh)]
    for i in range(30):  # duplicates of earlier numbers, with other tokens
        rows.insert(rnd.randrange(len(rows) + 1), [rnd.choice(fresh[:20]), "", f"again {i}", "US"])
    for i, bad in enumerate(["12", "not a phone", "+999", "", "555-01"]):
        rows.insert(rnd.randrange(len(rows) + 1), [bad, "", f"bad {i}", "US"])
    for name in ("blacklisted", "dialed", "opted_out", "existing"):
        rows.insert(rnd.randrange(len(rows) + 1), [SEEDED[name], "", f"known {name}", "US"])
    for i in range(3):  # the owner's live lead (see LIVE_LEAD), refreshed; the last row wins
        rows.insert(rnd.randrange(len(rows) + 1), [LIVE_LEAD, f"live{i}@example.com", f"refresh {i}", "US"])
    return rows


LIVE_LEAD = "+19518769999"  # schedule 1 (the import's owner) has a live lead for it before the import


def add_live_lead(db: Database) -> None:
    contact = db.run("INSERT INTO contacts (company_id, phone, country) VALUES (1, :p, 'US') RETURNING id",
                     p=LIVE_LEAD)[0][0]
    db.run("INSERT INTO leads (company_id, owner_type, owner_id, contact_id, caller_id, tokens)"
           " VALUES (1, 'schedule', 1, :c, :p, '{\"before\": \"x\"}')", c=contact, p=LIVE_LEAD)


def run(db: Database, tokens: TokenStore, rows: list[list[str]], chunk_size: int, order: str,
        redeliver_every: int) -> dict[str, Any]:
    numbered = list(enumerate(rows, start=1))
    chunks = [numbered[i:i + chunk_size] for i in range(0, len(numbered), chunk_size)]
    add_live_lead(db)
    import_id = make_import(db, OPTIONS, chunk_count=len(chunks), total=len(rows))
    messages = [ChunkMessage(import_id, n, part[0][0], list(COLUMNS), list(COLUMNS), rows=list(part))
                for n, part in enumerate(chunks)]
    if order == "shuffled":
        random.Random(len(chunks)).shuffle(messages)
    elif order == "reversed":
        messages.reverse()
    importer = ChunkImporter(db, tokens)
    for i, message in enumerate(messages):
        assert importer.import_chunk(message).outcome == "processed"
        if redeliver_every and i % redeliver_every == 0:
            assert importer.import_chunk(message).outcome == "duplicate"  # SQS delivers it again
    return snapshot(db, tokens, import_id)


def snapshot(db: Database, tokens: TokenStore, import_id: str) -> dict[str, Any]:
    i = {"i": import_id}
    rejected = {r[0]: r[1] for r in db.run(
        "SELECT row_no, reason FROM lead_import_rejections WHERE import_id = CAST(:i AS uuid)", **i)}
    live = db.run("SELECT import_row, caller_id, tokens, email, owner_type, owner_id, expires_at IS NOT NULL"
                  " FROM leads WHERE import_id = CAST(:i AS uuid) AND status = 'live' ORDER BY import_row", **i)
    updated = {r[0]: "updated" for r in db.run(
        "SELECT row_no FROM lead_import_changes WHERE import_id = CAST(:i AS uuid) AND kind = 'updated'", **i)}
    outcomes = {**{r[0]: "created" for r in live}, **updated, **rejected}
    counters = db.rows("SELECT status, total_rows, processed_rows, created_leads, updated_leads, rejected_rows,"
                       " unprocessed_rows, rejections, warnings FROM lead_imports WHERE id = CAST(:i AS uuid)", **i)[0]
    return {
        "outcomes": outcomes,
        "counters": counters,
        "live_leads": [r[:4] + [r[6]] for r in live],
        "contacts": db.run("SELECT phone, country, time_zone, opted_out, blocked FROM contacts ORDER BY phone"),
        "enrollments": db.run("SELECT l.caller_id, e.schedule_id, e.action_position, e.status FROM schedule_enrollments e"
                              " JOIN leads l ON l.id = e.lead_id WHERE l.import_id = CAST(:i AS uuid)"
                              " AND l.status = 'live' ORDER BY 1, 2", **i),
        "redis": {r[1]: tokens.tokens_for(1, r[4], r[5], r[1]) for r in live},
        "refreshed_lead": db.run("SELECT tokens, email, expires_at IS NOT NULL FROM leads WHERE caller_id = :p"
                                 " AND status = 'live'", p=LIVE_LEAD) + [tokens.tokens_for(1, "schedule", 1, LIVE_LEAD)],
    }


@pytest.fixture
def fresh_databases(services: Any, database_clones: DatabaseClones) -> Iterator[Any]:
    taken: list[tuple[str, Database]] = []

    def take() -> Database:
        name = database_clones.take()
        db = Database(ConnectionParams.from_url(_with_database(services.database_url, name)))
        taken.append((name, db))
        return db

    yield take
    for name, db in taken:
        db.close()
        database_clones.give_back(name)


@pytest.mark.parametrize(("chunk_size", "order", "redeliver_every"), [
    (7, "shuffled", 3),
    (23, "reversed", 2),
    (50, "shuffled", 1),
])
def test_any_chunking_gives_the_outcome_of_one_chunk_in_row_order(fresh_databases: Any, services: Any,
                                                                   redis_prefix: str, chunk_size: int, order: str,
                                                                   redeliver_every: int) -> None:
    rows = file_rows()
    reference = run(fresh_databases(), TokenStore(services.redis_url, f"{redis_prefix}a"), rows, len(rows),
                    "in order", 0)
    other = run(fresh_databases(), TokenStore(services.redis_url, f"{redis_prefix}b"), rows, chunk_size, order,
                redeliver_every)
    # the reference is a real import: every row has one outcome, and the kinds of outcome are all there
    assert sorted(reference["outcomes"]) == list(range(1, len(rows) + 1))
    assert {"created", "updated", "duplicate_in_file", "invalid_phone", "blacklisted", "scrubbed_dialed"} <= set(
        reference["outcomes"].values())
    for part in reference:
        assert other[part] == reference[part], part
