"""1. The splitter alone, on a realistic file (1M rows; --quick 20k).

Cases, all over the same bytes, in one process, median of several runs:
* reference `csv.reader` over `io.TextIOWrapper(BytesIO(data), "utf-8-sig", newline="")`;
* reference `csv.reader` + 500-row chunks + `json.dumps` per chunk (what a chunk message costs at least);
* the reader path: `read_header` / `iter_rows` / `chunk_rows` + `ChunkMessage.to_json` over a BytesIO;
* the `Splitter` class (`resume`) against moto S3 in-process (`mock_aws`) and the benchmark's PostgreSQL
  (claim, header, a checkpoint every 10 chunks, finish), with a queue stub that serializes and counts the
  messages (SQS cost is not measured).

Peak RSS per case is this process's VmHWM during that case (reset before it); the file's bytes (held by
the benchmark, and by moto for the Splitter case) are part of it: see the note of each row.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CHUNK_ROWS,
    CountingQueue,
    PeakRss,
    Result,
    drop_database,
    fresh_database,
    log,
    new_import,
    realistic_file,
    repeat,
    server_urls,
)

NAME = "splitter"


def count_csv_reader(data: bytes) -> int:
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), "utf-8-sig", newline=""))
    next(reader)
    n = 0
    for _ in reader:
        n += 1
    return n


def csv_reader_chunks_json(data: bytes, chunk: int = CHUNK_ROWS) -> int:
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), "utf-8-sig", newline=""))
    header = next(reader)
    n = 0
    size = 0
    group: list[list[Any]] = []
    for row in reader:
        n += 1
        group.append([n, row])
        if len(group) == chunk:
            size += len(json.dumps({"columns": header, "rows": group}, separators=(",", ":")))
            group = []
    if group:
        size += len(json.dumps({"columns": header, "rows": group}, separators=(",", ":")))
    return n


def reader_path(stream: Any, import_id: str = "00000000-0000-0000-0000-000000000000") -> tuple[int, int, int]:
    """What Splitter._split_claimed does with the file, minus S3, the database and SQS: (rows, messages, bytes)."""
    from leadimport.csv_io import CsvLimits, chunk_rows, iter_rows, read_header, resolve_columns
    from leadimport.messages import ChunkMessage, ReaderRejection
    from leadimport.services.split_upload import CHUNKS_PER_CHECKPOINT, SplitConfig

    config = SplitConfig()
    limits: CsvLimits = config.limits
    header = read_header(stream, limits=limits)
    columns = resolve_columns(header.columns, {}).names
    queue = CountingQueue()
    pending: list[ChunkMessage] = []
    next_chunk = 0
    for group in chunk_rows(iter_rows(stream, header, limits=limits), max_rows=config.chunk_rows,
                            max_bytes=config.chunk_max_bytes):
        pending.append(ChunkMessage(
            import_id=import_id, chunk_no=next_chunk, first_row=group[0].row_no,
            source_columns=header.columns, columns=columns,
            rows=[(r.row_no, r.values) for r in group if r.reason is None],
            rejected=[ReaderRejection(r.row_no, r.reason, r.message or r.reason, r.values)
                      for r in group if r.reason is not None],
        ))
        next_chunk += 1
        if len(pending) == CHUNKS_PER_CHECKPOINT:
            queue.send(pending)
            pending = []
    if pending:
        queue.send(pending)
    return queue.rows, queue.messages, queue.bytes


def run(*, quick: bool, workdir: Path) -> tuple[list[Result], dict[str, Any]]:
    n = 20_000 if quick else 1_000_000
    repeats = 3
    path = realistic_file(workdir, n)
    data = path.read_bytes()
    results: list[Result] = []
    extra: dict[str, Any] = {"file_mb": round(len(data) / 1e6, 1), "rows": n}
    held = f"incl. the {len(data) / 2**20:,.0f} MiB file held in memory"

    # Warm up (imports, regex compilation, first-call costs) outside the measurements.
    sample = data[: data.index(b"\n", min(len(data) - 1, 200_000)) + 1]
    count_csv_reader(sample)
    csv_reader_chunks_json(sample)
    reader_path(io.BytesIO(sample))

    log(f"splitter: csv.reader reference over {n:,} rows")
    with PeakRss() as mem:
        runs, got = repeat(lambda: count_csv_reader(data), repeats)
    assert got == n, got
    ref = Result.timed(NAME, "csv.reader over the bytes [reference]", n, runs,
                       peak_rss_mb=mem.peak_mb, note=held)
    results.append(ref)

    with PeakRss() as mem:
        runs, got = repeat(lambda: csv_reader_chunks_json(data), repeats)
    results.append(Result.timed(NAME, "csv.reader + 500-row chunks + json.dumps [reference 2]", n, runs,
                                peak_rss_mb=mem.peak_mb, note=held).against(ref))

    log("splitter: read_header/iter_rows/chunk_rows + ChunkMessage.to_json")
    with PeakRss() as mem:
        runs, got = repeat(lambda: reader_path(io.BytesIO(data)), repeats)
    rows, messages, size = got
    assert rows == n, rows
    extra["messages"] = messages
    extra["message_kb_avg"] = round(size / messages / 1024, 1)
    results.append(Result.timed(NAME, "reader path: read_header/iter_rows/chunk_rows + to_json, BytesIO", n, runs,
                                peak_rss_mb=mem.peak_mb, note=held).against(ref))

    log("splitter: Splitter.resume against moto S3 (mock_aws) + PostgreSQL, counting queue")
    results.append(_splitter_class(data, n, repeats if quick else 2, held).against(ref))
    return results, extra


def _splitter_class(data: bytes, n: int, repeats: int, held: str) -> Result:
    import boto3
    from leadimport_local.runner import FAKE_AWS_ENV
    from moto import mock_aws

    from leadimport.services.split_upload import SplitConfig, Splitter
    from leadimport.store.aws import UploadStore
    from leadimport.store.db import Database

    base_url, _ = server_urls()
    for k, v in FAKE_AWS_ENV.items():
        os.environ.setdefault(k, v)
    url = fresh_database(base_url, "bench_splitter")
    db = Database.from_url(url)
    runs: list[float] = []
    queue = CountingQueue()
    try:
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket="bench-uploads")
            key = "uploads/1/bench/upload.csv"
            s3.put_object(Bucket="bench-uploads", Key=key, Body=data)
            uploads = UploadStore("bench-uploads", s3)
            import time

            with PeakRss() as mem:
                for _ in range(repeats):
                    import_id = new_import(db, status="queued", upload_key=key)
                    queue = CountingQueue()
                    splitter = Splitter(db, uploads, queue, lambda _id: None, SplitConfig())  # type: ignore[arg-type]
                    t = time.perf_counter()
                    outcome = splitter.resume(import_id)
                    runs.append(time.perf_counter() - t)
                    assert outcome.status in ("processing", "completed"), outcome
                    assert queue.rows == n, (queue.rows, n)
                    db.run("DELETE FROM lead_imports WHERE id = CAST(:i AS uuid)", i=import_id)  # frees the key
    finally:
        db.close()
        drop_database(base_url, "bench_splitter")
    return Result.timed(NAME, "Splitter.resume: moto S3 in-process, Postgres checkpoints, queue stub", n, runs,
                        peak_rss_mb=mem.peak_mb,
                        note=f"{held}, and moto's copy of the object; {queue.messages:,} messages")
