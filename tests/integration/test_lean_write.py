"""The lean write's plain inserts (contacts, phone claims, leads) rely on the phone locks: what the facts say
under them holds until COMMIT for every importer. A writer that takes no phone lock and creates the same contact
or live lead meanwhile makes the chunk fail on a unique index; its retry (a live lead: at once, planned again)
sees the new row: nothing is lost or doubled."""

from __future__ import annotations

from typing import Any

import pytest

from leadimport.services.import_chunk import ChunkImporter
from leadimport.store import chunks as sql
from leadimport.store.db import Database, connect
from tests.integration.test_import_chunk import chunk, importer, make_import, tokens

pytestmark = pytest.mark.integration
__all__ = ["importer", "tokens"]

PHONE = "+19518761336"


def _after_facts(monkeypatch: pytest.MonkeyPatch, db: Database, sql_text: str) -> None:
    """Once, right after the chunk read its facts: another writer (its own connection, no phone lock) commits."""
    real = sql.phone_facts
    done = []

    def facts_then_write(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        if not done:
            done.append(True)
            other = connect(db.params)
            try:
                other.run(sql_text)
            finally:
                other.close()
        return out

    monkeypatch.setattr(sql, "phone_facts", facts_then_write)


def test_a_live_lead_made_meanwhile_without_the_lock_fails_the_plan_and_the_chunk_planned_again_refreshes_it(
        db: Database, importer: ChunkImporter, monkeypatch: pytest.MonkeyPatch) -> None:
    contact = db.run("INSERT INTO contacts (company_id, phone) VALUES (1, :p) RETURNING id", p=PHONE)[0][0]
    import_id = make_import(db, chunk_count=1, total=1)
    _after_facts(monkeypatch, db, "INSERT INTO leads (company_id, owner_type, owner_id, contact_id, caller_id)"
                                  f" VALUES (1, 'schedule', 1, {int(contact)}, '{PHONE}')")
    message = chunk(import_id, 0, [[PHONE, "a@example.com", "solar", "US"]])
    result = importer.import_chunk(message)  # the lead insert meets the new live lead: rolled back, planned again
    assert (result.outcome, result.created, result.updated) == ("processed", 0, 1)
    assert db.run("SELECT count(*), max(email) FROM leads WHERE caller_id = :p AND status = 'live'", p=PHONE) == [
        [1, "a@example.com"]]


def test_a_contact_made_meanwhile_without_the_lock_fails_the_chunk_and_the_retry_uses_it(
        db: Database, importer: ChunkImporter, monkeypatch: pytest.MonkeyPatch) -> None:
    import_id = make_import(db, chunk_count=1, total=1)
    _after_facts(monkeypatch, db, f"INSERT INTO contacts (company_id, phone) VALUES (1, '{PHONE}')")
    message = chunk(import_id, 0, [[PHONE, "", "solar", "US"]])
    with pytest.raises(Exception, match="23505"):  # noqa: PT011
        importer.import_chunk(message)
    assert importer.import_chunk(message).created == 1
    assert db.run("SELECT count(*) FROM contacts WHERE company_id = 1 AND phone = :p", p=PHONE) == [[1]]
    assert db.run("SELECT count(*) FROM leads l JOIN contacts c ON c.id = l.contact_id WHERE l.caller_id = :p",
                  p=PHONE) == [[1]]


def test_a_row_that_creates_a_lead_holds_its_phone_by_the_lead_and_only_the_others_are_recorded(
        db: Database, importer: ChunkImporter) -> None:
    # Given an opted-out contact (its row is scrubbed) and two new phones, one of them again in a later chunk
    db.run("INSERT INTO contacts (company_id, phone, opted_out) VALUES (1, '+13125550177', true)")
    import_id = make_import(db, {"scrub": {"opted_out": True}}, chunk_count=2, total=4)
    importer.import_chunk(chunk(import_id, 0, [["+13125550177", "", "a", "us"], ["2025550111", "", "b", "us"],
                                               ["6465550199", "", "c", "us"]], first_row=1))
    # Then only the scrubbed row's claim is a row of its own: the created leads hold theirs
    assert db.run("SELECT phone, row_no FROM lead_import_phones WHERE import_id = CAST(:i AS uuid)",
                  i=import_id) == [["+13125550177", 1]]
    # And a later row of a created lead's phone is still a duplicate of it
    importer.import_chunk(chunk(import_id, 1, [["2025550111", "", "d", "us"]], first_row=4))
    assert db.run("SELECT row_no, reason FROM lead_import_rejections WHERE import_id = CAST(:i AS uuid)"
                  " ORDER BY row_no", i=import_id) == [[1, "scrubbed_opted_out"], [4, "duplicate_in_file"]]


@pytest.mark.parametrize("change", ["the lead and its contact deleted", "the contact's phone changed"])
def test_a_phone_held_by_a_lead_that_another_writer_removes_or_hides_is_still_a_duplicate_in_file(
        db: Database, importer: ChunkImporter, change: str) -> None:
    # Given row 1 created a lead (its claim: no row of lead_import_phones), of an offer (no enrollment holds it)
    import_id = make_import(db, owner=("offer", 1), chunk_count=2, total=3)
    importer.import_chunk(chunk(import_id, 0, [["2025550111", "", "a", "us"], ["6465550199", "", "b", "us"]],
                                first_row=1))
    # When another writer deletes that lead and its contact, or renumbers the contact (the phone has no facts left)
    if change == "the lead and its contact deleted":
        db.run("DELETE FROM leads WHERE import_id = CAST(:i AS uuid) AND import_row = 1", i=import_id)
        db.run("DELETE FROM contacts WHERE company_id = 1 AND phone = '+12025550111'")
    else:
        db.run("UPDATE contacts SET phone = '+12025550000' WHERE company_id = 1 AND phone = '+12025550111'")
    result = importer.import_chunk(chunk(import_id, 1, [["2025550111", "", "c", "us"]], first_row=3))
    # Then row 3 is still a duplicate of row 1, and nothing else changed
    assert result.outcome == "processed"
    assert db.run("SELECT row_no, reason FROM lead_import_rejections WHERE import_id = CAST(:i AS uuid)",
                  i=import_id) == [[3, "duplicate_in_file"]]
    assert db.run("SELECT count(*) FROM leads WHERE import_id = CAST(:i AS uuid) AND caller_id = '+12025550111'",
                  i=import_id) == [[0 if change == "the lead and its contact deleted" else 1]]
