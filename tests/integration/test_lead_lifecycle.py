"""Leads behave as the guide says, through the real splitter, worker and API on PostgreSQL, Redis and moto:
expiry is part of "live", a re-import refreshes, a row's own attributes win, opt-out and block stop calls,
and undo puts back what an import did (database rows and Redis keys compared, not only counts)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from leadimport_local.pipeline import call_api
from leadimport_local.runner import LocalAws, run_inline_until_idle

from leadimport.store.db import Database

pytestmark = pytest.mark.integration


def run_import(aws: LocalAws, content: str, owner: tuple[str, int] = ("schedule", 1), **options: Any) -> dict[str, Any]:
    """Create the import through the API, upload its file, run the pipeline, return the final resource."""
    status, imp, text = call_api(1, "POST", "/imports", body={"owner": {"type": owner[0], "id": owner[1]}, **options})
    assert status == 201, text
    aws.s3.put_object(Bucket=aws.wiring.bucket_name, Key=imp["upload"]["post"]["fields"]["key"],
                      Body=content.encode())
    run_inline_until_idle(aws)
    status, final, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert final["status"] == "completed", final
    return dict(final)


def tokens(redis_client: Any, prefix: str, owner: str, phone: str) -> dict[str, str] | None:
    raw = redis_client.get(f"{prefix}:tokens:1:{owner}:{phone}")
    return json.loads(raw) if raw else None


def snapshot(db: Database, redis_client: Any, prefix: str, exclude_import: str | None = None) -> dict[str, Any]:
    """The state users see: leads (but those the excluded import created), active schedule runs, contact
    flags, and every token key in Redis with its value."""
    leads = db.run(
        """SELECT id, owner_type, owner_id, caller_id, status, email, expires_at, remote_ip::text, lead_priority,
                  traffic_source_id, buyer_ids, sub_id, tokens::text, max_contact_attempts, next_action_at
           FROM leads WHERE CAST(:x AS uuid) IS NULL OR import_id IS DISTINCT FROM CAST(:x AS uuid) ORDER BY id""",
        x=exclude_import)
    runs = db.run("""SELECT e.lead_id, e.schedule_id, e.action_position, e.next_action_at FROM schedule_enrollments e
                     JOIN leads l ON l.id = e.lead_id
                     WHERE e.status = 'active'
                       AND (CAST(:x AS uuid) IS NULL OR l.import_id IS DISTINCT FROM CAST(:x AS uuid))
                     ORDER BY 1, 2""", x=exclude_import)
    contacts = db.run("SELECT phone, opted_out, blocked FROM contacts ORDER BY phone")
    keys = {k.decode() if isinstance(k, bytes) else k: redis_client.get(k) for k in redis_client.scan_iter(f"{prefix}:*")}
    return {"leads": leads, "runs": runs, "contacts": contacts, "redis": keys}


# ---- time is part of "live" ----------------------------------------------------------------------------------

def test_a_lead_past_its_expiry_is_not_live_a_reimport_creates_and_the_sweep_expires(
        pipeline_env: LocalAws, db: Database, redis_client: Any, redis_prefix: str) -> None:
    csv = "caller_id,interest\n+19518761336,cars\n+16785177520,boats\n"
    first = run_import(pipeline_env, csv, lead_management={"hours_until_expiration": 1})
    assert first["created_leads"] == 2
    # Given both leads passed their expiry (their Redis tokens are gone with their TTL)
    db.run("UPDATE leads SET expires_at = now() - interval '1 second' WHERE import_id = CAST(:i AS uuid)", i=first["id"])
    # When the same file is imported again without options
    second = run_import(pipeline_env, csv)
    # Then the old leads count as expired: two new leads, not two refreshes, one live lead per number
    assert (second["created_leads"], second["updated_leads"], second["rejected_rows"]) == (2, 0, 0)
    assert db.run("SELECT status, count(*) FROM leads WHERE import_id = CAST(:i AS uuid) GROUP BY 1",
                  i=first["id"]) == [["expired", 2]]
    assert db.run("SELECT count(*) FROM schedule_enrollments e JOIN leads l ON l.id = e.lead_id"
                  " WHERE l.import_id = CAST(:i AS uuid) AND e.status = 'active'", i=first["id"]) == [[0]]
    assert tokens(redis_client, redis_prefix, "schedule:1", "+19518761336") == {"interest": "cars"}
    # And the sweep expires what is due and removes its tokens
    from leadimport.services.lead_expiry import expire_due_leads
    from leadimport.store.tokens import TokenStore

    db.run("UPDATE leads SET expires_at = now() - interval '1 second' WHERE import_id = CAST(:i AS uuid)",
           i=second["id"])
    store = TokenStore(pipeline_env_redis_url(), redis_prefix)
    assert expire_due_leads(db, store) == 2
    assert db.run("SELECT count(*) FROM leads WHERE status = 'live' AND import_id = CAST(:i AS uuid)",
                  i=second["id"]) == [[0]]
    assert tokens(redis_client, redis_prefix, "schedule:1", "+19518761336") is None
    assert expire_due_leads(db, store) == 0


def pipeline_env_redis_url() -> str:
    import os

    return os.environ["REDIS_URL"]


# ---- a re-import refreshes ------------------------------------------------------------------------------------

def test_the_same_file_twice_reports_updated_not_rejected_and_takes_the_new_values(
        pipeline_env: LocalAws, db: Database, redis_client: Any, redis_prefix: str) -> None:
    run_import(pipeline_env, "caller_id,email,interest\n+19518761336,a@x.co,cars\n+16785177520,,boats\n")
    again = run_import(pipeline_env, "caller_id,email,interest,budget\n+19518761336,b@x.co,vans,9000\n"
                                     "+16785177520,,boats,\n")
    assert (again["created_leads"], again["updated_leads"], again["rejected_rows"]) == (0, 2, 0)
    assert again["processed_rows"] == again["total_rows"] == 2
    lead = db.rows("SELECT email, tokens FROM leads WHERE caller_id = '+19518761336' AND status = 'live'")
    assert lead == [{"email": "b@x.co", "tokens": {"interest": "vans", "budget": "9000"}}]
    assert tokens(redis_client, redis_prefix, "schedule:1", "+19518761336") == {"interest": "vans", "budget": "9000"}
    skip = run_import(pipeline_env, "caller_id,interest\n+19518761336,planes\n",
                      lead_management={"existing_leads": "skip"})
    assert (skip["updated_leads"], skip["rejections"]) == (0, {"duplicate_lead": 1})
    assert tokens(redis_client, redis_prefix, "schedule:1", "+19518761336")["interest"] == "vans"


# ---- a row's own attributes win over the defaults ------------------------------------------------------------

def test_a_rows_own_traffic_source_buyers_and_priority_win_over_the_defaults(pipeline_env: LocalAws,
                                                                             db: Database) -> None:
    csv = ("caller_id,traffic_source,buyers,lead_priority\n"
           "+19518761336,Purchased List,Freedom Settlement,3\n"   # names of company 1's own
           "+16785177520,3,3;1,abc\n"                             # another company's ids, an unreadable priority
           "+19519184730,,,\n")                                   # nothing: the defaults
    imp = run_import(pipeline_env, csv, defaults={"traffic_source_id": 1, "buyer_ids": [1], "lead_priority": 7})
    leads = {r[0]: (r[1], r[2], r[3]) for r in db.run(
        "SELECT caller_id, traffic_source_id, buyer_ids, lead_priority FROM leads WHERE import_id = CAST(:i AS uuid)",
        i=imp["id"])}
    assert leads == {"+19518761336": (2, [2], 3), "+16785177520": (1, [1], 7), "+19519184730": (1, [1], 7)}
    assert imp["warnings"] == {"traffic_source_dropped": 1, "buyers_dropped": 1, "lead_priority_dropped": 1}
    # never a reference to another company's traffic source or buyer
    assert db.run("SELECT count(*) FROM leads l WHERE l.import_id = CAST(:i AS uuid) AND (l.traffic_source_id = 3"
                  " OR 3 = ANY(l.buyer_ids))", i=imp["id"]) == [[0]]


# ---- opt-out and block mean no calls ---------------------------------------------------------------------------

def test_opt_out_applies_to_every_valid_row_and_an_opted_out_contact_is_never_enrolled(
        pipeline_env: LocalAws, db: Database) -> None:
    # Given a live, enrolled lead for one number
    run_import(pipeline_env, "caller_id\n+19518761336\n")
    # When a list opts out that number, a new one, and a blacklisted one, with a scrub that rejects nothing
    imp = run_import(pipeline_env, "caller_id\n+19518761336\n+16785177520\n+12025550143\n",
                     lead_management={"opt": "opt_out"})
    # Then every valid row's contact is opted out (the blacklisted row's too), and nothing of theirs is called
    flags = dict(db.run("SELECT phone, opted_out FROM contacts WHERE phone = ANY(CAST(:p AS text[]))",
                        p="{+19518761336,+16785177520,+12025550143}"))
    assert flags == {"+19518761336": True, "+16785177520": True, "+12025550143": True}
    assert db.run("""SELECT count(*) FROM schedule_enrollments e JOIN leads l ON l.id = e.lead_id
                     WHERE l.caller_id = ANY(CAST(:p AS text[])) AND e.status = 'active'""",
                  p="{+19518761336,+16785177520}") == [[0]]
    assert imp["warnings"].get("not_enrolled_opted_out") == 1 and imp["created_leads"] == 1
    # A later import without options: the opted-out contacts get leads for inbound matching, no schedule run
    later = run_import(pipeline_env, "caller_id\n+16785177520\n", lead_management={"existing_leads": "skip",
                                                                                    "expire_existing": True})
    assert later["warnings"] == {"not_enrolled_opted_out": 1}
    # Opt-In lifts it: the next lead is enrolled again
    back = run_import(pipeline_env, "caller_id\n+16785177520\n", lead_management={"opt": "opt_in",
                                                                                   "expire_existing": True})
    assert back["warnings"] == {}
    assert db.run("""SELECT count(*) FROM schedule_enrollments e JOIN leads l ON l.id = e.lead_id
                     WHERE l.import_id = CAST(:i AS uuid) AND e.status = 'active'""", i=back["id"]) == [[1]]


def test_block_stops_the_runs_of_scrubbed_and_existing_rows_too(pipeline_env: LocalAws, db: Database) -> None:
    run_import(pipeline_env, "caller_id\n+19518761336\n")
    imp = run_import(
        pipeline_env, "caller_id\n+19518761336\n+16175550100\n",
        scrub={"scope": "company", "dialed": True}, lead_management={"block": "block"})
    assert imp["rejections"] == {"scrubbed_dialed": 1} and imp["updated_leads"] == 1
    assert dict(db.run("SELECT phone, blocked FROM contacts WHERE phone IN ('+19518761336', '+16175550100')")) == {
        "+19518761336": True, "+16175550100": True}
    assert db.run("""SELECT count(*) FROM schedule_enrollments e JOIN leads l ON l.id = e.lead_id
                     WHERE l.caller_id = '+19518761336' AND e.status = 'active'""") == [[0]]


# ---- undo restores -----------------------------------------------------------------------------------------------

SCENARIOS = {
    "refresh, opt out": {"lead_management": {"opt": "opt_out", "hours_until_expiration": 5}},
    "expire existing, block": {"lead_management": {"expire_existing": True, "block": "block"}},
    "move to another schedule": {"lead_management": {"move_to_schedule_id": 2}},
    "move, opt out": {"lead_management": {"move_to_schedule_id": 2, "opt": "opt_out"}},
    "expire existing, opt out": {"lead_management": {"expire_existing": True, "opt": "opt_out"}},
    "refresh, restart the run": {"lead_management": {"manage_schedule": "restart"},
                                 "defaults": {"traffic_source_id": 2, "buyer_ids": [2]}},
}


@pytest.mark.parametrize("options", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_undo_puts_back_the_database_and_redis_as_they_were_before_the_import(
        pipeline_env: LocalAws, db: Database, redis_client: Any, redis_prefix: str, options: dict[str, Any]) -> None:
    # Given leads on schedule 1 (one advanced to its second action), a lead on schedule 2 for one of the numbers
    # (a move's clash), and another import's lead that must stay untouched
    run_import(pipeline_env, "caller_id,email,interest\n+19518761336,a@x.co,cars\n+16785177520,,boats\n",
               lead_management={"hours_until_expiration": 48})
    db.run("UPDATE schedule_enrollments SET action_position = 2 WHERE lead_id = (SELECT id FROM leads"
           " WHERE caller_id = '+19518761336' AND status = 'live')")
    run_import(pipeline_env, "caller_id,interest\n+16785177520,planes\n", owner=("schedule", 2))
    other = run_import(pipeline_env, "caller_id,interest\n+13125550123,trains\n")
    before = snapshot(db, redis_client, redis_prefix)
    # When an import changes those leads and contacts, and creates a new one
    imp = run_import(pipeline_env, "caller_id,email,interest\n+19518761336,b@x.co,vans\n+16785177520,,ships\n"
                                   "+19519184730,,bikes\n", **options)
    assert snapshot(db, redis_client, redis_prefix, exclude_import=imp["id"]) != before
    # Then undoing it puts every lead, schedule run, contact flag and token back as it was
    status, undone, text = call_api(1, "POST", f"/imports/{imp['id']}/undo")
    assert status == 200, text
    after = snapshot(db, redis_client, redis_prefix, exclude_import=imp["id"])
    # contacts the import created stay (the company's phone book): new ones, without opt-out or block
    known = {c[0] for c in before["contacts"]}
    assert all(not c[1] and not c[2] for c in after["contacts"] if c[0] not in known)
    after["contacts"] = [c for c in after["contacts"] if c[0] in known]
    for part in before:
        assert after[part] == before[part], part
    assert db.run("SELECT count(*) FROM leads WHERE import_id = CAST(:i AS uuid) AND status = 'live'",
                  i=imp["id"]) == [[0]]
    assert undone["undone_leads"] == imp["created_leads"]
    # the other import's lead is untouched, and undoing again changes nothing
    assert db.run("SELECT status FROM leads WHERE import_id = CAST(:i AS uuid)", i=other["id"]) == [["live"]]
    call_api(1, "POST", f"/imports/{imp['id']}/undo")
    again = snapshot(db, redis_client, redis_prefix, exclude_import=imp["id"])
    again["contacts"] = [c for c in again["contacts"] if c[0] in known]
    assert again == before


def test_the_preview_shows_what_happens_to_existing_leads_and_what_the_scrub_rejects(pipeline_env: LocalAws) -> None:
    run_import(pipeline_env, "caller_id\n+19518761336\n")
    for lm, expected in (({}, "update"), ({"existing_leads": "skip"}, "skip"), ({"expire_existing": True}, "expire")):
        status, imp, _ = call_api(1, "POST", "/imports", body={"owner": {"type": "schedule", "id": 1}, "preview": True,
                                                              "lead_management": lm})
        pipeline_env.s3.put_object(Bucket=pipeline_env.wiring.bucket_name, Key=imp["upload"]["post"]["fields"]["key"],
                                   Body=b"caller_id\n+19518761336\n+16785177520\n+12025550143\n")
        run_inline_until_idle(pipeline_env)
        _, preview, _ = call_api(1, "GET", f"/imports/{imp['id']}/preview")
        rows = {r["row"]: r for r in preview["rows"]}
        assert rows[1].get("existing_lead") == expected
        assert rows[1]["outcome"] == ("rejected" if expected == "skip" else "accepted")
        assert "existing_lead" not in rows[2] and rows[2]["outcome"] == "accepted"
        assert (rows[3]["outcome"], rows[3]["reason"]) == ("rejected", "blacklisted")


def test_the_sweep_stamps_again_the_tokens_redis_lost_for_imports_not_checked_yet(
        pipeline_env: LocalAws, db: Database, redis_client: Any, redis_prefix: str) -> None:
    from leadimport.services.token_reconciliation import reconcile_unchecked
    from leadimport.store.tokens import TokenStore

    imp = run_import(pipeline_env, "caller_id,interest\n+19518761336,cars\n+16785177520,boats\n")
    assert db.run("SELECT tokens_checked_at IS NOT NULL FROM lead_imports WHERE id = CAST(:i AS uuid)",
                  i=imp["id"]) == [[True]]
    # Given Redis lost the keys (a failover) and the check at completion did not happen
    redis_client.delete(f"{redis_prefix}:tokens:1:schedule:1:+19518761336")
    db.run("UPDATE lead_imports SET tokens_checked_at = NULL WHERE id = CAST(:i AS uuid)", i=imp["id"])
    # When the sweep runs, the lost tokens are back, the others untouched, and the import is checked
    assert reconcile_unchecked(db, TokenStore(pipeline_env_redis_url(), redis_prefix)) == 1
    assert tokens(redis_client, redis_prefix, "schedule:1", "+19518761336") == {"interest": "cars"}
    assert reconcile_unchecked(db, TokenStore(pipeline_env_redis_url(), redis_prefix)) == 0


def test_the_check_at_completion_stamps_again_a_refreshed_leads_lost_tokens_and_leaves_an_undone_one_alone(
        pipeline_env: LocalAws, db: Database, redis_client: Any, redis_prefix: str, monkeypatch: Any) -> None:
    from leadimport.services import token_reconciliation
    from leadimport.store.tokens import TokenStore

    store = TokenStore(pipeline_env_redis_url(), redis_prefix)
    # Given a lead refreshed by a second import (not one it created), whose key Redis then lost
    run_import(pipeline_env, "caller_id,interest\n+19518761336,cars\n")
    second = run_import(pipeline_env, "caller_id,interest\n+19518761336,boats\n")
    assert second["updated_leads"] == 1
    redis_client.delete(f"{redis_prefix}:tokens:1:schedule:1:+19518761336")
    # When its import is checked, the refreshed lead's tokens are back
    assert token_reconciliation.reconcile_import_tokens(db, store, second["id"]) == 1
    assert tokens(redis_client, redis_prefix, "schedule:1", "+19518761336") == {"interest": "boats"}

    # Given a lead whose key is gone because an undo expired it after the check read its page (the read is not
    # locked): the page below still lists it
    third = run_import(pipeline_env, "caller_id,interest\n+16785177520,planes\n")
    with db.transaction() as conn:
        page = token_reconciliation.own_live_lead_keys(conn, third["id"], 0, 10)
    assert page[0] is None and len(page[1]) == 1
    db.run("UPDATE leads SET status = 'expired' WHERE import_id = CAST(:i AS uuid)", i=third["id"])
    redis_client.delete(f"{redis_prefix}:tokens:1:schedule:1:+16785177520")
    monkeypatch.setattr(token_reconciliation, "own_live_lead_keys",
                        lambda conn, import_id, after, limit: page)
    # Then the check reads the lead again, under its lock, and does not stamp an expired lead's tokens back
    assert token_reconciliation.reconcile_import_tokens(db, store, third["id"]) == 0
    assert tokens(redis_client, redis_prefix, "schedule:1", "+16785177520") is None


def test_the_check_at_completion_reads_every_page_past_pages_without_a_live_lead(
        pipeline_env: LocalAws, db: Database, redis_client: Any, redis_prefix: str, monkeypatch: Any) -> None:
    from leadimport.services import token_reconciliation
    from leadimport.store.tokens import TokenStore

    store = TokenStore(pipeline_env_redis_url(), redis_prefix)
    monkeypatch.setattr(token_reconciliation, "PAGE", 3)
    phones = [f"+1951876{1300 + i}" for i in range(8)]
    # Given an import whose rows 2-7 (a whole page of rows and more) are rejected, between live leads
    rows = [phones[0], *(["not a phone"] * 6), *phones[1:5]]
    first = run_import(pipeline_env, "caller_id,n\n" + "".join(f"{p},{i}\n" for i, p in enumerate(rows)))
    assert (first["created_leads"], first["rejected_rows"]) == (5, 6)
    # and a second import that refreshes four of those leads and creates three (refreshed: paged by lead id)
    second = run_import(pipeline_env, "caller_id,n\n" + "".join(f"{p},again\n" for p in phones[1:]))
    assert (second["created_leads"], second["updated_leads"]) == (3, 4)
    # When Redis lost every key
    for p in phones:
        redis_client.delete(f"{redis_prefix}:tokens:1:schedule:1:{p}")
    # Then each import's check, three rows or changes a page, stamps back every key of its live leads
    assert token_reconciliation.reconcile_import_tokens(db, store, second["id"]) == 7
    for p in phones[:5]:  # and lost the first import's again: its check finds its five live leads over its pages
        redis_client.delete(f"{redis_prefix}:tokens:1:schedule:1:{p}")
    assert token_reconciliation.reconcile_import_tokens(db, store, first["id"]) == 5
    assert tokens(redis_client, redis_prefix, "schedule:1", phones[0]) == {"n": "0"}
    assert all(tokens(redis_client, redis_prefix, "schedule:1", p) == {"n": "again"} for p in phones[1:])


def test_the_error_csv_goes_back_in_as_it_is_after_fixing_two_rows(pipeline_env: LocalAws, db: Database,
                                                                  redis_client: Any, redis_prefix: str) -> None:
    # Given an import whose rows fail for reasons a user fixes in a spreadsheet
    csv_text = ("caller_id,notes,formula,offset,handle,name\n"
                "+1 951 876 1336,ok,=SUM(A1:A2),-5,@home,Zoë\n"               # goes in
                "+1 678 517 7520,,=1+1,-7,@work,José\n"                       # goes in
                "not a phone,fix me,=A1,-1,@x,Ünal\n"                         # invalid_phone
                "+1 202 555 0143,blacklisted,,,,\n"                            # blacklisted: stays rejected
                "12345,fix me too,+44,-2,@y,Åsa\n")                           # invalid_phone
    first = run_import(pipeline_env, csv_text)
    assert (first["created_leads"], first["rejected_rows"]) == (2, 3)
    _, _, errors = call_api(1, "GET", f"/imports/{first['id']}/errors.csv")
    assert errors.startswith("\ufeff")
    # When the user fixes the two bad phones (as a spreadsheet saves it: BOM, quotes kept) and uploads it again
    fixed = errors.replace("not a phone", "+1 312 555 0123").replace("12345", "+1 646 555 0199")
    second = run_import(pipeline_env, fixed)
    # Then the fixed rows go in with their values as they were (no ' prefix, no row/reason/message tokens)
    assert (second["created_leads"], second["rejected_rows"], second["rejections"]) == (2, 1, {"blacklisted": 1})
    leads = {r[0]: r[1] for r in db.run("SELECT caller_id, tokens FROM leads WHERE import_id = CAST(:i AS uuid)",
                                        i=second["id"])}
    assert leads["+13125550123"] == {"notes": "fix me", "formula": "=A1", "offset": "-1", "handle": "@x",
                                     "name": "Ünal"}
    assert leads["+16465550199"]["formula"] == "+44" and leads["+16465550199"]["name"] == "Åsa"
    # And a second round trip has the same columns once, not row,reason,message twice
    _, _, again = call_api(1, "GET", f"/imports/{second['id']}/errors.csv")
    assert again.splitlines()[0] == "\ufeffcaller_id,notes,formula,offset,handle,name,row,reason,message"


def test_a_lead_moved_for_a_contact_that_takes_no_calls_gets_no_run_in_its_new_schedule(
        pipeline_env: LocalAws, db: Database) -> None:
    run_import(pipeline_env, "caller_id\n+19518761336\n")
    imp = run_import(pipeline_env, "caller_id\n+19518761336\n",
                     lead_management={"move_to_schedule_id": 2, "opt": "opt_out"})
    moved = db.rows("SELECT id, owner_id, next_action_at FROM leads WHERE caller_id = '+19518761336'"
                    " AND status = 'live' AND owner_type = 'schedule' AND owner_id = 2")
    assert len(moved) == 1 and moved[0]["next_action_at"] is None
    assert db.run("""SELECT count(*) FROM schedule_enrollments e JOIN leads l ON l.id = e.lead_id
                     WHERE l.caller_id = '+19518761336' AND e.status = 'active'""") == [[0]]
    assert imp["warnings"] == {"not_enrolled_opted_out": 1}
