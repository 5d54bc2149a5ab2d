"""A splitter killed hard (SIGKILL: what out-of-memory and a Lambda timeout look like) in real processes: the
local pipeline restarts it, the lease it held lapses, the sweep hands the split on, and the split resumes from
its checkpoint. The import completes with exact counts: no row lost, none twice."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from leadimport_local.pipeline import LocalPipeline, call_api
from leadimport_local.runner import LocalServices

from leadimport.store.db import Database

pytestmark = pytest.mark.e2e
ROWS = 9_000


def wait_for(what: str, check: Any, ceiling: float = 300.0) -> Any:
    """Poll `check` until it returns something truthy; a generous ceiling, never a tight deadline."""
    deadline = time.monotonic() + ceiling
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def pipeline(services: LocalServices, database_url: str, redis_prefix: str) -> Iterator[LocalPipeline]:
    saved = dict(os.environ)
    os.environ.update({"DATABASE_URL": database_url, "REDIS_URL": services.redis_url or "",
                       "REDIS_KEY_PREFIX": redis_prefix, "SPLIT_LEASE_SECONDS": "2"})
    try:
        with LocalPipeline(workers=1, chunk_rows=100) as running:
            yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)
        from leadimport import roots

        roots.reset()


def test_a_splitter_killed_mid_file_is_restarted_resumed_and_the_import_is_exact(pipeline: LocalPipeline,
                                                                                   db: Database) -> None:
    status, imp, text = call_api(1, "POST", "/imports", body={"owner": {"type": "schedule", "id": 1}})
    assert status == 201, text
    body = "caller_id,interest\n" + "".join(f"+1{area}876{i:04d},x\n" for area in (951, 678, 312)
                                             for i in range(ROWS // 3))
    assert pipeline.aws is not None
    pipeline.aws.s3.put_object(Bucket=pipeline.aws.wiring.bucket_name, Key=imp["upload"]["post"]["fields"]["key"],
                               Body=body.encode())
    # Given the splitter recorded its first checkpoint (the shallow local queue keeps it mid-file)
    def checkpointed() -> Any:
        rows = db.run("SELECT split_next_chunk, split_done FROM lead_imports WHERE id = CAST(:i AS uuid)",
                      i=imp["id"])
        return rows and rows[0][0] >= 10 and rows[0]
    wait_for("the first checkpoint", checkpointed)
    splitter = pipeline._procs[0]
    assert splitter.name == "splitter"
    # When it is killed with SIGKILL, mid-file
    os.kill(splitter.pid, signal.SIGKILL)
    splitter.join(timeout=60)
    at_kill = db.rows("SELECT split_done, split_next_chunk, split_attempt FROM lead_imports WHERE id = CAST(:i AS uuid)",
                      i=imp["id"])[0]
    assert not at_kill["split_done"], "the split finished before the kill: the test proves nothing"
    # Then a new splitter process is started, a later attempt takes the lapsed lease, and the import completes
    wait_for("a new splitter process", lambda: pipeline.restarts >= 1)

    def finished() -> Any:
        _, resource, _ = call_api(1, "GET", f"/imports/{imp['id']}")
        return resource if resource["status"] in ("completed", "failed", "cancelled") else None
    final = wait_for("the import to finish", finished, ceiling=300)
    assert (final["status"], final["total_rows"], final["created_leads"], final["rejected_rows"]) == (
        "completed", ROWS, ROWS, 0)
    assert db.run("SELECT count(*), count(DISTINCT import_row) FROM leads WHERE import_id = CAST(:i AS uuid)",
                  i=imp["id"]) == [[ROWS, ROWS]]
    after = db.rows("SELECT split_attempt, chunk_count FROM lead_imports WHERE id = CAST(:i AS uuid)", i=imp["id"])[0]
    assert after["split_attempt"] > at_kill["split_attempt"]
    assert db.run("SELECT count(*) FROM lead_import_chunks WHERE import_id = CAST(:i AS uuid)",
                  i=imp["id"]) == [[after["chunk_count"]]]
