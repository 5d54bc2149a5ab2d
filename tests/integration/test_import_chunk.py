"""The worker's use case against real PostgreSQL and Redis: rules, scrub, options, exactly-once, races."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest

from leadimport.imports import repository as import_repo
from leadimport.messages import ChunkMessage
from leadimport.options import ImportOptions, options_json
from leadimport.services.import_chunk import ChunkImporter
from leadimport.store.db import ConnectionParams, Database
from leadimport.store.tokens import TokenStore

pytestmark = pytest.mark.integration

COLUMNS = ["caller_id", "email", "interest", "country"]


def make_import(db: Database, options: dict[str, Any] | None = None, *, owner: tuple[str, int] = ("schedule", 1),
                company: int = 1, chunk_count: int | None = None, total: int | None = None) -> str:
    import_id = str(uuid.uuid4())
    opts = options_json(ImportOptions.model_validate(options or {}))
    with db.transaction() as conn:
        import_repo.insert_import(conn, import_id=import_id, company_id=company, name="test", owner_type=owner[0],
                                  owner_id=owner[1], options=opts, status="processing", source="api",
                                  upload_key=f"uploads/{company}/{import_id}/upload.csv")
        if chunk_count is not None:
            conn.run("UPDATE lead_imports SET chunk_count = :c, total_rows = :t, split_done = true"
                     " WHERE id = CAST(:i AS uuid)", c=chunk_count, t=total, i=import_id)
    return import_id


def chunk(import_id: str, chunk_no: int, rows: list[list[str]], first_row: int = 1,
          columns: list[str] = COLUMNS) -> ChunkMessage:
    return ChunkMessage(import_id, chunk_no, first_row, list(columns), list(columns),
                        rows=[(first_row + i, r) for i, r in enumerate(rows)])


@pytest.fixture
def tokens(services: Any, redis_prefix: str) -> TokenStore:
    return TokenStore(services.redis_url, redis_prefix)


@pytest.fixture
def importer(db: Database, tokens: TokenStore) -> ChunkImporter:
    return ChunkImporter(db, tokens)


def state(db: Database, import_id: str) -> dict[str, Any]:
    return db.rows("SELECT status, processed_rows, created_leads, updated_leads, rejected_rows, unprocessed_rows,"
                   " rejections, warnings"
                   " FROM lead_imports WHERE id = CAST(:i AS uuid)", i=import_id)[0]


def reasons(db: Database, import_id: str) -> dict[int, str]:
    return {r[0]: r[1] for r in db.run("SELECT row_no, reason FROM lead_import_rejections"
                                       " WHERE import_id = CAST(:i AS uuid)", i=import_id)}


def live_leads(db: Database, import_id: str) -> list[tuple[int, str]]:
    return [(r[0], r[1]) for r in db.run("SELECT import_row, caller_id FROM leads WHERE import_id = CAST(:i AS uuid)"
                                         " AND status = 'live' ORDER BY import_row", i=import_id)]


# ---- scrub: each option rejects what it should and nothing else --------------------------------------

SEEDED = {  # demo data: phone -> what it has (see infra/db/seed/demo.sql)
    "dialed": "+16175550100", "connected": "+17185550111", "converted": "+13125550178",
    "opted_out": "+12125550101", "blocked": "+13055550122", "disposition": "+15125550133",
    "existing": "+16465550144", "blacklisted": "+12025550143", "fresh": "+19518761336",
}


@pytest.mark.parametrize(("scrub", "expected"), [
    ({}, {"blacklisted": "blacklisted"}),
    ({"scope": "company", "existing": True},
     {"blacklisted": "blacklisted", "dialed": "scrubbed_existing", "connected": "scrubbed_existing",
      "converted": "scrubbed_existing", "opted_out": "scrubbed_existing", "blocked": "scrubbed_existing",
      "disposition": "scrubbed_existing", "existing": "scrubbed_existing"}),
    ({"scope": "company", "dialed": True},
     {"blacklisted": "blacklisted", "dialed": "scrubbed_dialed", "connected": "scrubbed_dialed",
      "converted": "scrubbed_dialed", "opted_out": "scrubbed_dialed", "disposition": "scrubbed_dialed"}),
    ({"scope": "company", "connected": True},
     {"blacklisted": "blacklisted", "connected": "scrubbed_connected", "converted": "scrubbed_connected",
      "opted_out": "scrubbed_connected", "disposition": "scrubbed_connected"}),
    ({"scope": "company", "converted": True}, {"blacklisted": "blacklisted", "converted": "scrubbed_converted"}),
    ({"scope": "company", "dispositions": ["not_interested"]},
     {"blacklisted": "blacklisted", "disposition": "scrubbed_disposition"}),
    ({"opted_out": True}, {"blacklisted": "blacklisted", "opted_out": "scrubbed_opted_out"}),
    ({"blocked": True}, {"blacklisted": "blacklisted", "blocked": "scrubbed_blocked"}),
    # offer scope: schedule 1 belongs to offer 1; the converted lead is on offer 2, the connected one on offer 1
    ({"scope": "offer", "converted": True, "connected": True},
     {"blacklisted": "blacklisted", "connected": "scrubbed_connected"}),
])
def test_each_scrub_option_rejects_what_it_should_and_nothing_else(db: Database, importer: ChunkImporter,
                                                                   scrub: dict[str, Any],
                                                                   expected: dict[str, str]) -> None:
    names = list(SEEDED)
    import_id = make_import(db, {"scrub": scrub}, chunk_count=1, total=len(names))
    importer.import_chunk(chunk(import_id, 0, [[SEEDED[n], "", "x", "us"] for n in names]))
    got = {names[row - 1]: reason for row, reason in reasons(db, import_id).items()}
    assert got == expected
    s = state(db, import_id)
    assert s["status"] == "completed"
    assert s["created_leads"] == len(names) - len(expected)
    assert s["processed_rows"] == s["created_leads"] + s["rejected_rows"] == len(names)


# ---- exactly once -------------------------------------------------------------------------------------

def test_a_redelivered_chunk_changes_nothing(db: Database, importer: ChunkImporter, tokens: TokenStore,
                                             redis_client: Any, redis_prefix: str) -> None:
    import_id = make_import(db, chunk_count=1, total=2)
    msg = chunk(import_id, 0, [["9518761336", "a@b.co", "cars", "us"], ["bad", "", "", ""]])
    first = importer.import_chunk(msg)
    snapshot = (state(db, import_id), db.run("SELECT id, caller_id, tokens FROM leads ORDER BY id"),
                sorted(redis_client.scan_iter(f"{redis_prefix}:*")))
    second = importer.import_chunk(msg)
    assert (first.outcome, second.outcome) == ("processed", "duplicate")
    assert snapshot == (state(db, import_id), db.run("SELECT id, caller_id, tokens FROM leads ORDER BY id"),
                        sorted(redis_client.scan_iter(f"{redis_prefix}:*")))


def test_a_redis_outage_rolls_the_chunk_back_for_a_retry(db: Database, services: Any, redis_prefix: str) -> None:
    import_id = make_import(db, chunk_count=1, total=1)
    msg = chunk(import_id, 0, [["9518761336", "a@b.co", "cars", "us"]])
    broken = ChunkImporter(db, TokenStore("redis://127.0.0.1:1/0", redis_prefix))
    from leadimport.store.tokens import TokenStoreUnavailableError

    with pytest.raises(TokenStoreUnavailableError):
        broken.import_chunk(msg)
    assert state(db, import_id)["processed_rows"] == 0
    assert db.run("SELECT count(*) FROM leads WHERE import_id = CAST(:i AS uuid)", i=import_id) == [[0]]
    # the retry, once Redis is back, imports the chunk once, with its tokens
    good = TokenStore(services.redis_url, redis_prefix)
    assert ChunkImporter(db, good).import_chunk(msg).created == 1
    assert good.tokens_for(1, "schedule", 1, "+19518761336") == {"interest": "cars", "country": "us"}


def test_duplicates_across_chunks_keep_the_first_row_whatever_the_order(db: Database,
                                                                        importer: ChunkImporter) -> None:
    import_id = make_import(db, chunk_count=2, total=4)
    early = chunk(import_id, 0, [["9518761336", "", "first", "us"], ["2025550111", "", "x", "us"]], first_row=1)
    late = chunk(import_id, 1, [["+1 951 876 1336", "", "second", "us"], ["3125550123", "", "y", "us"]], first_row=3)
    # the later chunk runs first, then the earlier one takes the phone over
    importer.import_chunk(late)
    importer.import_chunk(early)
    assert reasons(db, import_id) == {3: "duplicate_in_file"}
    assert live_leads(db, import_id) == [(1, "+19518761336"), (2, "+12025550111"), (4, "+13125550123")]
    s = state(db, import_id)
    assert (s["status"], s["created_leads"], s["rejected_rows"]) == ("completed", 3, 1)


def test_last_row_wins_policy(db: Database, importer: ChunkImporter) -> None:
    import_id = make_import(db, {"duplicates": "last"}, chunk_count=1, total=3)
    importer.import_chunk(chunk(import_id, 0, [["9518761336", "", "a", "us"], ["9518761336", "", "b", "us"],
                                               ["9518761336", "", "c", "us"]]))
    assert reasons(db, import_id) == {1: "duplicate_in_file", 2: "duplicate_in_file"}
    assert live_leads(db, import_id) == [(3, "+19518761336")]


def test_two_imports_racing_on_the_same_phones_leave_one_live_lead_each(db: Database, database_url: str,
                                                                         services: Any, redis_prefix: str) -> None:
    phones = [f"+1951876{n:04d}" for n in range(1000, 1200)]
    imports = [make_import(db, chunk_count=1, total=len(phones)) for _ in range(2)]
    errors: list[BaseException] = []

    def run(import_id: str) -> None:
        own_db = Database(ConnectionParams.from_url(database_url))
        try:
            ChunkImporter(own_db, TokenStore(services.redis_url, redis_prefix)).import_chunk(
                chunk(import_id, 0, [[p, "", "x", "us"] for p in phones]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            own_db.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in imports]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    live = db.run("SELECT caller_id, count(*) FROM leads WHERE company_id = 1 AND owner_type = 'schedule'"
                  " AND owner_id = 1 AND status = 'live' AND caller_id = ANY(CAST(:p AS text[])) GROUP BY caller_id",
                  p=phones)
    assert len(live) == len(phones) and all(n == 1 for _, n in live)
    # whichever ran second found the other's leads live and refreshed them (existing_leads "update")
    created = sum(state(db, i)["created_leads"] for i in imports)
    updated = sum(state(db, i)["updated_leads"] for i in imports)
    assert (created, updated) == (len(phones), len(phones))


# ---- options ------------------------------------------------------------------------------------------

def test_expire_existing_replaces_the_live_lead(db: Database, importer: ChunkImporter) -> None:
    # offer 2 has a live lead for +16465550144 in the demo data
    import_id = make_import(db, {"lead_management": {"expire_existing": True}}, owner=("offer", 2))
    importer.import_chunk(chunk(import_id, 0, [["+16465550144", "", "x", "us"]]))
    assert db.run("SELECT status FROM leads WHERE id = 7") == [["expired"]]
    assert live_leads(db, import_id) == [(1, "+16465550144")]


def test_without_expire_existing_a_live_lead_is_refreshed_not_duplicated(db: Database,
                                                                          importer: ChunkImporter) -> None:
    import_id = make_import(db, owner=("offer", 2))
    importer.import_chunk(chunk(import_id, 0, [["+16465550144", "new@x.co", "x", "us"]]))
    assert reasons(db, import_id) == {}
    assert (state(db, import_id)["created_leads"], state(db, import_id)["updated_leads"]) == (0, 1)
    lead = db.rows("SELECT status, email, tokens FROM leads WHERE id = 7")[0]
    assert (lead["status"], lead["email"]) == ("live", "new@x.co") and lead["tokens"]["interest"] == "x"
    assert db.run("SELECT count(*) FROM leads WHERE caller_id = '+16465550144' AND status = 'live'") == [[1]]
    # existing_leads "skip": the lead stays as it is and the row is recorded as duplicate_lead
    skip = make_import(db, {"lead_management": {"existing_leads": "skip"}}, owner=("offer", 2))
    importer.import_chunk(chunk(skip, 0, [["+16465550144", "other@x.co", "y", "us"]]))
    assert reasons(db, skip) == {1: "duplicate_lead"}
    assert db.run("SELECT email FROM leads WHERE id = 7") == [["new@x.co"]]


def test_opt_out_and_block_set_the_contact_flags(db: Database, importer: ChunkImporter) -> None:
    import_id = make_import(db, {"lead_management": {"opt": "opt_out", "block": "block"}})
    importer.import_chunk(chunk(import_id, 0, [["9518761336", "", "x", "us"], ["+12125550101", "", "x", "us"]]))
    assert db.run("SELECT phone, opted_out, blocked FROM contacts WHERE phone IN ('+19518761336', '+12125550101')"
                  " ORDER BY phone") == [["+12125550101", True, True], ["+19518761336", True, True]]
    import_id = make_import(db, {"lead_management": {"opt": "opt_in", "block": "unblock"}}, owner=("schedule", 2))
    importer.import_chunk(chunk(import_id, 0, [["9518761336", "", "x", "us"]]))
    assert db.run("SELECT opted_out, blocked FROM contacts WHERE phone = '+19518761336'") == [[False, False]]


def test_expiration_attempts_defaults_and_additional_data(db: Database, importer: ChunkImporter,
                                                          tokens: TokenStore, redis_client: Any) -> None:
    import_id = make_import(db, {
        "lead_management": {"hours_until_expiration": 2, "max_contact_attempts": 3},
        "defaults": {"traffic_source_id": 2, "buyer_ids": [1, 2], "lead_priority": 5, "sub_id": "spring"},
        "additional_data": {"list": "spring-2026", "interest": "overridden-by-row"},
    })
    importer.import_chunk(chunk(import_id, 0, [["9518761336", "", "cars", "us"]]))
    lead = db.rows("SELECT expires_at - created_at AS ttl, max_contact_attempts, traffic_source_id, buyer_ids,"
                   " lead_priority, sub_id FROM leads WHERE import_id = CAST(:i AS uuid)", i=import_id)[0]
    assert abs(lead["ttl"].total_seconds() - 7200) < 5
    assert (lead["max_contact_attempts"], lead["traffic_source_id"], lead["buyer_ids"], lead["lead_priority"],
            lead["sub_id"]) == (3, 2, [1, 2], 5, "spring")
    assert tokens.tokens_for(1, "schedule", 1, "+19518761336") == {
        "list": "spring-2026", "interest": "cars", "country": "us", "lead_priority": "5", "sub_id": "spring"}
    assert 7100 < redis_client.ttl(tokens.key(1, "schedule", 1, "+19518761336")) <= 7200


def test_schedule_leads_off_creates_without_enrolling(db: Database, importer: ChunkImporter) -> None:
    import_id = make_import(db, {"lead_management": {"schedule_leads": False}})
    importer.import_chunk(chunk(import_id, 0, [["9518761336", "", "x", "us"]]))
    assert db.run("SELECT count(*) FROM schedule_enrollments e JOIN leads l ON l.id = e.lead_id"
                  " WHERE l.import_id = CAST(:i AS uuid)", i=import_id) == [[0]]
    assert live_leads(db, import_id) == [(1, "+19518761336")]


def test_add_to_schedule_enrolls_in_both(db: Database, importer: ChunkImporter) -> None:
    import_id = make_import(db, {"lead_management": {"add_to_schedule_id": 2}})
    importer.import_chunk(chunk(import_id, 0, [["9518761336", "", "x", "us"]]))
    assert db.run("SELECT e.schedule_id, e.action_position FROM schedule_enrollments e JOIN leads l ON l.id = e.lead_id"
                  " WHERE l.import_id = CAST(:i AS uuid) ORDER BY 1", i=import_id) == [[1, 1], [2, 1]]


def test_dry_run_reports_without_writing(db: Database, importer: ChunkImporter, redis_client: Any,
                                         redis_prefix: str) -> None:
    import_id = make_import(db, {"dry_run": True}, chunk_count=1, total=3)
    importer.import_chunk(chunk(import_id, 0, [["9518761336", "", "x", "us"], ["nope", "", "", ""],
                                               ["+12025550143", "", "", ""]]))
    s = state(db, import_id)
    assert (s["status"], s["created_leads"], s["rejected_rows"]) == ("completed", 1, 2)
    assert db.run("SELECT count(*) FROM leads WHERE import_id = CAST(:i AS uuid)", i=import_id) == [[0]]
    assert db.run("SELECT count(*) FROM contacts WHERE phone = '+19518761336'") == [[0]]
    assert list(redis_client.scan_iter(f"{redis_prefix}:*")) == []


@pytest.mark.parametrize(("validations", "row", "ok"), [
    ({"require_email": True}, ["9518761336", "", "x", "us"], False),
    ({"require_email": True}, ["9518761336", "a@b.co", "x", "us"], True),
    ({"valid_email": True}, ["9518761336", "not-an-email", "x", "us"], False),
    ({"required_tokens": ["interest"]}, ["9518761336", "", "", "us"], False),
    ({"allowed_countries": ["GB"]}, ["9518761336", "", "x", "us"], False),
    ({"allowed_countries": ["US", "GB"]}, ["9518761336", "", "x", "us"], True),
    ({"mobile_only": True}, ["+44 20 7946 0958", "", "x", "uk"], False),
    ({"mobile_only": True}, ["+44 7911 123456", "", "x", "uk"], True),
])
def test_optional_validations(db: Database, importer: ChunkImporter, validations: dict[str, Any], row: list[str],
                              ok: bool) -> None:
    import_id = make_import(db, {"validations": validations})
    importer.import_chunk(chunk(import_id, 0, [row]))
    assert reasons(db, import_id) == ({} if ok else {1: "failed_validation"})


def test_cancelled_import_skips_chunks_and_counts_them_unprocessed(db: Database, importer: ChunkImporter) -> None:
    import_id = make_import(db, chunk_count=2, total=3)
    importer.import_chunk(chunk(import_id, 0, [["9518761336", "", "x", "us"]]))
    db.run("UPDATE lead_imports SET status = 'cancelled' WHERE id = CAST(:i AS uuid)", i=import_id)
    result = importer.import_chunk(chunk(import_id, 1, [["2025550111", "", "x", "us"], ["3125550123", "", "", ""]],
                                         first_row=2))
    assert result.outcome == "skipped"
    s = state(db, import_id)
    assert (s["created_leads"], s["rejected_rows"], s["unprocessed_rows"]) == (1, 0, 2)
    assert reasons(db, import_id) == {2: "unprocessed", 3: "unprocessed"}


def test_token_names_and_values_are_stored_verbatim(db: Database, importer: ChunkImporter, tokens: TokenStore) -> None:
    columns = ["caller_id", "name'); DROP TABLE leads;--", "a:b:*", "ünï"]
    import_id = make_import(db)
    importer.import_chunk(chunk(import_id, 0, [["9518761336", "Robert'); DROP TABLE leads;--", "x:y", "😀"]],
                                columns=columns))
    assert tokens.tokens_for(1, "schedule", 1, "+19518761336") == {
        "name'); DROP TABLE leads;--": "Robert'); DROP TABLE leads;--", "a:b:*": "x:y", "ünï": "😀"}
    stored = db.run("SELECT tokens FROM leads WHERE import_id = CAST(:i AS uuid)", i=import_id)[0][0]
    assert json.dumps(stored, sort_keys=True) == json.dumps(
        {"a:b:*": "x:y", "name'); DROP TABLE leads;--": "Robert'); DROP TABLE leads;--", "ünï": "😀"}, sort_keys=True)


def _active_runs(db: Database, lead_id: int) -> list[list[Any]]:
    return db.run("SELECT schedule_id, action_position FROM schedule_enrollments WHERE lead_id = :l AND status = 'active'",
                  l=lead_id)


@pytest.mark.parametrize(("mode", "runs_after"), [
    ("nothing", [[1, 2]]), ("stop", []), ("start", [[1, 2]]), ("restart", [[1, 1]]),
])
def test_manage_schedule_acts_on_the_existing_leads_run(db: Database, importer: ChunkImporter, mode: str,
                                                        runs_after: list[list[int]]) -> None:
    # Given a live lead on schedule 1 that is at its second action
    first = make_import(db)
    importer.import_chunk(chunk(first, 0, [["9518761336", "", "x", "us"]]))
    lead_id = db.run("SELECT id FROM leads WHERE import_id = CAST(:i AS uuid)", i=first)[0][0]
    db.run("UPDATE schedule_enrollments SET action_position = 2 WHERE lead_id = :l", l=lead_id)
    # When another import brings the same caller_id with Manage Schedule
    second = make_import(db, {"lead_management": {"manage_schedule": mode}})
    importer.import_chunk(chunk(second, 0, [["+1 951 876 1336", "", "y", "us"]]))
    # Then the existing lead is refreshed, its run is managed, and the row says what was done
    assert reasons(db, second) == {}
    s = state(db, second)
    said = {"nothing": {}, "stop": {"schedule_stopped": 1}, "start": {"schedule_started": 1},
            "restart": {"schedule_restarted": 1}}[mode]
    assert s["updated_leads"] == 1 and s["warnings"] == said
    assert _active_runs(db, lead_id) == runs_after


def test_expire_existing_ends_the_old_leads_schedule_run_and_enrolls_the_new_one(
        db: Database, importer: ChunkImporter) -> None:
    # Given a live lead on schedule 1, running its first action
    first = make_import(db)
    importer.import_chunk(chunk(first, 0, [["9518761336", "", "x", "us"]]))
    old = db.run("SELECT id FROM leads WHERE import_id = CAST(:i AS uuid)", i=first)[0][0]
    assert _active_runs(db, old) == [[1, 1]]
    # When another import to schedule 1 brings the same caller_id with Expire Existing
    second = make_import(db, {"lead_management": {"expire_existing": True}})
    importer.import_chunk(chunk(second, 0, [["+1 951 876 1336", "", "y", "us"]]))
    # Then the old lead is expired and leaves its schedule; the new one starts at the first action
    new = db.run("SELECT id FROM leads WHERE import_id = CAST(:i AS uuid)", i=second)[0][0]
    assert db.run("SELECT status FROM leads WHERE id = :l", l=old) == [["expired"]]
    assert db.run("SELECT status FROM schedule_enrollments WHERE lead_id = :l", l=old) == [["ended"]]
    assert _active_runs(db, new) == [[1, 1]]


def test_manage_schedule_start_enrolls_a_stopped_lead(db: Database, importer: ChunkImporter) -> None:
    first = make_import(db, {"lead_management": {"schedule_leads": False}})
    importer.import_chunk(chunk(first, 0, [["9518761336", "", "x", "us"]]))
    lead_id = db.run("SELECT id FROM leads WHERE import_id = CAST(:i AS uuid)", i=first)[0][0]
    assert _active_runs(db, lead_id) == []
    second = make_import(db, {"lead_management": {"manage_schedule": "start"}})
    importer.import_chunk(chunk(second, 0, [["9518761336", "", "y", "us"]]))
    assert _active_runs(db, lead_id) == [[1, 1]]


def test_move_to_another_schedule_moves_the_existing_lead_and_creates_the_new_one(
        db: Database, importer: ChunkImporter, tokens: TokenStore) -> None:
    first = make_import(db)
    importer.import_chunk(chunk(first, 0, [["9518761336", "", "old", "us"]]))
    old_id = db.run("SELECT id FROM leads WHERE import_id = CAST(:i AS uuid)", i=first)[0][0]
    second = make_import(db, {"lead_management": {"move_to_schedule_id": 2}})
    importer.import_chunk(chunk(second, 0, [["9518761336", "", "new", "us"]]))
    # the old lead now lives on schedule 2, at its first action; the new one on schedule 1
    assert db.run("SELECT owner_type, owner_id, status FROM leads WHERE id = :l", l=old_id) == [["schedule", 2, "live"]]
    assert _active_runs(db, old_id) == [[2, 1]]
    assert live_leads(db, second) == [(1, "+19518761336")]
    assert tokens.tokens_for(1, "schedule", 2, "+19518761336")["interest"] == "old"
    assert tokens.tokens_for(1, "schedule", 1, "+19518761336")["interest"] == "new"


def test_copy_to_this_schedule_takes_the_source_leads_tokens_under_the_rows_own(
        db: Database, importer: ChunkImporter, tokens: TokenStore) -> None:
    source = make_import(db, owner=("offer", 1))
    importer.import_chunk(chunk(source, 0, [["9518761336", "src@example.com", "boats", "us"]],
                                columns=["caller_id", "email", "interest", "budget"]))
    target = make_import(db, {"lead_management": {"copy_to_this_schedule_from": {"type": "offer", "id": 1}}})
    importer.import_chunk(chunk(target, 0, [["9518761336", "", "cars", ""], ["6785177520", "", "x", ""]],
                                columns=["caller_id", "email", "interest", "budget"]))
    lead = db.rows("SELECT email, tokens FROM leads WHERE import_id = CAST(:i AS uuid) AND import_row = 1",
                   i=target)[0]
    assert lead["email"] == "src@example.com"
    assert lead["tokens"] == {"interest": "cars", "budget": "us"}  # the row's own values win
    assert tokens.tokens_for(1, "schedule", 1, "+19518761336") == {"interest": "cars", "budget": "us"}
    # the source lead stays where it was
    assert db.run("SELECT status, owner_type FROM leads WHERE import_id = CAST(:i AS uuid)", i=source) == [
        ["live", "offer"]]


def test_a_repeated_blacklisted_number_is_blacklisted_on_every_row(db: Database, importer: ChunkImporter) -> None:
    """The first rejection wins and the blacklist comes before the duplicate check."""
    import_id = make_import(db)
    importer.import_chunk(chunk(import_id, 0, [["+12025550143", "", "x", "us"], ["2025550143", "", "y", "us"]]))
    assert reasons(db, import_id) == {1: "blacklisted", 2: "blacklisted"}


@pytest.mark.parametrize(("policy", "order", "winner"), [
    ("first", [2, 1, 0], 1), ("first", [1, 2, 0], 1), ("first", [2, 0, 1], 1),
    ("last", [0, 1, 2], 3), ("last", [2, 0, 1], 3), ("last", [1, 0, 2], 3),
])
def test_one_phone_on_three_rows_in_three_chunks_keeps_the_policys_row_whatever_the_order(
        db: Database, importer: ChunkImporter, policy: str, order: list[int], winner: int) -> None:
    # Given one phone on rows 1, 2 and 3, each in its own chunk
    import_id = make_import(db, {"duplicates": policy}, chunk_count=3, total=3)
    msgs = [chunk(import_id, n, [["9518761336", "", f"row{n + 1}", "us"]], first_row=n + 1) for n in range(3)]
    # When the chunks run in the given order
    for n in order:
        importer.import_chunk(msgs[n])
    # Then the policy's row holds the one live lead, the two others are duplicate_in_file, and the counters add up
    assert live_leads(db, import_id) == [(winner, "+19518761336")]
    assert reasons(db, import_id) == {r: "duplicate_in_file" for r in (1, 2, 3) if r != winner}
    s = state(db, import_id)
    assert (s["status"], s["created_leads"], s["rejected_rows"]) == ("completed", 1, 2)
    assert s["rejections"] == {"duplicate_in_file": 2}


def test_another_companys_blacklist_does_not_reject_a_row(db: Database, importer: ChunkImporter) -> None:
    # +14155550123 is on company 2's blacklist only
    import_id = make_import(db, chunk_count=1, total=2)
    importer.import_chunk(chunk(import_id, 0, [["+14155550123", "", "x", "us"], ["+12025550143", "", "y", "us"]]))
    assert reasons(db, import_id) == {2: "blacklisted"}
    assert live_leads(db, import_id) == [(1, "+14155550123")]


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_row_that_refreshed_a_lead_and_loses_its_phone_to_an_earlier_row_moves_the_updated_counter(
        db: Database, importer: ChunkImporter, dry_run: bool) -> None:
    # Given the offer's live lead for +16465550144, and that phone on rows 1 and 3, the later chunk run first
    import_id = make_import(db, {"dry_run": dry_run}, owner=("offer", 2), chunk_count=2, total=4)
    importer.import_chunk(chunk(import_id, 1, [["+16465550144", "", "late", "us"], ["2025550111", "", "x", "us"]],
                                first_row=3))
    importer.import_chunk(chunk(import_id, 0, [["+16465550144", "", "early", "us"], ["3125550123", "", "y", "us"]],
                                first_row=1))
    # Then row 1 refreshed the lead, row 3 is duplicate_in_file, and the counters moved from updated, not created
    s = state(db, import_id)
    assert (s["status"], s["created_leads"], s["updated_leads"], s["rejected_rows"]) == ("completed", 2, 1, 1)
    assert reasons(db, import_id) == {3: "duplicate_in_file"}
    if not dry_run:
        assert db.rows("SELECT tokens FROM leads WHERE id = 7")[0]["tokens"]["interest"] == "early"


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("later_first", [False, True])
def test_a_new_phone_on_rows_of_two_chunks_is_a_duplicate_in_file_in_any_order_even_in_a_dry_run(
        db: Database, importer: ChunkImporter, dry_run: bool, later_first: bool) -> None:
    # Given a phone no contact of the company has, on rows 1 and 3 of a file in two chunks, run in either order
    import_id = make_import(db, {"dry_run": dry_run}, chunk_count=2, total=4)
    chunks = [chunk(import_id, 0, [["+13125550177", "", "early", "us"], ["2025550111", "", "x", "us"]], first_row=1),
              chunk(import_id, 1, [["+13125550177", "", "late", "us"], ["6465550199", "", "y", "us"]], first_row=3)]
    for c in reversed(chunks) if later_first else chunks:
        importer.import_chunk(c)
    # Then row 3 is duplicate_in_file and one lead is counted (a dry run writes no contact to find the claim by)
    s = state(db, import_id)
    assert (s["status"], s["created_leads"], s["rejected_rows"]) == ("completed", 3, 1)
    assert reasons(db, import_id) == {3: "duplicate_in_file"}


def test_a_phone_whose_facts_vanish_between_chunks_is_still_a_duplicate_in_file(db: Database,
                                                                              importer: ChunkImporter) -> None:
    # Given an opted-out contact with no lead: its phone's row 1 is scrubbed and claims the phone; then another writer
    # deletes the contact, so the later chunk finds no fact about the phone (its claims are read only with facts)
    db.run("INSERT INTO contacts (company_id, phone, opted_out) VALUES (1, '+13125550177', true)")
    import_id = make_import(db, {"scrub": {"opted_out": True}}, chunk_count=2, total=4)
    importer.import_chunk(chunk(import_id, 0, [["+13125550177", "", "early", "us"], ["2025550111", "", "x", "us"]],
                                first_row=1))
    db.run("DELETE FROM contacts WHERE company_id = 1 AND phone = '+13125550177'")
    result = importer.import_chunk(chunk(import_id, 1, [["+13125550177", "", "late", "us"],
                                                        ["6465550199", "", "y", "us"]], first_row=3))
    # Then the chunk goes in (planned again with every claim read: the claim's insert met row 1's), and row 3 is a
    # duplicate of row 1, as when the facts were there
    assert result.outcome == "processed"
    s = state(db, import_id)
    assert (s["status"], s["created_leads"], s["rejected_rows"]) == ("completed", 2, 2)
    assert reasons(db, import_id) == {1: "scrubbed_opted_out", 3: "duplicate_in_file"}


def test_a_chunk_that_read_its_import_before_a_cancel_writes_nothing_and_counts_its_rows_unprocessed(
        db: Database, importer: ChunkImporter, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a worker that read the import while it was processing, then the import was cancelled
    import_id = make_import(db, chunk_count=1, total=2)
    stale = importer._load_import(import_id)
    from leadimport.imports import repository

    assert repository.cancel(db, 1, import_id)
    monkeypatch.setattr(importer, "_load_import", lambda _: stale)
    # When its chunk runs
    result = importer.import_chunk(chunk(import_id, 0, [["9518761336", "", "x", "us"], ["6785177520", "", "y", "us"]]))
    # Then the status read under the chunk's lock stops it: no lead, its rows unprocessed, and an undo that comes
    # next finds nothing of it to miss
    assert result.outcome == "skipped"
    assert live_leads(db, import_id) == []
    s = state(db, import_id)
    assert (s["status"], s["unprocessed_rows"], s["created_leads"]) == ("cancelled", 2, 0)
