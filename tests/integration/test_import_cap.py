"""The live throughput cap per import (`max_concurrency`): at most that many of its chunks are written at once,
a chunk over the cap goes back to the queue with a delay (never towards the DLQ), and a change applies at once."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from leadimport_local.events import LambdaContext, make_sqs_batch
from leadimport_local.pipeline import call_api
from leadimport_local.runner import LocalAws, load_handler

from leadimport.imports import repository as import_repo
from leadimport.rules.pipeline import RowRules
from leadimport.services.import_chunk import ChunkImporter
from leadimport.store.db import Database, connect
from leadimport.store.tokens import TokenStore
from tests.integration.test_import_chunk import chunk, importer, make_import, tokens

pytestmark = pytest.mark.integration
__all__ = ["importer", "tokens"]  # fixtures shared with test_import_chunk


def capped_import(db: Database, cap: int | None, chunks: int = 1) -> str:
    import_id = make_import(db, chunk_count=chunks, total=chunks * 2)
    db.run("UPDATE lead_imports SET max_concurrency = CAST(:m AS integer) WHERE id = CAST(:i AS uuid)",
           m=cap, i=import_id)
    return import_id


def phones(chunk_no: int) -> list[list[str]]:
    return [[f"+1951876{chunk_no:02d}{i:02d}", "", "", "US"] for i in range(2)]


def test_a_chunk_over_the_cap_writes_nothing_and_a_raised_cap_lets_it_in(db: Database, importer: ChunkImporter) -> None:
    import_id = capped_import(db, 1)
    other = connect(db.params)  # another chunk of the import in flight holds the only slot
    try:
        other.run("BEGIN")
        assert other.run("SELECT pg_try_advisory_xact_lock(hashtextextended(:i, 0))", i=import_id) == [[True]]
        applied: list[int] = []
        real_apply = RowRules.apply
        RowRules.apply = lambda self, *a, **k: applied.append(1) or real_apply(self, *a, **k)  # type: ignore[method-assign]
        try:
            result = importer.import_chunk(chunk(import_id, 0, phones(0)))
        finally:
            RowRules.apply = real_apply  # type: ignore[method-assign]
        assert result.outcome == "throttled"
        assert applied == []  # sent back before any row was read
        assert db.run("SELECT count(*) FROM lead_import_chunks WHERE import_id = CAST(:i AS uuid)", i=import_id) == [[0]]
        assert db.run("SELECT count(*) FROM leads WHERE import_id = CAST(:i AS uuid)", i=import_id) == [[0]]
        # Raised while the other chunk still runs: the next attempt takes the second slot
        assert import_repo.set_max_concurrency(db, 1, import_id, 2)
        assert importer.import_chunk(chunk(import_id, 0, phones(0))).outcome == "processed"
    finally:
        other.run("ROLLBACK")
        other.close()
    assert db.run("SELECT count(*) FROM leads WHERE import_id = CAST(:i AS uuid)", i=import_id) == [[2]]


@pytest.mark.parametrize("cap", [1, 2])
def test_with_a_cap_no_more_chunks_run_at_once_than_it_allows(db: Database, tokens: TokenStore, cap: int) -> None:
    """Three workers (each its own connection) on six chunks; the Redis stamp, inside each chunk's transaction,
    records how many chunks of the import are being written at that moment."""
    import_id = capped_import(db, cap, chunks=6)
    running, most, lock = 0, 0, threading.Lock()
    both_in = threading.Event()

    class SlowTokens(TokenStore):
        def stamp(self, stamps: Any, batch: int = 1000) -> int:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
                if running >= 2:
                    both_in.set()
            both_in.wait(timeout=1.0)  # give a second chunk every chance to get in, if the cap lets it
            try:
                return super().stamp(stamps, batch)
            finally:
                with lock:
                    running -= 1

    pending = list(range(6))
    throttled = 0

    def work() -> None:
        nonlocal throttled
        importer = ChunkImporter(Database(db.params), SlowTokens(tokens.url, tokens.key_prefix))
        while True:
            with lock:
                if not pending:
                    return
                n = pending.pop(0)
            if importer.import_chunk(chunk(import_id, n, phones(n), first_row=2 * n + 1)).outcome == "throttled":
                with lock:
                    throttled += 1
                    pending.append(n)  # back to the queue
                time.sleep(0.05)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert most == cap
    assert db.run("SELECT status, created_leads FROM lead_imports WHERE id = CAST(:i AS uuid)",
                  i=import_id) == [["completed", 12]]
    if cap == 1:
        assert throttled > 0


def test_the_worker_puts_a_capped_chunk_back_with_a_delay_and_never_towards_the_dlq(
        pipeline_env: LocalAws, db: Database) -> None:
    status, created, _ = call_api(1, "POST", "/imports", body={"owner": {"type": "schedule", "id": 1},
                                                               "max_concurrency": 1})
    assert status == 201 and created["max_concurrency"] == 1
    import_id = created["id"]
    pipeline_env.s3.put_object(Bucket=pipeline_env.wiring.bucket_name, Key=created["upload"]["post"]["fields"]["key"],
                               Body=b"caller_id\n+19518761336\n+16175550123\n")
    pipeline_env.deliver_s3_events(load_handler("splitter"))
    got = pipeline_env.sqs.receive_message(QueueUrl=pipeline_env.chunk_queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 1
    holder = connect(db.params)
    try:
        holder.run("BEGIN")
        holder.run("SELECT pg_advisory_xact_lock(hashtextextended(:i, 0))", i=import_id)
        # the last allowed attempt: a throttled chunk must not be recorded as failed
        result = load_handler("worker")(make_sqs_batch([got[0]["Body"]], receive_count=5), LambdaContext())
    finally:
        holder.run("ROLLBACK")
        holder.close()
    assert result == {"batchItemFailures": []}  # this delivery succeeds: deleted, its receive count ends here
    pipeline_env.sqs.delete_message(QueueUrl=pipeline_env.chunk_queue_url, ReceiptHandle=got[0]["ReceiptHandle"])
    attrs = pipeline_env.sqs.get_queue_attributes(QueueUrl=pipeline_env.chunk_queue_url,
                                                  AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"
    back = pipeline_env.sqs.receive_message(QueueUrl=pipeline_env.chunk_queue_url, WaitTimeSeconds=20)["Messages"]
    assert back[0]["Body"] == got[0]["Body"]
    assert load_handler("worker")(make_sqs_batch([back[0]["Body"]]), LambdaContext()) == {"batchItemFailures": []}
    _, final, _ = call_api(1, "GET", f"/imports/{import_id}")
    assert (final["status"], final["created_leads"], final["max_concurrency"]) == ("completed", 2, 1)


def test_the_cap_is_changed_over_the_api_while_the_import_runs(pipeline_env: LocalAws) -> None:
    _, created, _ = call_api(1, "POST", "/imports", body={"owner": {"type": "schedule", "id": 1}})
    path = f"/imports/{created['id']}"
    status, changed, _ = call_api(1, "PATCH", path, body={"max_concurrency": 3})
    assert status == 200 and changed["max_concurrency"] == 3
    status, changed, _ = call_api(1, "PATCH", path, body={"max_concurrency": None})
    assert status == 200 and changed["max_concurrency"] is None
    for bad in [0, 1001, "2", 1.5]:
        status, problem, _ = call_api(1, "PATCH", path, body={"max_concurrency": bad})
        assert status == 422, (bad, problem)
    status, _, _ = call_api(1, "PATCH", path, body={"max_concurency": 2})  # misspelt: refused, not ignored
    assert status == 422
    status, _, _ = call_api(2, "PATCH", path, body={"max_concurrency": 2})  # another company's import
    assert status == 404
    call_api(1, "POST", f"{path}/cancel")
    status, problem, _ = call_api(1, "PATCH", path, body={"max_concurrency": 2})
    assert status == 409 and problem["code"] == "already_finished"
