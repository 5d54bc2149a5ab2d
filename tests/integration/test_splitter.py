"""The splitter on moto S3/SQS and the real PostgreSQL: ways in, duplicates, checkpoints, preview, limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from leadimport_local.events import LambdaContext, make_s3_event
from leadimport_local.pipeline import call_api
from leadimport_local.runner import LocalAws, load_handler, run_inline_until_idle

from leadimport.messages import MESSAGE_MAX_BYTES, ChunkMessage
from leadimport.store.db import Database

pytestmark = pytest.mark.integration


def put(aws: LocalAws, key: str, body: bytes, **kwargs: Any) -> str:
    r = aws.s3.put_object(Bucket=aws.wiring.bucket_name, Key=key, Body=body, **kwargs)
    return str(r.get("VersionId"))


def drain_chunks(aws: LocalAws) -> list[ChunkMessage]:
    out = []
    while True:
        got = aws.sqs.receive_message(QueueUrl=aws.chunk_queue_url, MaxNumberOfMessages=10)
        msgs = got.get("Messages", [])
        if not msgs:
            return sorted(out, key=lambda m: m.chunk_no)
        for m in msgs:
            out.append(ChunkMessage.from_json(m["Body"]))
            aws.sqs.delete_message(QueueUrl=aws.chunk_queue_url, ReceiptHandle=m["ReceiptHandle"])


def purge_events(aws: LocalAws) -> None:
    aws.sqs.purge_queue(QueueUrl=aws.events_queue_url)


def csv_bytes(n: int) -> bytes:
    lines = ["caller_id,email,note"] + [f"+1951876{i:04d},u{i}@example.com,\"note, {i}\"" for i in range(n)]
    return ("\r\n".join(lines) + "\r\n").encode()


def created_import(company: int = 1, **options: Any) -> dict[str, Any]:
    status, body, text = call_api(company, "POST", "/imports", body={"owner": {"type": "schedule", "id": 1}, **options})
    assert status == 201, text
    return body


def test_queued_messages_cover_every_row_once_in_order(pipeline_env: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given small chunks, so the file makes many messages
    monkeypatch.setenv("CHUNK_ROWS", "7")
    from leadimport import roots

    roots.reset()
    imp = created_import()
    put(pipeline_env, imp["upload"]["post"]["fields"]["key"], csv_bytes(100))
    # When the bucket's own S3 notification (moto) reaches the splitter
    assert pipeline_env.deliver_s3_events(load_handler("splitter")) >= 1
    # Then the chunks cover rows 1..100 exactly once, in order within each chunk
    chunks = drain_chunks(pipeline_env)
    rows = [n for c in chunks for n, _ in c.rows]
    assert rows == list(range(1, 101))
    assert [c.chunk_no for c in chunks] == list(range(15))
    assert all(len(c.rows) <= 7 for c in chunks)
    assert chunks[3].rows[0] == (22, ["+19518760021", "u21@example.com", "note, 21"])
    _, status, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert status["status"] == "processing" and status["total_rows"] == 100


def test_wide_rows_go_out_in_batches_sqs_accepts(pipeline_env: LocalAws) -> None:
    """Rows of ~1 KB make chunks near the 200 KB cap; ten of those in one SendMessageBatch would be
    ~2 MB, which SQS (and moto, at its 1 MiB) refuses whole with BatchRequestTooLong."""
    imp = created_import()
    notes = "n" * 1000
    body = "caller_id,email,notes\n" + "".join(
        f"+1951876{i:04d},u{i}@example.com,{notes}{i}\n" for i in range(3000))
    put(pipeline_env, imp["upload"]["post"]["fields"]["key"], body.encode())
    assert pipeline_env.deliver_s3_events(load_handler("splitter")) >= 1
    chunks = drain_chunks(pipeline_env)
    assert len(chunks) >= 12  # the byte cap, not the 500-row cap, made them
    assert [n for c in chunks for n, _ in c.rows] == list(range(1, 3001))
    _, status, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert status["status"] == "processing" and status["total_rows"] == 3000


def test_a_row_too_big_for_one_message_is_rejected_and_the_rows_around_it_go_out(pipeline_env: LocalAws) -> None:
    """30 values of 9,999 characters, each under the field limit: ~300 KB of JSON, which SQS would refuse
    (moto takes up to 1 MiB, so every message is measured here)."""
    imp = created_import()
    big = ",".join(["x" * 9_999] * 30)
    header = "caller_id," + ",".join(f"c{i}" for i in range(30))
    empty = "," * 30
    body = f"{header}\n+19518760001{empty}\n+19518760002,{big}\n+19518760003{empty}\n"
    put(pipeline_env, imp["upload"]["post"]["fields"]["key"], body.encode())
    assert pipeline_env.deliver_s3_events(load_handler("splitter")) >= 1
    raw = pipeline_env.sqs.receive_message(QueueUrl=pipeline_env.chunk_queue_url, MaxNumberOfMessages=10)["Messages"]
    assert all(len(m["Body"].encode()) <= MESSAGE_MAX_BYTES for m in raw)
    chunks = [ChunkMessage.from_json(m["Body"]) for m in raw]
    assert sorted(n for c in chunks for n, _ in c.rows) == [1, 3]
    (rejected,) = [r for c in chunks for r in c.rejected]
    assert (rejected.row_no, rejected.reason) == (2, "value_too_long")
    assert "more than the" in rejected.message


def test_a_header_too_long_for_a_chunk_message_fails_the_import_with_a_sentence(pipeline_env: LocalAws) -> None:
    imp = created_import()
    header = "caller_id," + ",".join(f"{i:03d}" + "n" * 197 for i in range(499))
    put(pipeline_env, imp["upload"]["post"]["fields"]["key"], (header + "\n+19518760001" + "," * 499 + "\n").encode())
    run_inline_until_idle(pipeline_env)
    _, status, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert status["status"] == "failed" and "column names in the first line" in status["error"]


def test_a_duplicate_s3_event_starts_nothing_new(pipeline_env: LocalAws) -> None:
    imp = created_import()
    key = imp["upload"]["post"]["fields"]["key"]
    put(pipeline_env, key, csv_bytes(10))
    purge_events(pipeline_env)
    splitter = load_handler("splitter")
    event = make_s3_event(pipeline_env.wiring.bucket_name, key)
    first = splitter(event, LambdaContext())
    second = splitter(event, LambdaContext())
    assert first["outcomes"][0]["status"] == "processing"
    assert second["outcomes"][0]["status"] == "skipped"
    assert len(drain_chunks(pipeline_env)) == 1


def test_a_tiny_time_budget_continues_from_the_checkpoint_without_losing_a_row(
        pipeline_env: LocalAws, monkeypatch: pytest.MonkeyPatch, db: Database) -> None:
    # Given chunks of 3 rows and a splitter that always believes it is out of time after a batch
    monkeypatch.setenv("CHUNK_ROWS", "3")
    monkeypatch.setenv("SPLIT_TIME_MARGIN_MS", str(10**9))
    from leadimport import roots

    roots.reset()
    imp = created_import()
    key = imp["upload"]["post"]["fields"]["key"]
    put(pipeline_env, key, csv_bytes(95))
    # When the pipeline runs (each invocation sends one batch of 10 chunks, then queues a continuation)
    run_inline_until_idle(pipeline_env)
    # Then every row was imported once
    _, status, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert status["status"] == "completed"
    assert (status["total_rows"], status["created_leads"]) == (95, 95)
    assert db.run("SELECT count(*), count(DISTINCT import_row) FROM leads WHERE import_id = CAST(:i AS uuid)",
                  i=imp["id"]) == [[95, 95]]
    assert db.run("SELECT chunk_count FROM lead_imports WHERE id = CAST(:i AS uuid)", i=imp["id"]) == [[32]]


def split_crashed_on_the_third_send_then_retried(pipeline_env: LocalAws, monkeypatch: pytest.MonkeyPatch,
                                                 imp: dict[str, Any], key: str, *,
                                                 before_the_send: bool) -> dict[int, list[str]]:
    """The splitter killed at its third batch (before sending it, or after sending it and before its
    checkpoint), then the S3 event retried at once (the crashed attempt gave its lease back): every chunk
    message sent, by chunk number (a re-sent chunk appears twice)."""
    from leadimport.store.aws import ChunkQueue

    real_send = ChunkQueue.send
    calls = {"n": 0}

    def crash_on_third_batch(self: ChunkQueue, chunks: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3 and before_the_send:
            raise RuntimeError("the Lambda was killed before sending the batch")
        real_send(self, chunks)
        if calls["n"] == 3:
            raise RuntimeError("the Lambda was killed after sending, before the checkpoint")

    monkeypatch.setattr(ChunkQueue, "send", crash_on_third_batch)
    event = make_s3_event(pipeline_env.wiring.bucket_name, key)
    splitter = load_handler("splitter")
    with pytest.raises(RuntimeError):
        splitter(event, LambdaContext())
    monkeypatch.setattr(ChunkQueue, "send", real_send)
    assert splitter(event, LambdaContext())["outcomes"] == [{"import_id": imp["id"], "status": "processing"}]
    by_no: dict[int, list[str]] = {}
    for c in drain_chunks(pipeline_env):
        by_no.setdefault(c.chunk_no, []).append(c.to_json())
    return by_no


@pytest.mark.parametrize("crash", ["after the send, before the checkpoint", "before the send"])
def test_a_splitter_retried_after_a_crash_resumes_with_identical_chunks(
        pipeline_env: LocalAws, monkeypatch: pytest.MonkeyPatch, crash: str) -> None:
    monkeypatch.setenv("CHUNK_ROWS", "2")
    from leadimport import roots

    roots.reset()
    imp = created_import()
    key = imp["upload"]["post"]["fields"]["key"]
    put(pipeline_env, key, csv_bytes(50))
    purge_events(pipeline_env)
    by_no = split_crashed_on_the_third_send_then_retried(pipeline_env, monkeypatch, imp, key,
                                                         before_the_send=crash == "before the send")
    assert sorted(by_no) == list(range(25))
    assert all(len(set(bodies)) == 1 for bodies in by_no.values())  # re-sent chunks are identical
    assert sorted(n for bodies in by_no.values() for n, _ in ChunkMessage.from_json(bodies[0]).rows) == list(range(1, 51))


def test_a_dropped_file_creates_its_import_with_options_from_metadata(pipeline_env: LocalAws, db: Database) -> None:
    options = {"scrub": {"scope": "company", "dialed": True}, "additional_data": {"list": "partner"}}
    put(pipeline_env, "drop/1/schedule/2/partner list.csv", b"caller_id\n+16175550100\n+19518761336\n",
        Metadata={"leadimport-options": json.dumps(options)})
    run_inline_until_idle(pipeline_env)
    rows = db.rows("SELECT id::text, name, owner_type, owner_id, source, status, created_leads, rejections"
                   " FROM lead_imports WHERE source = 'drop'")
    assert len(rows) == 1
    imp = rows[0]
    assert (imp["name"], imp["owner_type"], imp["owner_id"], imp["status"]) == ("partner list.csv", "schedule", 2,
                                                                              "completed")
    assert imp["created_leads"] == 1 and imp["rejections"] == {"scrubbed_dialed": 1}
    # the same object version delivered again creates nothing
    event = make_s3_event(pipeline_env.wiring.bucket_name, "drop/1/schedule/2/partner list.csv")
    load_handler("splitter")(event, LambdaContext())
    assert db.run("SELECT count(*) FROM lead_imports WHERE source = 'drop'") == [[1]]


def test_a_dropped_file_for_another_companys_schedule_fails_clearly(pipeline_env: LocalAws, db: Database) -> None:
    put(pipeline_env, "drop/1/schedule/3/list.csv", b"caller_id\n+19518761336\n")
    run_inline_until_idle(pipeline_env)
    status, error = db.run("SELECT status, error FROM lead_imports WHERE source = 'drop'")[0]
    assert status == "failed" and "schedule 3" in error
    assert db.run("SELECT count(*) FROM leads WHERE import_id IS NOT NULL") == [[0]]


def test_s3_test_events_are_ignored(pipeline_env: LocalAws) -> None:
    from leadimport_local.events import load_event

    assert load_handler("splitter")(load_event("s3_test_event.json"), LambdaContext()) == {"outcomes": []}


def test_keys_with_spaces_arrive_url_encoded_and_are_decoded(pipeline_env: LocalAws, db: Database) -> None:
    put(pipeline_env, "drop/1/offer/1/my list (2).csv", b"caller_id\n+19518761336\n")
    purge_events(pipeline_env)
    event = make_s3_event(pipeline_env.wiring.bucket_name, "drop/1/offer/1/my list (2).csv")
    assert "+" in event["Records"][0]["s3"]["object"]["key"]
    load_handler("splitter")(event, LambdaContext())
    assert db.run("SELECT name FROM lead_imports WHERE source = 'drop'") == [["my list (2).csv"]]


def test_preview_stops_for_confirmation_then_start_continues(pipeline_env: LocalAws, db: Database) -> None:
    imp = created_import(preview=True)
    put(pipeline_env, imp["upload"]["post"]["fields"]["key"],
        b"Phone Number,Email,Notes\n9518761336,a@b.co,x\nnope,b@b.co,y\n+16785177520,c@b.co,z\n")
    run_inline_until_idle(pipeline_env)
    status, preview, _ = call_api(1, "GET", f"/imports/{imp['id']}/preview")
    assert status == 200
    assert preview["import"]["status"] == "awaiting_confirmation"
    assert preview["header"] == ["Phone Number", "Email", "Notes"] and preview["delimiter"] == ","
    # the file has no caller_id column: the preview proposes the likely phone column, and runs the rules with it
    assert preview["column_mapping"] == {"Phone Number": "caller_id"}
    assert [r["outcome"] for r in preview["rows"]] == ["accepted", "rejected", "accepted"]
    assert preview["rows"][1]["reason"] == "invalid_phone"
    status, started, text = call_api(1, "POST", f"/imports/{imp['id']}/start",
                                     body={"column_mapping": {"Phone Number": "caller_id", "Notes": None}})
    assert status == 200, text
    run_inline_until_idle(pipeline_env)
    _, final, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert final["status"] == "completed"
    assert (final["created_leads"], final["rejections"]) == (2, {"invalid_phone": 1})
    leads = db.run("SELECT email, tokens FROM leads WHERE import_id = CAST(:i AS uuid) ORDER BY import_row", i=imp["id"])
    assert leads[0] == ["a@b.co", {}]  # "Email" is the dedicated email column; Notes skipped by the mapping


def test_an_oversize_object_is_rejected_before_reading(pipeline_env: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "100")
    from leadimport import roots

    roots.reset()
    imp = created_import()
    put(pipeline_env, imp["upload"]["post"]["fields"]["key"], csv_bytes(20))
    run_inline_until_idle(pipeline_env)
    _, status, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert status["status"] == "failed" and "MB" in status["error"]
    # it does not stay in the bucket
    listed = pipeline_env.s3.list_objects_v2(Bucket=pipeline_env.wiring.bucket_name, Prefix=f"uploads/1/{imp['id']}/")
    assert listed.get("KeyCount", 0) == 0


def test_a_header_without_rows_fails_with_a_sentence(pipeline_env: LocalAws) -> None:
    imp = created_import()
    put(pipeline_env, imp["upload"]["post"]["fields"]["key"], b"caller_id,email\r\n")
    run_inline_until_idle(pipeline_env)
    _, status, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert status["status"] == "failed" and "no rows of data" in status["error"]


# ---- one option validator for every way in ---------------------------------------------------------------

REFUSED_OPTIONS = [  # options a company-1 import into schedule 1 cannot use, each refused by POST /imports too
    ({"defaults": {"buyer_ids": [3]}}, "There is no buyer 3 in your company."),
    ({"defaults": {"traffic_source_id": 3}}, "There is no traffic source 3 in your company."),
    ({"lead_management": {"add_to_schedule_id": 3}}, "There is no schedule 3 in your company."),
    ({"lead_management": {"copy_to_this_schedule_from": {"type": "offer", "id": 3}}},
     "There is no offer 3 in your company."),
    ({"lead_management": {"move_to_schedule_id": 2, "expire_existing": True}}, "cannot be combined"),
    ({"additional_data": {"notes": "x" * 10_001}}, "the limit is 10,000"),
    ({"scrub": {"scope": "company", "dispositions": ["y" * 20_000]}}, "the limit is 10,000"),
    ({"column_mapping": {f"c{i}": f"t{i}" for i in range(501)}}, "at most 500 items"),
    ({"defaults": {"buyer_ids": [True]}}, "valid integer"),
]


@pytest.mark.parametrize(("options", "sentence"), REFUSED_OPTIONS)
def test_a_dropped_file_with_options_the_api_refuses_fails_with_the_apis_sentence_and_writes_nothing(
        pipeline_env: LocalAws, db: Database, options: dict[str, Any], sentence: str) -> None:
    # Given the API's answer to the same options
    code, answer, text = call_api(1, "POST", "/imports", body={**options, "owner": {"type": "schedule", "id": 1}})
    assert code == 422, text
    api_sentence = answer["message"]
    assert sentence in api_sentence
    # When a file is dropped for company 1 with those options in its metadata
    put(pipeline_env, "drop/1/schedule/1/list.csv", b"caller_id\n+19518761336\n+16175550100\n",
        Metadata={"leadimport-options": json.dumps(options)})
    pipeline_env.deliver_s3_events(load_handler("splitter"))
    # Then its import failed with the API's sentence, before any row was read: no chunk queued, no lead
    status, error, total = db.run("SELECT status, error, total_rows FROM lead_imports WHERE source = 'drop'")[0]
    assert status == "failed" and api_sentence in error and total is None
    assert drain_chunks(pipeline_env) == []
    assert db.run("SELECT count(*) FROM leads WHERE import_id IS NOT NULL") == [[0]]


def test_options_over_the_document_limit_are_refused_before_any_upload(pipeline_env: LocalAws) -> None:
    body = {"owner": {"type": "schedule", "id": 1}, "additional_data": {f"k{i}": "v" * 9_000 for i in range(8)}}
    code, answer, _ = call_api(1, "POST", "/imports", body=body)
    assert code == 422 and "the limit is 64 KB" in answer["message"]


@pytest.mark.parametrize("key", ["drop/0001/schedule/1/a.csv", "drop/\u00b2/schedule/1/a.csv",
                                 "drop/\u0661/schedule/1/a.csv", "drop/1/schedule/01/a.csv",
                                 "drop/1/schedule/99999999999999999999/a.csv"])
def test_odd_drop_keys_are_rejected_to_their_own_prefix_without_a_crash(pipeline_env: LocalAws, db: Database,
                                                                       key: str) -> None:
    put(pipeline_env, key, b"caller_id\n+19518761336\n")
    purge_events(pipeline_env)
    event = make_s3_event(pipeline_env.wiring.bucket_name, key)
    outcome = load_handler("splitter")(event, LambdaContext())
    assert outcome["outcomes"] == [{"import_id": None, "status": "rejected"}]
    assert db.run("SELECT count(*) FROM leads WHERE import_id IS NOT NULL") == [[0]]
    # Out of drop/, kept under rejected/ with the reason (a readable sentence) in its metadata
    s3, bucket = pipeline_env.s3, pipeline_env.wiring.bucket_name
    assert s3.list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount") == 0
    moved = s3.head_object(Bucket=bucket, Key="rejected/" + key)
    assert "does not name a company" in moved["Metadata"]["leadimport-rejection"]
    assert s3.get_object(Bucket=bucket, Key="rejected/" + key)["Body"].read() == b"caller_id\n+19518761336\n"
    # A duplicate delivery of the event finds nothing left to move: no crash, same outcome
    assert load_handler("splitter")(event, LambdaContext())["outcomes"] == [{"import_id": None, "status": "rejected"}]


def test_a_drop_for_an_unknown_company_is_rejected_with_its_reason(pipeline_env: LocalAws, db: Database) -> None:
    key = "drop/987654/schedule/1/list.csv"
    put(pipeline_env, key, b"caller_id\n+19518761336\n")
    purge_events(pipeline_env)
    outcome = load_handler("splitter")(make_s3_event(pipeline_env.wiring.bucket_name, key), LambdaContext())
    assert outcome["outcomes"] == [{"import_id": None, "status": "rejected"}]
    moved = pipeline_env.s3.head_object(Bucket=pipeline_env.wiring.bucket_name, Key="rejected/" + key)
    assert moved["Metadata"]["leadimport-rejection"] == "No company has the id 987654."
    assert db.run("SELECT count(*) FROM lead_imports") == [[0]]


def test_a_damaged_file_resumes_with_identical_chunks_and_every_row_in_them(
        pipeline_env: LocalAws, monkeypatch: pytest.MonkeyPatch) -> None:
    """A quote left open (restarted reading), a NUL and a long value (warnings in the message): a split that
    crashed after sending and before its checkpoint re-sends the same chunks, and every row is in one of them."""
    monkeypatch.setenv("CHUNK_ROWS", "2")
    from leadimport import roots

    roots.reset()
    imp = created_import()
    key = imp["upload"]["post"]["fields"]["key"]
    lines = ["caller_id,name,notes"] + [f"+1951876{i:04d},Name {i},n" for i in range(1, 51)]
    lines[7] = '+19518760007,"Name 7 never closed,n'
    lines[20] = "+19518760020,Na\x00me 20,n"
    lines[33] = "+19518760033,Name 33," + "x" * 10_001
    put(pipeline_env, key, ("\n".join(lines) + "\n").encode())
    purge_events(pipeline_env)
    by_no = split_crashed_on_the_third_send_then_retried(pipeline_env, monkeypatch, imp, key, before_the_send=False)
    assert sorted(by_no) == list(range(25)) and all(len(set(bodies)) == 1 for bodies in by_no.values())
    chunks = [ChunkMessage.from_json(by_no[n][0]) for n in range(25)]
    assert sorted([n for c in chunks for n, _ in c.rows] + [r.row_no for c in chunks for r in c.rejected]) == list(
        range(1, 51))
    assert [(r.row_no, r.reason) for c in chunks for r in c.rejected] == [(7, "malformed_row")]
    assert [(w.row_no, w.code, w.column) for c in chunks for w in c.warned] == [
        (20, "nul_removed", "name"), (33, "value_too_long_dropped", "notes")]
