"""Faults on real PostgreSQL and Redis with moto: each asserts no lead lost or duplicated, counters adding up."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from leadimport_local.events import LambdaContext, make_sqs_batch
from leadimport_local.pipeline import call_api
from leadimport_local.runner import LocalAws, load_handler, run_inline_until_idle
from leadimport_local.servers import LocalRedis

from leadimport.services.stuck_imports import mark_stuck_imports
from leadimport.store.db import Database

pytestmark = pytest.mark.integration


def upload(aws: LocalAws, content: bytes, **options: Any) -> dict[str, Any]:
    status, imp, text = call_api(1, "POST", "/imports", body={"owner": {"type": "schedule", "id": 1}, **options})
    assert status == 201, text
    aws.s3.put_object(Bucket=aws.wiring.bucket_name, Key=imp["upload"]["post"]["fields"]["key"], Body=content)
    return imp


def phones_csv(n: int, start: int = 1000) -> bytes:
    return ("caller_id,email,interest\n" + "".join(
        f"+1951876{i:04d},lead{i}@example.com,cars\n" for i in range(start, start + n))).encode()


def split_only(aws: LocalAws) -> list[str]:
    """Run the splitter on the pending S3 events; return the chunk message bodies (left out of the queue)."""
    aws.deliver_s3_events(load_handler("splitter"))
    bodies = []
    while True:
        got = aws.sqs.receive_message(QueueUrl=aws.chunk_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            bodies.append(m["Body"])
            aws.sqs.delete_message(QueueUrl=aws.chunk_queue_url, ReceiptHandle=m["ReceiptHandle"])


def final(import_id: str) -> dict[str, Any]:
    _, body, _ = call_api(1, "GET", f"/imports/{import_id}")
    return body


def lead_counts(db: Database, import_id: str) -> tuple[int, int]:
    return tuple(db.run("SELECT count(*), count(DISTINCT import_row) FROM leads WHERE import_id = CAST(:i AS uuid)",
                        i=import_id)[0])  # type: ignore[return-value]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch, pipeline_env: LocalAws) -> LocalAws:
    monkeypatch.setenv("CHUNK_ROWS", "10")
    from leadimport import roots

    roots.reset()
    return pipeline_env


def test_every_message_twice_and_out_of_order(small_chunks: LocalAws, db: Database) -> None:
    imp = upload(small_chunks, phones_csv(60))
    # every S3 event twice
    event = small_chunks.sqs.receive_message(QueueUrl=small_chunks.events_queue_url)["Messages"][0]
    small_chunks.sqs.send_message(QueueUrl=small_chunks.events_queue_url, MessageBody=event["Body"])
    bodies = split_only(small_chunks)
    assert len(bodies) == 6
    worker = load_handler("worker")
    # every chunk twice, the second round reversed, interleaved
    order = bodies[::2] + bodies[::-1] + bodies[1::2]
    for i in range(0, len(order), 4):
        assert worker(make_sqs_batch(order[i:i + 4]), LambdaContext()) == {"batchItemFailures": []}
    f = final(imp["id"])
    assert (f["status"], f["total_rows"], f["processed_rows"], f["created_leads"]) == ("completed", 60, 60, 60)
    assert lead_counts(db, imp["id"]) == (60, 60)


def test_a_worker_killed_after_the_write_before_the_delete(small_chunks: LocalAws, db: Database) -> None:
    """The transaction committed but the message was not deleted: the redelivery changes nothing."""
    imp = upload(small_chunks, phones_csv(30))
    bodies = split_only(small_chunks)
    worker = load_handler("worker")
    worker(make_sqs_batch(bodies[:2]), LambdaContext())  # "killed" here: nothing deleted
    worker(make_sqs_batch(bodies), LambdaContext())  # SQS redelivers all three
    f = final(imp["id"])
    assert (f["status"], f["created_leads"], f["processed_rows"]) == ("completed", 30, 30)
    assert lead_counts(db, imp["id"]) == (30, 30)


def test_a_worker_killed_before_the_write(small_chunks: LocalAws, db: Database,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    imp = upload(small_chunks, phones_csv(20))
    bodies = split_only(small_chunks)
    from leadimport.store import chunks as sql

    real = sql.insert_leads

    def die(*args: Any, **kwargs: Any) -> Any:
        raise SystemExit("killed mid-chunk")

    monkeypatch.setattr(sql, "insert_leads", die)
    with pytest.raises(SystemExit):
        load_handler("worker")(make_sqs_batch(bodies[:1]), LambdaContext())
    monkeypatch.setattr(sql, "insert_leads", real)
    assert final(imp["id"])["processed_rows"] == 0  # nothing of the killed chunk was kept
    load_handler("worker")(make_sqs_batch(bodies), LambdaContext())
    assert final(imp["id"])["created_leads"] == 20
    assert lead_counts(db, imp["id"]) == (20, 20)


def test_database_connections_dropped_mid_import(small_chunks: LocalAws, db: Database, database_url: str) -> None:
    imp = upload(small_chunks, phones_csv(40))
    bodies = split_only(small_chunks)
    worker = load_handler("worker")
    assert worker(make_sqs_batch(bodies[:2]), LambdaContext()) == {"batchItemFailures": []}
    # Every connection of the worker is killed (failover, proxy restart)
    name = database_url.rsplit("/", 1)[1]
    db.run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()",
           d=name)
    result = worker(make_sqs_batch(bodies[2:]), LambdaContext())
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed  # the chunk that met the dead connection is retried, not lost
    # SQS redelivers the failed ones; the worker reconnects
    retry = worker(make_sqs_batch(bodies[2:]), LambdaContext())
    assert retry == {"batchItemFailures": []}
    f = final(imp["id"])
    assert (f["status"], f["created_leads"]) == ("completed", 40)
    assert lead_counts(db, imp["id"]) == (40, 40)


def test_redis_stopped_and_restarted(small_chunks: LocalAws, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Redis outage fails the chunk (rolled back); a restart loses what Redis held; after completion every live
    lead of the import has its tokens again."""
    data = Path(tempfile.mkdtemp())
    redis_server = LocalRedis(data)
    redis_server.start()
    try:
        monkeypatch.setenv("REDIS_URL", redis_server.url)
        from leadimport import roots

        roots.reset()
        imp = upload(small_chunks, phones_csv(20))
        bodies = split_only(small_chunks)
        worker = load_handler("worker")
        assert worker(make_sqs_batch(bodies[:1]), LambdaContext()) == {"batchItemFailures": []}
        redis_server.stop()
        failed = worker(make_sqs_batch(bodies[1:]), LambdaContext())["batchItemFailures"]
        assert len(failed) == 1
        assert final(imp["id"])["status"] == "processing"  # not completed while a chunk lacks its tokens
        redis_server.start()
        assert worker(make_sqs_batch(bodies[1:]), LambdaContext()) == {"batchItemFailures": []}
        f = final(imp["id"])
        assert (f["status"], f["created_leads"]) == ("completed", 20)
        import redis

        client = redis.Redis.from_url(redis_server.url)
        # the first chunk's tokens died with Redis (no persistence): the check at completion stamped them again
        assert len(list(client.scan_iter("*:tokens:*"))) == 20
        for phone in db.run("SELECT caller_id FROM leads WHERE import_id = CAST(:i AS uuid)", i=imp["id"]):
            assert client.get(f"{os.environ['REDIS_KEY_PREFIX']}:tokens:1:schedule:1:{phone[0]}")
        client.close()
        assert db.run("SELECT tokens_checked_at IS NOT NULL FROM lead_imports WHERE id = CAST(:i AS uuid)",
                      i=imp["id"]) == [[True]]
    finally:
        redis_server.stop()


def test_a_poison_message_is_retried_then_fails_its_import_clearly(small_chunks: LocalAws) -> None:
    imp = upload(small_chunks, phones_csv(10))
    bodies = split_only(small_chunks)
    poison = json.loads(bodies[0])
    poison["v"] = 99  # a message from a future splitter
    worker = load_handler("worker")
    max_receive = small_chunks.wiring.max_receive_count
    for attempt in range(1, max_receive + 1):
        result = worker(make_sqs_batch([json.dumps(poison)], receive_count=attempt), LambdaContext())
        assert len(result["batchItemFailures"]) == 1  # SQS keeps it, then moves it to the DLQ
        status = final(imp["id"])["status"]
        assert status == ("failed" if attempt == max_receive else "processing")
    f = final(imp["id"])
    assert "Chunk 0" in f["error"] and "version" in f["error"]
    # unparseable bodies go the same way without breaking the batch's good messages
    mixed = worker(make_sqs_batch(["not json", bodies[0]]), LambdaContext())
    assert len(mixed["batchItemFailures"]) == 1


def test_the_moto_queue_moves_a_poison_message_to_the_dlq(pipeline_env: LocalAws) -> None:
    sqs = pipeline_env.sqs
    sqs.set_queue_attributes(QueueUrl=pipeline_env.chunk_queue_url, Attributes={"VisibilityTimeout": "0"})
    sqs.send_message(QueueUrl=pipeline_env.chunk_queue_url, MessageBody="not json")
    worker = load_handler("worker")
    for _ in range(pipeline_env.wiring.max_receive_count + 1):
        pipeline_env.deliver_chunks(worker)
    dlq = sqs.receive_message(QueueUrl=pipeline_env.dlq_url).get("Messages", [])
    assert [m["Body"] for m in dlq] == ["not json"]


def test_stuck_imports_are_marked_failed(pipeline_env: LocalAws, db: Database) -> None:
    imp = upload(pipeline_env, phones_csv(5))
    for status in ("queued", "splitting", "processing"):  # along the lifecycle (the database refuses shortcuts)
        db.run("UPDATE lead_imports SET status = :s, updated_at = now() - interval '2 hours'"
               " WHERE id = CAST(:i AS uuid)", s=status, i=imp["id"])
    assert mark_stuck_imports(db, 60) == [imp["id"]]
    f = final(imp["id"])
    assert f["status"] == "failed" and "stopped making progress" in f["error"]
    assert mark_stuck_imports(db, 60) == []


def test_logs_of_a_whole_import_hold_no_phone_or_email(pipeline_env: LocalAws,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    import io
    import logging

    # Powertools' handlers hold the stream they were created with: point them at a buffer.
    for function in ("api", "splitter", "worker"):
        load_handler(function)
    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger("leadimport").handlers if isinstance(h, logging.StreamHandler)]
    assert handlers
    previous = [h.setStream(buffer) for h in handlers]
    try:
        content = phones_csv(25) + b"bad-phone,secret@example.com,x\n"
        imp = upload(pipeline_env, content)
        run_inline_until_idle(pipeline_env)
        assert final(imp["id"])["status"] == "completed"
    finally:
        for h, stream in zip(handlers, previous, strict=True):
            h.setStream(stream)  # type: ignore[arg-type]
    out, err = capfd.readouterr()
    logs = buffer.getvalue() + out + err
    assert imp["id"] in logs and "chunk imported" in logs  # the import is logged at INFO ...
    for i in range(1000, 1025):  # ... but never a phone (in any format) or an email
        assert f"876{i:04d}" not in logs
        assert f"lead{i}@example.com" not in logs
    assert "secret@example.com" not in logs


def test_a_last_chunk_that_fails_every_time_fails_its_import_instead_of_completing_it(
        small_chunks: LocalAws, db: Database) -> None:
    # Given the other chunks imported, and then the traffic source vanished
    imp = upload(small_chunks, phones_csv(25), defaults={"traffic_source_id": 2})
    bodies = split_only(small_chunks)
    worker = load_handler("worker")
    for body in bodies[1:]:
        assert worker(make_sqs_batch([body]), LambdaContext()) == {"batchItemFailures": []}
    db.run("UPDATE leads SET traffic_source_id = NULL WHERE traffic_source_id = 2")
    db.run("DELETE FROM traffic_sources WHERE id = 2")
    # When the last outstanding chunk fails on every attempt
    for attempt in range(1, small_chunks.wiring.max_receive_count + 1):
        worker(make_sqs_batch([bodies[0]], receive_count=attempt), LambdaContext())
    # Then the import is failed, not completed, and its rows add up
    f = final(imp["id"])
    assert (f["status"], f["created_leads"], f["unprocessed_rows"], f["total_rows"]) == ("failed", 15, 10, 25)
    assert "Chunk 0" in f["error"]


def test_a_chunk_that_fails_every_time_fails_its_import_with_a_sentence_and_lists_its_rows(
        small_chunks: LocalAws, db: Database, caplog: pytest.LogCaptureFixture) -> None:
    # Given an import whose traffic source vanished after it was accepted: every chunk fails on the foreign key
    imp = upload(small_chunks, phones_csv(25), defaults={"traffic_source_id": 2})
    bodies = split_only(small_chunks)
    assert len(bodies) == 3
    db.run("DELETE FROM traffic_sources WHERE id = 2")
    worker = load_handler("worker")
    max_receive = small_chunks.wiring.max_receive_count
    # When the first chunk is delivered until its last attempt
    for attempt in range(1, max_receive + 1):
        result = worker(make_sqs_batch([bodies[0]], receive_count=attempt), LambdaContext())
        assert len(result["batchItemFailures"]) == 1  # SQS keeps it, then moves it to the DLQ
        assert final(imp["id"])["status"] == ("failed" if attempt == max_receive else "processing")
    # Then the import failed with a sentence naming the chunk, its rows and the error, without values
    f = final(imp["id"])
    assert "Chunk 0" in f["error"] and "rows 1 to 10" in f["error"] and "23503" in f["error"]
    assert "+1951876" not in f["error"]
    # and the other chunks, delivered now, are listed as unprocessed too: every row has an outcome
    for body in bodies[1:]:
        worker(make_sqs_batch([body]), LambdaContext())
    f = final(imp["id"])
    assert (f["status"], f["processed_rows"], f["unprocessed_rows"], f["total_rows"]) == ("failed", 0, 25, 25)
    reasons = db.run("SELECT reason, count(*) FROM lead_import_rejections WHERE import_id = CAST(:i AS uuid)"
                     " GROUP BY 1", i=imp["id"])
    assert reasons == [["unprocessed", 25]]
    # Each failed attempt was logged as a warning with ids and the error, never a row's values
    warnings = [r for r in caplog.records if r.levelname in ("WARNING", "ERROR") and "chunk" in r.getMessage()]
    assert len(warnings) >= max_receive
    assert not any("+1951876" in r.getMessage() or "+1951876" in str(r.__dict__) for r in warnings)
