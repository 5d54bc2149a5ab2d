"""Tenant integrity without per-row foreign keys (migration 0010): a lead, an enrollment or a contact can never
reference another company's parent or a vanished one, whoever writes it, also under concurrency."""

from __future__ import annotations

import threading
from typing import Any

import pg8000.native
import pytest

from leadimport.store.db import Database, connect

pytestmark = pytest.mark.integration

# Seed (infra/db/seed/demo.sql): company 1 has schedules 1-2, offers 1-2, traffic sources 1-2, contacts 1-7;
# company 2 has schedule 3, offer 3, traffic source 3 and contact 8.
LEAD = ("INSERT INTO leads (company_id, owner_type, owner_id, contact_id, caller_id, traffic_source_id)"
        " VALUES (:c, :ot, :oid, :ct, :p, :ts) RETURNING id")


def fk_error(db: Database, sql: str, **params: Any) -> str:
    with pytest.raises(Exception) as raised:  # noqa: PT011 - pg8000 raises DatabaseError with the server's fields
        db.run(sql, **params)
    assert "23503" in str(raised.value), raised.value
    return str(raised.value)


def lead(db: Database, **kw: Any) -> int:
    params = {"c": 1, "ot": "schedule", "oid": 1, "ct": 7, "p": "+16465550144", "ts": None} | kw
    return int(db.run(LEAD, **params)[0][0])


@pytest.mark.parametrize(("override", "words"), [
    ({"oid": 3}, "schedule 3"),                   # company 2's schedule
    ({"ot": "offer", "oid": 3}, "offer 3"),       # company 2's offer
    ({"ct": 8}, "contact 8"),                     # company 2's contact
    ({"ts": 3}, "traffic source 3"),              # company 2's traffic source
    ({"oid": 999}, "schedule 999"),               # no such schedule
    ({"ct": 999}, "contact 999"),                 # no such contact
])
def test_a_lead_cannot_reference_another_companys_parent_or_a_missing_one(db: Database, override: dict[str, Any],
                                                                          words: str) -> None:
    message = fk_error(db, LEAD, **({"c": 1, "ot": "schedule", "oid": 1, "ct": 7, "p": "+16465550144", "ts": None}
                                    | override))
    assert words in message


def test_a_lead_cannot_move_to_another_companys_schedule_or_take_its_traffic_source(db: Database) -> None:
    lead_id = lead(db)
    fk_error(db, "UPDATE leads SET owner_id = 3 WHERE id = :l", l=lead_id)
    fk_error(db, "UPDATE leads SET traffic_source_id = 3 WHERE id = :l", l=lead_id)
    db.run("UPDATE leads SET owner_id = 2, traffic_source_id = 2 WHERE id = :l", l=lead_id)  # its own: fine


def test_an_enrollment_cannot_cross_companies(db: Database) -> None:
    lead_id = lead(db)
    fk_error(db, "INSERT INTO schedule_enrollments (company_id, lead_id, schedule_id, action_position)"
                 " VALUES (1, :l, 3, 1)", l=lead_id)   # company 2's schedule
    fk_error(db, "INSERT INTO schedule_enrollments (company_id, lead_id, schedule_id, action_position)"
                 " VALUES (2, :l, 3, 1)", l=lead_id)   # company 1's lead under company 2
    fk_error(db, "INSERT INTO schedule_enrollments (company_id, lead_id, schedule_id, action_position)"
                 " VALUES (1, 987654, 1, 1)")          # no such lead
    db.run("INSERT INTO schedule_enrollments (company_id, lead_id, schedule_id, action_position) VALUES (1, :l, 1, 1)",
           l=lead_id)


def test_a_contact_needs_its_company(db: Database) -> None:
    fk_error(db, "INSERT INTO contacts (company_id, phone) VALUES (424242, '+16175550999')")


# Statements of more than 16 rows run the checks planned per statement (EXECUTE), smaller ones with cached plans
# (migration 0013): the same checks through the other branch, the bad row last after 19 good ones.
MANY_LEADS = ("INSERT INTO leads (company_id, owner_type, owner_id, contact_id, caller_id, traffic_source_id)"
              " SELECT 1, 'schedule', 1, 7, '+1907555' || lpad(g::text, 4, '0'), NULL FROM generate_series(1, 19) g"
              " UNION ALL SELECT CAST(:c AS bigint), CAST(:ot AS text), CAST(:oid AS bigint), CAST(:ct AS bigint),"
              " CAST(:p AS text), CAST(:ts AS bigint)")


@pytest.mark.parametrize(("override", "words"), [
    ({"oid": 3}, "schedule 3"), ({"ot": "offer", "oid": 3}, "offer 3"), ({"ct": 8}, "contact 8"),
    ({"ts": 3}, "traffic source 3"), ({"oid": 999}, "schedule 999"), ({"ct": 999}, "contact 999"),
])
def test_a_statement_of_many_rows_is_checked_as_a_single_row_is(db: Database, override: dict[str, Any],
                                                                 words: str) -> None:
    params = {"c": 1, "ot": "schedule", "oid": 1, "ct": 7, "p": "+16465550144", "ts": None}
    assert words in fk_error(db, MANY_LEADS, **(params | override))
    db.run(MANY_LEADS, **params)  # all good: in
    ids = [r[0] for r in db.run("SELECT id FROM leads WHERE company_id = 1 AND caller_id LIKE '+1907555%'")]
    assert len(ids) == 19
    fk_error(db, "UPDATE leads SET owner_id = 3 WHERE caller_id LIKE '+1907555%' OR caller_id = '+16465550144'")
    enroll = ("INSERT INTO schedule_enrollments (company_id, lead_id, schedule_id, action_position)"
              " SELECT 1, l, 1, 1 FROM unnest(CAST(:ids AS bigint[])) AS l UNION ALL SELECT 1, :l, :s, 1")
    every = "{" + ",".join(map(str, ids)) + "}"
    fk_error(db, enroll, ids=every, l=ids[0], s=3)       # company 2's schedule
    fk_error(db, enroll, ids=every, l=987654, s=1)       # no such lead
    fk_error(db, "INSERT INTO contacts (company_id, phone) SELECT 1, '+1718555' || lpad(g::text, 4, '0')"
                 " FROM generate_series(1, 19) g UNION ALL SELECT 424242, '+16175550999'")


def test_a_referenced_parent_cannot_be_deleted_or_change_company(db: Database) -> None:
    lead_id = lead(db, ts=2)
    db.run("INSERT INTO schedule_enrollments (company_id, lead_id, schedule_id, action_position) VALUES (1, :l, 1, 1)",
           l=lead_id)
    for sql in ["DELETE FROM schedules WHERE id = 1", "DELETE FROM traffic_sources WHERE id = 2",
                "DELETE FROM contacts WHERE id = 7", f"DELETE FROM leads WHERE id = {lead_id}",
                "DELETE FROM companies WHERE id = 1"]:
        fk_error(db, sql)
    for sql in ["UPDATE schedules SET company_id = 2 WHERE id = 1", "UPDATE contacts SET company_id = 2 WHERE id = 7",
                "UPDATE traffic_sources SET id = 77 WHERE id = 2"]:
        fk_error(db, sql)
    # Unreferenced parents may go, as with a foreign key
    db.run("DELETE FROM traffic_sources WHERE id = 1")
    db.run("DELETE FROM schedule_enrollments WHERE lead_id = :l", l=lead_id)
    db.run("DELETE FROM leads WHERE id = :l", l=lead_id)


def _connect(db: Database) -> pg8000.native.Connection:
    return connect(db.params, timeout=120)


@pytest.mark.parametrize("rows", [1, 20])  # the checks' cached-plan branch and the planned-per-statement one
@pytest.mark.parametrize("parent", ["schedule", "contact"])
def test_a_delete_waits_for_a_writer_in_flight_and_then_sees_its_lead(db: Database, parent: str, rows: int) -> None:
    """The writer has inserted a lead and not committed; a delete of its schedule (locked FOR KEY SHARE by the
    check) or of its contact (guarded by the phone's advisory lock, which importers hold) waits, then is refused
    because it sees the committed lead. With the locks removed the delete would succeed and orphan the lead."""
    # The seed's leads on schedule 2 and contact 7 go first: only the writer's lead stands in the way.
    db.run("DELETE FROM calls WHERE company_id = 1 AND lead_id IN (SELECT id FROM leads WHERE company_id = 1"
           " AND ((owner_type = 'schedule' AND owner_id = 2) OR contact_id = 7))")
    db.run("DELETE FROM schedule_enrollments WHERE company_id = 1 AND (schedule_id = 2 OR lead_id IN"
           " (SELECT id FROM leads WHERE company_id = 1 AND contact_id = 7))")
    db.run("DELETE FROM leads WHERE company_id = 1 AND ((owner_type = 'schedule' AND owner_id = 2) OR contact_id = 7)")
    writer, deleter = _connect(db), _connect(db)
    try:
        writer.run("BEGIN")
        writer.run("SELECT pg_advisory_xact_lock(1, hashtext('+16465550144'))")  # as every importer does
        writer.run(LEAD if rows == 1 else MANY_LEADS, c=1, ot="schedule", oid=2, ct=7, p="+16465550144", ts=None)
        outcome: dict[str, Any] = {}

        def delete() -> None:
            try:
                deleter.run("DELETE FROM schedules WHERE id = 2" if parent == "schedule"
                            else "DELETE FROM contacts WHERE id = 7")
                outcome["deleted"] = True
            except Exception as exc:  # noqa: BLE001 - what the delete met is the assertion
                outcome["error"] = str(exc)

        thread = threading.Thread(target=delete)
        thread.start()
        waited = _wait_until_blocked(db, thread)
        assert waited, "the delete did not wait for the writer"
        writer.run("COMMIT")
        thread.join(timeout=120)
        assert not thread.is_alive()
        assert "23503" in outcome.get("error", ""), outcome
        assert db.run("SELECT count(*) FROM leads WHERE company_id = 1 AND contact_id = 7 AND owner_id = 2") == [[1]]
    finally:
        writer.close()
        deleter.close()


def _wait_until_blocked(db: Database, deleting: threading.Thread) -> bool:
    """True once the DELETE waits on a lock; False as soon as it finished without waiting (events, with a
    generous ceiling)."""
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not deleting.is_alive():
            return False
        if db.run("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type IN ('Lock', 'Advisory')"
                  " AND query LIKE 'DELETE FROM %'") != [[0]]:
            return True
        time.sleep(0.05)
    return False


def test_a_company_with_an_id_past_two_to_the_31_imports_expires_and_guards_its_leads(db: Database,
                                                                                     redis_prefix: str,
                                                                                     services: Any) -> None:
    """companies.id is bigint: the per-phone lock's company key (an int4) must not fail for a large id."""
    from leadimport.imports import repository as repo
    from leadimport.messages import ChunkMessage
    from leadimport.options import ImportOptions, options_json
    from leadimport.services.import_chunk import ChunkImporter
    from leadimport.store.leads import expire_due
    from leadimport.store.tokens import TokenStore

    big = 3_000_000_000
    db.run("INSERT INTO companies (id, name) VALUES (:c, 'Big Id Co')", c=big)
    db.run("INSERT INTO offers (id, company_id, name) VALUES (90001, :c, 'o')", c=big)
    db.run("INSERT INTO schedules (id, company_id, offer_id, name) VALUES (90001, :c, 90001, 's')", c=big)
    db.run("INSERT INTO schedule_actions (company_id, schedule_id, position, kind, delay_minutes)"
           " VALUES (:c, 90001, 1, 'call', 0)", c=big)
    import_id = "00000000-0000-0000-0000-00000000b16b"
    with db.transaction() as conn:
        repo.insert_import(conn, import_id=import_id, company_id=big, name="big", owner_type="schedule", owner_id=90001,
                           options=options_json(ImportOptions()), status="processing", source="api",
                           upload_key="big/one.csv")
    message = ChunkMessage(import_id=import_id, chunk_no=0, first_row=1, source_columns=["caller_id", "expires_in"],
                           columns=["caller_id", "expires_in"],
                           rows=[(1, ["+19518761336", ""]), (2, ["+16785177520", "0"])])
    result = ChunkImporter(db, TokenStore(services.redis_url, redis_prefix)).import_chunk(message)
    assert (result.outcome, result.created) == ("processed", 2)
    # the sweep expires the lead past its expiry (it takes the same lock key)
    with db.transaction() as conn:
        assert expire_due(conn, 100) == [(big, "schedule", 90001, "+16785177520")]
    # the delete guard takes it too, and refuses the contact a lead still references
    error = fk_error(db, "DELETE FROM contacts WHERE company_id = :c AND phone = '+19518761336'", c=big)
    assert "still referenced" in error
