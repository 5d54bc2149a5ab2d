"""End to end on moto + real PostgreSQL/Redis: create -> presigned upload -> S3 event -> splitter ->
SQS -> worker -> status API, through the very handlers Lambda runs."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import requests
from leadimport_local.pipeline import call_api
from leadimport_local.runner import LocalAws, run_inline_until_idle

from leadimport.store.db import Database

pytestmark = pytest.mark.e2e
DATA = Path(__file__).parents[1] / "data"


def create_and_upload(aws: LocalAws, content: bytes, *, owner: dict[str, Any] | None = None,
                      company: int = 1, **options: Any) -> dict[str, Any]:
    status, created, text = call_api(company, "POST", "/imports",
                                     body={"owner": owner or {"type": "schedule", "id": 1}, **options})
    assert status == 201, text
    post = created["upload"]["post"]
    r = requests.post(post["url"], data=post["fields"], files={"file": ("leads.csv", content, "text/csv")}, timeout=30)
    assert r.status_code in (200, 201, 204), r.text
    return created


def test_seed_example_goes_from_upload_to_completed(pipeline_env: LocalAws, db: Database, redis_client: Any,
                                                    redis_prefix: str) -> None:
    # Given the user guide's example file, uploaded with the presigned POST the API hands out
    created = create_and_upload(pipeline_env, (DATA / "seed_example.csv").read_bytes())
    assert created["status"] == "awaiting_upload"

    # When the S3 notification, the splitter and the workers have run
    run_inline_until_idle(pipeline_env)

    # Then the status API reports the import completed with three leads
    status, imp, _ = call_api(1, "GET", f"/imports/{created['id']}")
    assert status == 200
    assert imp["status"] == "completed"
    assert (imp["total_rows"], imp["processed_rows"], imp["created_leads"], imp["rejected_rows"]) == (3, 3, 3, 0)
    assert imp["progress"] == 1.0 and imp["finished_at"]

    leads = db.rows("SELECT caller_id, email, lead_priority, tokens, import_row, status, next_action_at IS NOT NULL AS"
                    " scheduled FROM leads WHERE import_id = CAST(:i AS uuid) ORDER BY import_row", i=created["id"])
    assert [(r["caller_id"], r["email"], r["lead_priority"], r["import_row"]) for r in leads] == [
        ("+19518761336", "john@gmail.com", 0, 1),
        ("+16785177520", "mary@gmail.com", 1, 2),
        ("+19519184730", "phil@gmail.com", 20, 3),
    ]
    assert leads[0]["tokens"] == {"lead_priority": "0", "country": "us", "interest": "cars", "debt_amount": "2500"}
    assert all(r["status"] == "live" and r["scheduled"] for r in leads)

    # tokens are in Redis under company/owner/caller_id, one read per inbound call
    key = f"{redis_prefix}:tokens:1:schedule:1:+16785177520"
    assert json.loads(redis_client.get(key)) == {"lead_priority": "1", "country": "au", "interest": "houses",
                                                 "debt_amount": "500"}
    # enrolled in the schedule's first action
    enrolled = db.run("SELECT count(*) FROM schedule_enrollments e JOIN leads l ON l.id = e.lead_id"
                      " WHERE l.import_id = CAST(:i AS uuid) AND e.action_position = 1 AND e.status = 'active'",
                      i=created["id"])
    assert enrolled == [[3]]
    contacts = db.run("SELECT phone, country, time_zone FROM contacts WHERE phone = '+19518761336'")
    assert contacts == [["+19518761336", "US", "America/Los_Angeles"]]


def test_bad_rows_are_recorded_with_reasons_and_the_good_rows_go_in(pipeline_env: LocalAws, db: Database) -> None:
    created = create_and_upload(pipeline_env, (DATA / "bad_rows.csv").read_bytes())
    run_inline_until_idle(pipeline_env)

    _, imp, _ = call_api(1, "GET", f"/imports/{created['id']}")
    assert imp["status"] == "completed"
    assert imp["total_rows"] == 8
    assert imp["processed_rows"] == imp["created_leads"] + imp["rejected_rows"] == 8
    assert imp["rejections"] == {"duplicate_in_file": 1, "missing_phone": 1, "invalid_phone": 2, "blacklisted": 1,
                                 "malformed_row": 1}
    assert imp["created_leads"] == 2
    assert imp["warnings"].get("phone_extension") == 1

    _, errors, _ = call_api(1, "GET", f"/imports/{created['id']}/errors")
    by_row = {e["row"]: e for e in errors["items"]}
    assert by_row[2]["reason"] == "duplicate_in_file"
    assert by_row[3]["reason"] == "missing_phone"
    assert by_row[4]["reason"] == "invalid_phone" and "scientific" in by_row[4]["message"].lower()
    assert by_row[5]["reason"] == "blacklisted"
    assert by_row[7]["reason"] == "invalid_phone"
    assert by_row[8]["reason"] == "malformed_row"
    assert by_row[4]["values"]["email"] == "excel@gmail.com"

    status, _, text = call_api(1, "GET", f"/imports/{created['id']}/errors.csv")
    assert status == 200
    assert text.startswith("\ufeff")  # UTF-8 with BOM, for spreadsheets
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == ["caller_id", "email", "interest", "country", "row", "reason", "message"]
    formula = next(r for r in rows if r[4] == "7")
    assert formula[0].startswith("'=")  # neutralized for spreadsheets
    too_many = next(r for r in rows if r[4] == "8")  # 5 fields under a 4-column header: nothing dropped
    assert len(too_many) == 7 and too_many[:4] == ["'+16785177520", "not-an-email", "houses", "us"]
    assert too_many[6].endswith("Fields beyond the header: extra")

    ext = db.rows("SELECT caller_id, tokens FROM leads WHERE import_id = CAST(:i AS uuid) AND import_row = 6",
                  i=created["id"])
    assert ext[0]["caller_id"] == "+442079460958" and ext[0]["tokens"]["extension"] == "12"


def test_a_file_that_is_not_a_csv_fails_the_import_with_a_sentence(pipeline_env: LocalAws) -> None:
    created = create_and_upload(pipeline_env, b"PK\x03\x04" + b"\x00" * 200)
    run_inline_until_idle(pipeline_env)
    _, imp, _ = call_api(1, "GET", f"/imports/{created['id']}")
    assert imp["status"] == "failed"
    assert "Excel" in imp["error"] or "xlsx" in imp["error"]


def test_missing_caller_id_names_the_likely_phone_column(pipeline_env: LocalAws) -> None:
    created = create_and_upload(pipeline_env, b"phone_number,email\n9518761336,a@b.co\n")
    run_inline_until_idle(pipeline_env)
    _, imp, _ = call_api(1, "GET", f"/imports/{created['id']}")
    assert imp["status"] == "failed"
    assert "caller_id" in imp["error"] and "phone_number" in imp["error"]


def test_every_message_delivered_twice_creates_each_lead_once(pipeline_env: LocalAws, db: Database) -> None:
    # Given an import split into several chunks
    content = (DATA / "seed_example.csv").read_bytes()
    created = create_and_upload(pipeline_env, content)
    from leadimport_local.runner import load_handler

    splitter, worker = load_handler("splitter"), load_handler("worker")
    pipeline_env.deliver_s3_events(splitter)
    got = pipeline_env.sqs.receive_message(QueueUrl=pipeline_env.chunk_queue_url, MaxNumberOfMessages=10)
    bodies = [m["Body"] for m in got["Messages"]]
    from leadimport_local.events import LambdaContext, make_sqs_batch

    # When every chunk is delivered twice, in reverse order the second time
    for batch in (bodies, list(reversed(bodies))):
        result = worker(make_sqs_batch(batch), LambdaContext())
        assert result == {"batchItemFailures": []}
    # Then each lead exists once and the counters add up
    _, imp, _ = call_api(1, "GET", f"/imports/{created['id']}")
    assert imp["status"] == "completed"
    assert (imp["processed_rows"], imp["created_leads"]) == (3, 3)
    assert db.run("SELECT count(*) FROM leads WHERE import_id = CAST(:i AS uuid)", i=created["id"]) == [[3]]


def test_company_b_cannot_see_company_a_import(pipeline_env: LocalAws) -> None:
    created = create_and_upload(pipeline_env, (DATA / "seed_example.csv").read_bytes())
    for method, path in [("GET", f"/imports/{created['id']}"), ("GET", f"/imports/{created['id']}/errors"),
                         ("GET", f"/imports/{created['id']}/errors.csv"), ("POST", f"/imports/{created['id']}/cancel"),
                         ("GET", f"/imports/{created['id']}/preview")]:
        status, body, _ = call_api(2, method, path, body={} if method == "POST" else None)
        assert status == 404, (method, path, body)
    status, _, _ = call_api(None, "GET", f"/imports/{created['id']}")
    assert status == 401
    status, listing, _ = call_api(2, "GET", "/imports")
    assert status == 200 and listing["items"] == []



ROUTES = [("GET", "/imports/{id}"), ("GET", "/imports/{id}/preview"), ("GET", "/imports/{id}/errors"),
          ("GET", "/imports/{id}/warnings"), ("GET", "/imports/{id}/errors.csv"), ("POST", "/imports/{id}/undo"), ("POST", "/imports/{id}/start"),
          ("POST", "/imports/{id}/cancel")]


def test_tenant_isolation_matrix(pipeline_env: LocalAws) -> None:
    """Every import route x (other company, no auth, own company): 404, 401, and works for the owner."""
    created = create_and_upload(pipeline_env, (DATA / "seed_example.csv").read_bytes(), preview=True)
    run_inline_until_idle(pipeline_env)  # stops at awaiting_confirmation: every route has something to act on
    for company, expected in ((2, 404), (None, 401)):
        for method, route in ROUTES:
            status, body, _ = call_api(company, method, route.format(id=created["id"]),
                                       body={} if method == "POST" else None)
            assert status == expected, (company, method, route, body)
    # nothing happened to the import meanwhile
    _, imp, _ = call_api(1, "GET", f"/imports/{created['id']}")
    assert imp["status"] == "awaiting_confirmation"
    own = {route: call_api(1, method, route.format(id=created["id"]), body={} if method == "POST" else None)[0]
           for method, route in ROUTES}
    assert own == {"/imports/{id}": 200, "/imports/{id}/preview": 200, "/imports/{id}/errors": 200,
                   "/imports/{id}/warnings": 200,
                   "/imports/{id}/errors.csv": 200, "/imports/{id}/undo": 409, "/imports/{id}/start": 200,
                   "/imports/{id}/cancel": 200}
