"""The import API through its Lambda handler, with real PostgreSQL and moto S3."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from leadimport_local.pipeline import call_api
from leadimport_local.runner import LocalAws, load_handler, run_inline_until_idle

from leadimport.store.db import Database

pytestmark = pytest.mark.integration
OPENAPI = Path(__file__).parents[2] / "docs" / "openapi.json"


def create(company: int = 1, **body: Any) -> tuple[int, dict[str, Any]]:
    status, created, _ = call_api(company, "POST", "/imports", body={"owner": {"type": "schedule", "id": 1}, **body})
    return status, created


def uploaded(aws: LocalAws, content: bytes) -> dict[str, Any]:
    """Create an import and put its file in the bucket (its S3 event is queued, not handled yet)."""
    _, imp = create()
    aws.s3.put_object(Bucket=aws.wiring.bucket_name, Key=imp["upload"]["post"]["fields"]["key"], Body=content)
    return imp


def import_file(aws: LocalAws, content: bytes) -> dict[str, Any]:
    """Create an import, put its file in the bucket and run the pipeline to the end."""
    imp = uploaded(aws, content)
    run_inline_until_idle(aws)
    return imp


def test_presigned_post_policy_fixes_key_size_type_and_expiry(pipeline_env: LocalAws) -> None:
    status, imp = create()
    assert status == 201 and imp["status"] == "awaiting_upload"
    post = imp["upload"]["post"]
    key = f"uploads/1/{imp['id']}/upload.csv"
    assert post["fields"]["key"] == key
    assert post["url"].endswith(pipeline_env.wiring.bucket_name) or pipeline_env.wiring.bucket_name in post["url"]
    policy = json.loads(base64.b64decode(post["fields"]["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, pipeline_env.wiring.max_upload_bytes] in conditions
    assert {"key": key} in conditions
    assert {"Content-Type": "text/csv"} in conditions
    assert {"bucket": pipeline_env.wiring.bucket_name} in conditions
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)  # no wildcard keys
    from datetime import UTC, datetime

    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert 3000 < (expires - datetime.now(UTC)).total_seconds() <= 3600
    assert post["fields"]["x-amz-algorithm"] == "AWS4-HMAC-SHA256"  # SigV4, not SigV2
    # no size given: no PUT URL (a presigned PUT has no size range); with the size, a PUT signed for exactly it
    assert imp["upload"]["put_url"] is None
    status, sized = create(upload_size=1234)
    put_url = sized["upload"]["put_url"]
    assert status == 201 and "X-Amz-Signature=" in put_url and f"uploads/1/{sized['id']}/upload.csv" in put_url
    assert "content-length" in put_url.split("X-Amz-SignedHeaders=")[1].split("&")[0]
    status, too_big = create(upload_size=pipeline_env.wiring.max_upload_bytes + 1)
    assert status == 422 and too_big["code"] == "file_too_large"


def test_default_name_is_owner_and_date(pipeline_env: LocalAws) -> None:
    _, imp = create()
    assert imp["name"].startswith("New Debt Leads - Call then SMS @ ")


@pytest.mark.parametrize(("body", "code", "words"), [
    ({"owner": {"type": "schedule", "id": 3}}, "unknown_owner", "no schedule 3"),  # company 2's schedule
    ({"owner": {"type": "schedule", "id": 1}, "scrubb": {}}, "invalid_request", "scrubb"),
    ({"owner": {"type": "schedule", "id": 1}, "lead_management": {"opt": ["opt_out", "opt_in"]}},
     "invalid_request", "cannot both"),
    ({"owner": {"type": "schedule", "id": 1}, "defaults": {"buyer_ids": [3]}}, "unknown_buyer", "buyer 3"),
    ({"owner": {"type": "schedule", "id": 1}, "defaults": {"traffic_source_id": 3}}, "unknown_traffic_source", "3"),
    ({"owner": {"type": "schedule", "id": 1}, "lead_management": {"add_to_schedule_id": 1}},
     "contradictory_options", "already targets"),
    ({"owner": {"type": "schedule", "id": 1}, "scrub": {"dialed": True}}, "invalid_request", "scope"),
    ({"owner": {"type": "schedule", "id": 1}, "lead_managment": {}}, "invalid_request",
     "lead_managment: unknown option (did you mean lead_management?)"),
    ({"owner": {"type": "schedule", "id": 1}, "scrub": {"scope": "company", "dispositon": []}}, "invalid_request",
     "did you mean scrub.dispositions?"),
    ({"owner": {"type": "offer", "id": 1}, "default_country": "Narnia"}, "invalid_request", "Narnia"),
    ({"owner": {"type": "schedule", "id": 1}, "lead_management": {"move_to_schedule_id": 3}}, "unknown_schedule", "3"),
    ({"owner": {"type": "schedule", "id": 1}, "lead_management": {"move_to_schedule_id": 2, "expire_existing": True}},
     "contradictory_options", "cannot be combined"),
    ({"owner": {"type": "offer", "id": 1}, "lead_management": {"copy_to_this_schedule_from": {"type": "offer", "id": 2}}},
     "contradictory_options", "schedule"),
    ({"owner": {"type": "schedule", "id": 1},
      "lead_management": {"copy_to_this_schedule_from": {"type": "offer", "id": 3}}}, "unknown_owner", "offer 3"),
    ({"owner": {"type": "offer", "id": 1}, "lead_management": {"manage_schedule": "stop"}},
     "contradictory_options", "offer"),
])
def test_bad_requests_are_rejected_with_a_code_and_a_sentence(pipeline_env: LocalAws, body: dict[str, Any],
                                                              code: str, words: str) -> None:
    status, problem, _ = call_api(1, "POST", "/imports", body=body)
    assert status == 422
    assert problem["code"] == code and words in problem["message"]


def test_every_invalid_option_is_named_at_once_in_words(pipeline_env: LocalAws) -> None:
    status, problem, _ = call_api(1, "POST", "/imports", body={
        "owner": {"type": "schedule", "id": 1}, "dry_run": "maybe", "scrub": {"dialed": True}, "duplicates": "all"})
    assert status == 422
    fields = [e["field"] for e in problem["errors"]]
    assert {"dry_run", "duplicates"} <= set(fields)
    for field in fields:
        assert f"{field}:" in problem["message"]
    assert "Value error" not in problem["message"] and "Value error" not in str(problem["errors"])


def test_list_is_newest_first_with_cursor_pagination_and_status_filter(pipeline_env: LocalAws) -> None:
    ids = [create()[1]["id"] for _ in range(5)]
    status, page1, _ = call_api(1, "GET", "/imports", query={"limit": "2"})
    assert status == 200 and [i["id"] for i in page1["items"]] == ids[::-1][:2]
    _, page2, _ = call_api(1, "GET", "/imports", query={"limit": "2", "cursor": page1["next_cursor"]})
    _, page3, _ = call_api(1, "GET", "/imports", query={"limit": "2", "cursor": page2["next_cursor"]})
    assert [i["id"] for i in page2["items"] + page3["items"]] == ids[::-1][2:]
    assert page3["next_cursor"] is None
    _, filtered, _ = call_api(1, "GET", "/imports", query={"status": "completed"})
    assert filtered["items"] == []
    status, problem, _ = call_api(1, "GET", "/imports", query={"status": "nonsense"})
    assert status == 422


def test_errors_are_paginated_and_filtered_by_reason(pipeline_env: LocalAws) -> None:
    lines = ["caller_id"] + ["bad"] * 5 + ["", "9518761336"]
    imp = import_file(pipeline_env, "\n".join(lines).encode())
    _, page, _ = call_api(1, "GET", f"/imports/{imp['id']}/errors", query={"limit": "4"})
    assert [e["row"] for e in page["items"]] == [1, 2, 3, 4]
    _, rest, _ = call_api(1, "GET", f"/imports/{imp['id']}/errors", query={"limit": "4", "cursor": page["next_cursor"]})
    assert [e["row"] for e in rest["items"]] == [5] and rest["next_cursor"] is None  # row 6 is blank: not numbered
    _, missing, _ = call_api(1, "GET", f"/imports/{imp['id']}/errors", query={"reason": "invalid_phone"})
    assert len(missing["items"]) == 5


def test_cancel_mid_import_leaves_counters_that_add_up(pipeline_env: LocalAws, monkeypatch: pytest.MonkeyPatch,
                                                       db: Database) -> None:
    monkeypatch.setenv("CHUNK_ROWS", "10")
    from leadimport_local.events import LambdaContext, make_sqs_batch

    from leadimport import roots

    roots.reset()
    body = "caller_id\n" + "\n".join(f"+1951876{i:04d}" for i in range(100)) + "\n"
    imp = uploaded(pipeline_env, body.encode())
    pipeline_env.deliver_s3_events(load_handler("splitter"))  # split: 10 chunks queued
    got = pipeline_env.sqs.receive_message(QueueUrl=pipeline_env.chunk_queue_url, MaxNumberOfMessages=10)["Messages"]
    worker = load_handler("worker")
    worker(make_sqs_batch([m["Body"] for m in got[:3]]), LambdaContext())  # 3 chunks processed
    status, cancelled, _ = call_api(1, "POST", f"/imports/{imp['id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    worker(make_sqs_batch([m["Body"] for m in got[3:]]), LambdaContext())  # the rest arrive after the cancel
    _, final, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert final["status"] == "cancelled"
    assert final["created_leads"] == 30 and final["unprocessed_rows"] == 70
    assert final["created_leads"] + final["rejected_rows"] + final["unprocessed_rows"] == final["total_rows"] == 100
    status, _, _ = call_api(1, "POST", f"/imports/{imp['id']}/cancel")
    assert status == 409


def test_start_is_refused_unless_awaiting_confirmation(pipeline_env: LocalAws) -> None:
    _, imp = create()
    status, problem, _ = call_api(1, "POST", f"/imports/{imp['id']}/start", body={})
    assert status == 409 and problem["code"] == "not_awaiting_confirmation"


def test_malformed_import_ids_are_404_not_500(pipeline_env: LocalAws) -> None:
    for path in ["/imports/not-a-uuid", "/imports/00000000-0000-0000-0000-000000000000/errors"]:
        status, problem, _ = call_api(1, "GET", path)
        assert status == 404 and problem["code"] == "import_not_found"


def test_openapi_document_matches_the_routes(pipeline_env: LocalAws) -> None:
    """docs/openapi.json is generated from the routes; regenerate it with `make openapi` when they change."""
    status, served, _ = call_api(None, "GET", "/openapi.json")
    assert status == 200
    committed = json.loads(OPENAPI.read_text(encoding="utf-8"))
    assert served == committed, "routes and docs/openapi.json drifted: run `make openapi`"
    paths = set(served["paths"])
    assert {"/imports", "/imports/{import_id}", "/imports/{import_id}/errors", "/imports/{import_id}/errors.csv",
            "/imports/{import_id}/start", "/imports/{import_id}/cancel", "/imports/{import_id}/preview"} <= paths


def test_every_success_answer_has_a_real_schema_and_the_import_resource_lists_the_contracts_fields() -> None:
    doc = json.loads(OPENAPI.read_text(encoding="utf-8"))
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for code, answer in operation["responses"].items():
                if not code.startswith("2"):
                    continue
                for media, content in answer["content"].items():
                    schema = content["schema"]
                    assert schema != {"type": "object"}, (method, path, code)
                    if media == "application/json":
                        assert "$ref" in schema, (method, path, code)
    resource = doc["components"]["schemas"]["ImportResource"]
    assert resource.get("additionalProperties") is False
    assert {"id", "name", "company_id", "owner", "status", "total_rows", "processed_rows", "created_leads",
            "rejected_rows", "unprocessed_rows", "rejections", "warnings", "progress", "error", "created_at",
            "started_at", "finished_at"} <= set(resource["required"])
    statuses = doc["components"]["schemas"]["ImportStatus"]["enum"]
    assert statuses == ["awaiting_upload", "awaiting_confirmation", "queued", "splitting", "processing", "completed",
                        "failed", "cancelled"]


def test_undo_expires_the_imports_leads_and_tokens_and_leaves_the_rest(pipeline_env: LocalAws, db: Database,
                                                                       redis_client: Any, redis_prefix: str) -> None:
    imp = import_file(pipeline_env, b"caller_id,interest\n9518761336,cars\n6785177520,boats\n")
    keys = sorted(redis_client.scan_iter(f"{redis_prefix}:tokens:*"))
    assert len(keys) == 2
    contacts_before = db.run("SELECT count(*) FROM contacts")
    status, undone, text = call_api(1, "POST", f"/imports/{imp['id']}/undo")
    assert status == 200, text
    assert undone["undone_leads"] == 2
    assert db.run("SELECT DISTINCT status FROM leads WHERE import_id = CAST(:i AS uuid)", i=imp["id"]) == [["expired"]]
    assert db.run("SELECT count(*) FROM schedule_enrollments e JOIN leads l ON l.id = e.lead_id"
                  " WHERE l.import_id = CAST(:i AS uuid) AND e.status = 'active'", i=imp["id"]) == [[0]]
    assert list(redis_client.scan_iter(f"{redis_prefix}:tokens:*")) == []
    assert db.run("SELECT count(*) FROM contacts") == contacts_before
    assert db.run("SELECT status FROM leads WHERE id = 7") == [["live"]]  # another import's lead is untouched
    status, again, _ = call_api(1, "POST", f"/imports/{imp['id']}/undo")
    assert status == 200 and again["undone_leads"] == 2  # nothing more to undo
    status, _, _ = call_api(2, "POST", f"/imports/{imp['id']}/undo")
    assert status == 404


def test_a_large_error_csv_is_handed_out_through_s3(pipeline_env: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Lambda response cannot exceed 6 MB: above the inline limit the CSV goes to S3 and the API redirects."""
    from leadimport.services import imports_api

    imp = import_file(pipeline_env, ("caller_id,note\n" + "bad,=cmd\n" * 50).encode())
    monkeypatch.setattr(imports_api, "INLINE_CSV_LIMIT", 100)
    from leadimport_local.events import LambdaContext, make_api_request

    response = load_handler("api")(make_api_request("GET", f"/imports/{imp['id']}/errors.csv"), LambdaContext())
    assert response["statusCode"] == 303
    location = response["headers"]["Location"]
    assert f"exports/1/{imp['id']}/" in location and "X-Amz-Signature=" in location
    key = "exports/" + location.split("/exports/", 1)[1].split("?", 1)[0]
    body = pipeline_env.s3.get_object(Bucket=pipeline_env.wiring.bucket_name, Key=key)["Body"].read().decode()
    lines = body.splitlines()
    assert lines[0] == "\ufeffcaller_id,note,row,reason,message" and len(lines) == 51
    assert lines[1].startswith("bad,'=cmd,1,invalid_phone")


def test_the_cli_follows_a_large_error_csv_to_s3(pipeline_env: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadimport.services import imports_api

    imp = import_file(pipeline_env, ("caller_id\n" + "bad\n" * 30).encode())
    monkeypatch.setattr(imports_api, "INLINE_CSV_LIMIT", 50)
    status, _, text = call_api(1, "GET", f"/imports/{imp['id']}/errors.csv")
    assert status == 200 and len(text.splitlines()) == 31


@pytest.mark.parametrize(("body", "status", "words"), [
    ("[" * 100_000 + "]" * 100_000, 400, "nested too deeply"),
    ('{"owner": {"type": "schedule", "id": ' + "9" * 5000 + "}}", 400, "4300 digits"),
    ('{"owner": {"type": "schedule", "id": 1', 400, "not valid JSON"),
    ('{"owner": {"type": "schedule", "id": true}}', 422, "valid integer"),
    ('{"owner": {"type": "schedule", "id": "1"}}', 422, "valid integer"),
    ('{"owner": {"type": "schedule", "id": 1.0}}', 422, "valid integer"),
])
def test_malformed_bodies_are_client_errors_with_a_problem_never_a_500(pipeline_env: LocalAws, body: str,
                                                                      status: int, words: str) -> None:
    from leadimport_local.events import LambdaContext, make_api_request

    event = make_api_request("POST", "/imports", company_id=1)
    event["body"] = body
    response = load_handler("api")(event, LambdaContext())
    problem = json.loads(response["body"])
    assert (response["statusCode"], problem["status"]) == (status, status)
    assert words in problem["message"] and problem["code"]


def test_a_cancel_during_the_split_lists_the_part_never_read_in_the_errors_csv(pipeline_env: LocalAws,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Every row of the file has an outcome after a cancel, also those the splitter never reached: the errors
    CSV reads them from the upload (row numbers continuing) and lists them as unprocessed, ready to re-import."""
    from leadimport import roots

    monkeypatch.setenv("CHUNK_ROWS", "10")
    roots.reset()
    body = "caller_id,note\n" + "\n".join(f"+1951876{i:04d},=n{i}" for i in range(300)) + "\n"
    imp = uploaded(pipeline_env, body.encode())
    # A splitter about to run out of time: it stops after its first checkpoint (10 chunks = 100 rows) and
    # hands over to a continuation, which the cancel below makes pointless.
    pipeline_env.deliver_s3_events(load_handler("splitter"), timeout_seconds=1)
    status, cancelled, _ = call_api(1, "POST", f"/imports/{imp['id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled" and cancelled["unread_from_row"] == 101
    run_inline_until_idle(pipeline_env)  # the chunks sent before are skipped; the continuation reads nothing more
    _, final, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert final["status"] == "cancelled" and final["unprocessed_rows"] == 100 and final["unread_from_row"] == 101
    status, _, text = call_api(1, "GET", f"/imports/{imp['id']}/errors.csv")
    lines = text.splitlines()
    assert status == 200 and lines[0] == "\ufeffcaller_id,note,row,reason,message" and len(lines) == 301
    assert [line.split(",")[2] for line in lines[1:]] == [str(n) for n in range(1, 301)]
    assert lines[150] == ("'+19518760149,'=n149,150,unprocessed,Not imported: the import was cancelled before this part "
                          "of the file was read.")
    # A rest of the file too big to read within an API call is named, not listed
    from leadimport.services import imports_api

    listed = imports_api.UNREAD_LISTED_BYTES
    monkeypatch.setattr(imports_api, "UNREAD_LISTED_BYTES", 100)
    status, _, text = call_api(1, "GET", f"/imports/{imp['id']}/errors.csv")
    assert status == 200 and len(text.splitlines()) == 101
    monkeypatch.setattr(imports_api, "UNREAD_LISTED_BYTES", listed)
    # The upload expired (lifecycle rule): the CSV still answers, with the rows the database holds
    bucket, key = pipeline_env.wiring.bucket_name, imp["upload"]["post"]["fields"]["key"]
    for version in pipeline_env.s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", []):
        pipeline_env.s3.delete_object(Bucket=bucket, Key=key, VersionId=version["VersionId"])
    status, _, text = call_api(1, "GET", f"/imports/{imp['id']}/errors.csv")
    assert status == 200 and len(text.splitlines()) == 101


def test_a_cancel_before_the_upload_is_read_says_the_file_was_never_read_and_lists_it(pipeline_env: LocalAws) -> None:
    """The page's Cancel can land between the upload and the splitter's first look at it (the import is still
    awaiting_upload or queued). Nothing is split; the import must not say its file had 0 rows: its rows in file are
    unknown, every row is unread from row 1, and errors.csv lists them all as unprocessed."""
    body = "caller_id,note\n" + "\n".join(f"+1951876{i:04d},n{i}" for i in range(50)) + "\n"
    imp = uploaded(pipeline_env, body.encode())
    # Given the upload's event not handled yet, when the user cancels
    status, cancelled, _ = call_api(1, "POST", f"/imports/{imp['id']}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    # ... and the event then reaches the splitter
    run_inline_until_idle(pipeline_env)
    _, final, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert final["status"] == "cancelled" and final["unread_from_row"] == 1 and final["counts_final"] is True
    assert final["total_rows"] == 0 and final["estimated_total_rows"] is None  # read: none; in the file: unknown
    assert final["file"]["size_bytes"] == len(body)
    status, _, text = call_api(1, "GET", f"/imports/{imp['id']}/errors.csv")
    lines = text.splitlines()
    assert status == 200 and lines[0] == "\ufeffcaller_id,note,row,reason,message" and len(lines) == 51
    assert lines[50].startswith("'+19518760049,n49,50,unprocessed,")


def test_a_cancel_mid_split_estimates_the_files_rows_instead_of_calling_the_rows_read_the_file(
        pipeline_env: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadimport import roots

    monkeypatch.setenv("CHUNK_ROWS", "10")
    roots.reset()
    body = "caller_id,note\n" + "\n".join(f"+1951876{i:04d},n{i:03d}" for i in range(300)) + "\n"
    imp = uploaded(pipeline_env, body.encode())
    pipeline_env.deliver_s3_events(load_handler("splitter"), timeout_seconds=1)  # stops after 100 rows
    _, cancelled, _ = call_api(1, "POST", f"/imports/{imp['id']}/cancel")
    assert cancelled["counts_final"] is False  # its 10 chunks sent are not counted yet
    run_inline_until_idle(pipeline_env)
    _, final, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert final["counts_final"] is True
    # the 100 rows read are the import's (its counts add up to them); the file holds about 300
    assert final["total_rows"] == 100 and final["unprocessed_rows"] == 100 and final["unread_from_row"] == 101
    assert 280 <= final["estimated_total_rows"] <= 320


def test_every_problem_of_a_request_comes_back_at_its_field_all_at_once(pipeline_env: LocalAws) -> None:
    """The page shows each error at its control: the problem lists every one, with the option's dotted path."""
    # Options the model refuses: each field's sentence, without pydantic's "Value error, " prefixes
    status, problem = create(default_country="Narnia", lead_management={"max_contact_attempts": -1},
                             defaults={"lead_priority": 5000})
    assert status == 422 and problem["code"] == "invalid_request"
    fields = {e["field"]: e["message"] for e in problem["errors"]}
    assert set(fields) == {"default_country", "lead_management.max_contact_attempts", "defaults.lead_priority"}
    assert not any(m.startswith("Value error") for m in fields.values())
    # Options the model accepts but the company's data refuses: every id and contradiction, each at its option
    status, problem = create(defaults={"buyer_ids": [1, 3], "traffic_source_id": 3},
                             lead_management={"add_to_schedule_id": 1, "move_to_schedule_id": 3,
                                              "expire_existing": True})
    assert status == 422 and problem["code"] == "contradictory_options"
    assert [(e["field"], e["message"]) for e in problem["errors"]] == [
        ("lead_management.move_to_schedule_id", "\"Move To Another Schedule\" cannot be combined with \"Expire "
         "Existing Leads\" or \"Manage Schedule\": each decides the fate of the existing lead."),
        ("lead_management.add_to_schedule_id", "\"Add To Schedule\" names the schedule the import already targets."),
        ("lead_management.move_to_schedule_id", "There is no schedule 3 in your company."),
        ("defaults.traffic_source_id", "There is no traffic source 3 in your company."),
        ("defaults.buyer_ids", "There is no buyer 3 in your company."),
    ]
