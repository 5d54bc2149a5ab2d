"""2. Splitter memory: peak RSS of a child process splitting a 100 MB and a 1 GB file (--quick: 10 MB and 100 MB).

Each split runs in a fresh child process (`python -m benchmarks.bench_split_memory --child ...`), which
reports its own VmHWM (peak RSS since it started, imports included) and its VmRSS just before splitting.
Two sources, so that the number is the splitter's own and not moto's:

* `file`: the splitter's reader path (read_header / iter_rows / chunk_rows / ChunkMessage.to_json, as in
  Splitter._split_claimed) over a local file opened in binary;
* `s3` (up to 100 MB unless BENCH_SPLIT_S3_1GB=1): the real `Splitter` class (claim, header, checkpoints in PostgreSQL, finish) streaming the object
  from a moto *server* that runs in this (parent) process, over HTTP, so moto's copy of the object is
  not in the measured process; the queue is a stub that serializes and counts the messages.

Files are generated into the run's temp dir (one block of realistic rows repeated with varying lead
numbers) and deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CountingQueue,
    Result,
    big_file,
    drop_database,
    fresh_database,
    log,
    new_import,
    proc_status,
    server_urls,
)

NAME = "split_memory"
MB = 1_000_000
# The S3 path of a 1 GB file adds ~4 minutes (upload to moto, then a split as slow as the file one): off by
# default in the full run, whose e2e 1M import already takes most of the time budget.
S3_MAX_BYTES = 2000 * MB if os.environ.get("BENCH_SPLIT_S3_1GB") == "1" else 100 * MB


def run(*, quick: bool, workdir: Path) -> tuple[list[Result], dict[str, Any]]:
    sizes = [10 * MB, 100 * MB] if quick else [100 * MB, 1000 * MB]
    labels = {10 * MB: "10 MB", 100 * MB: "100 MB", 1000 * MB: "1 GB"}
    results: list[Result] = []
    extra: dict[str, Any] = {"sizes": [labels[s] for s in sizes], "file": {}, "s3": {}}
    base_url, _ = server_urls()
    db_url = fresh_database(base_url, "bench_split_memory")

    from leadimport_local.runner import FAKE_AWS_ENV
    from moto.server import ThreadedMotoServer

    from leadimport.store.aws import s3_client
    from leadimport.store.db import Database

    for k, v in FAKE_AWS_ENV.items():
        os.environ.setdefault(k, v)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    db = Database.from_url(db_url)
    try:
        s3 = s3_client(endpoint)
        s3.create_bucket(Bucket="bench-uploads")
        for size in sizes:
            path = big_file(workdir / f"split-memory-{size // MB}mb.csv", size)
            try:
                log(f"split_memory: {labels[size]} from a local file (child process)")
                got = _child(["--child", "file", "--path", str(path)])
                extra["file"][labels[size]] = got
                results.append(_result(f"reader path, local file, {labels[size]}", got,
                                       "child process; peak = VmHWM of the child (imports included)"))

                if size > S3_MAX_BYTES:
                    log(f"split_memory: {labels[size]} via S3 skipped (set BENCH_SPLIT_S3_1GB=1 to run it)")
                    continue
                key = f"uploads/1/bench/{size // MB}mb.csv"
                t = time.perf_counter()
                s3.upload_file(str(path), "bench-uploads", key)
                log(f"split_memory: uploaded {labels[size]} to the moto server in {time.perf_counter() - t:.1f}s")
                import_id = new_import(db, status="queued", upload_key=key)
                log(f"split_memory: {labels[size]} via Splitter + moto server (child process)")
                got = _child(["--child", "s3", "--endpoint", endpoint, "--key", key, "--import-id", import_id,
                              "--database-url", db_url])
                extra["s3"][labels[size]] = got
                results.append(_result(f"Splitter class, S3 via moto server, {labels[size]}", got,
                                       "child process; moto runs in the parent; peak = child's VmHWM"))
                s3.delete_object(Bucket="bench-uploads", Key=key)
            finally:
                path.unlink(missing_ok=True)
    finally:
        db.close()
        server.stop()
        drop_database(base_url, "bench_split_memory")

    for source in ("file", "s3"):
        small, big = (extra[source].get(labels[s]) for s in sizes)
        if small and big:
            extra[source]["ratio"] = round(big["peak_kb"] / small["peak_kb"], 3)
            extra[source]["ratio_above_baseline"] = round(
                max(big["peak_kb"] - big["base_kb"], 1) / max(small["peak_kb"] - small["base_kb"], 1), 3)
    return results, extra


def _result(case: str, got: dict[str, Any], note: str) -> Result:
    r = Result.timed(NAME, case, got["rows"], [got["seconds"]], peak_rss_mb=got["peak_kb"] / 1024)
    r.note = f"{note}; RSS before split {got['base_kb'] / 1024:,.0f} MiB; {got['messages']:,} messages"
    return r


def _child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_split_memory", *args], capture_output=True,
                          text=True, timeout=1800, env=dict(os.environ))
    if proc.returncode != 0:
        raise RuntimeError(f"split child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


# ---- the child ---------------------------------------------------------------------------------------


def _child_file(path: str) -> dict[str, Any]:
    from benchmarks.bench_splitter import reader_path

    base = proc_status().get("VmRSS", 0)
    t = time.perf_counter()
    with open(path, "rb") as fh:
        rows, messages, size = reader_path(fh)
    return {"rows": rows, "messages": messages, "bytes": size, "seconds": time.perf_counter() - t,
            "base_kb": base}


def _child_s3(endpoint: str, key: str, import_id: str, database_url: str) -> dict[str, Any]:
    from benchmarks.common import quiet_environment

    quiet_environment()
    from leadimport.services.split_upload import SplitConfig, Splitter
    from leadimport.store.aws import UploadStore, s3_client
    from leadimport.store.db import Database

    db = Database.from_url(database_url)
    uploads = UploadStore("bench-uploads", s3_client(endpoint))
    queue = CountingQueue()
    splitter = Splitter(db, uploads, queue, lambda _id: None, SplitConfig())  # type: ignore[arg-type]
    db.run("SELECT 1")  # connect before the baseline
    base = proc_status().get("VmRSS", 0)
    t = time.perf_counter()
    outcome = splitter.resume(import_id)
    seconds = time.perf_counter() - t
    if outcome.status not in ("processing", "completed"):
        raise RuntimeError(f"split failed: {outcome}")
    return {"rows": queue.rows, "messages": queue.messages, "bytes": queue.bytes, "seconds": seconds,
            "base_kb": base, "status": outcome.status}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", choices=["file", "s3"], required=True)
    p.add_argument("--path")
    p.add_argument("--endpoint")
    p.add_argument("--key")
    p.add_argument("--import-id")
    p.add_argument("--database-url")
    a = p.parse_args()
    if a.child == "file":
        out = _child_file(a.path)
    else:
        out = _child_s3(a.endpoint, a.key, a.import_id, a.database_url)
    status = proc_status()
    out["peak_kb"] = status.get("VmHWM", 0)
    out["rss_end_kb"] = status.get("VmRSS", 0)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
