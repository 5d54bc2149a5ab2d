"""6. Where each lead's CPU goes, and the floor under it: the worker over the same rows, once as shipped
and once with each part of the write path taken out, in a throwaway database (never the product's code
path: the parts are removed by this benchmark only).

Why it exists: the targets ask for 1M rows in 60 s on 2 cores, i.e. at most 120 us of CPU per row for
everything (splitter, queue, worker, PostgreSQL, Redis). This benchmark measures, per row, the CPU of the
worker process and of its PostgreSQL backend (utime + stime from /proc, so it depends less on what else
the machine is doing than wall time), for:

* `product`: `ChunkImporter.import_chunk` as shipped;
* `- tenant checks`: the statement-level tenant checks of the three tables written per lead dropped (leads ->
  schedule/offer/contact/traffic source, enrollments -> lead/schedule, contacts -> company; migration 0010,
  which replaced seven per-row foreign keys);
* `- enrollments`: no schedule_enrollments row per lead;
* `- phone locks`: no per-(company, phone) advisory locks;
* (no `- in-file claims` variant since 2026-12-04: a row that creates a lead holds its phone by that lead, so
  over these rows, one per phone, the claims cost only the lead statement's look for a recorded claim, which no
  statement skip removes);
* `floor`: all of the above, and no rejection rows: what is left is the facts query (it gives the contact
  ids), the contact insert, the lead insert, the counters and the tokens: the least this design does per row.

Each variant's statements are skipped, or a parameter overridden, by matching their SQL; every removal must
change something at least once in each run, or the benchmark fails (the SQL changed: the variant would
silently measure the product).
Cases run interleaved (product, variants, product again, ...) and report medians.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Result,
    chunk_messages,
    clear_tokens,
    drop_database,
    fresh_database,
    log,
    median,
    new_import,
    proc_stat,
    quiet_environment,
    realistic,
    server_urls,
)

NAME = "floor"
DB_NAME = "bench_floor"

# The statement-level tenant checks on the tables written per lead (migration 0010; they replaced the
# per-row foreign keys of migration 0001): table -> triggers.
TENANT_CHECKS = {
    "leads": ["leads_parents_on_insert", "leads_parents_on_update"],
    "schedule_enrollments": ["enrollments_parents_on_insert", "enrollments_parents_on_update"],
    "contacts": ["contacts_company_on_insert", "contacts_company_on_update"],
}

# Parameter overrides: name -> (a fragment of the SQL, the parameter, the value it gets instead). The
# enrollments are written by the lead insert itself, from the `enroll` parameter: an empty list enrolls none.
OVERRIDES: dict[str, tuple[str, str, Any]] = {
    "enrollments": ("INSERT INTO schedule_enrollments", "enroll", "[]"),
}

# Statement skips: name -> (fragments of the SQL to skip (any), what the skipped call returns).
SKIPS: dict[str, tuple[tuple[str, ...], Any]] = {
    "locks": (("pg_advisory_xact_lock",), [[0]]),
    "rejections": (("INSERT INTO lead_import_rejections",), []),
}

VARIANTS: dict[str, tuple[bool, list[str]]] = {  # case -> (drop tenant checks, statements skipped)
    "product": (False, []),
    "- tenant checks": (True, []),
    "- enrollments": (False, ["enrollments"]),
    "- phone locks": (False, ["locks"]),
    # the facts query stays: it gives the contact ids (new contacts are plain inserts, without an upsert)
    "floor": (True, ["enrollments", "locks", "rejections"]),
}


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of a PostgreSQL backend, or None when it is not a local process (a remote DATABASE_URL,
    or a server in another pid namespace: the pid then names nothing, or something else, here)."""
    stat = proc_stat(pid)
    return stat.cpu_seconds if stat is not None and stat.name == "postgres" else None


def _skipping(skips: list[str]) -> tuple[Callable[[], None], dict[str, int]]:
    """Make pg8000's Connection.run skip the statements (SKIPS) or override the parameters (OVERRIDES) named
    in `skips`; returns (undo, matches per name)."""
    import pg8000.native

    original = pg8000.native.Connection.run
    matched = {name: 0 for name in skips}
    skipped = [(name, *SKIPS[name]) for name in skips if name in SKIPS]
    overridden = [(name, *OVERRIDES[name]) for name in skips if name in OVERRIDES]
    unknown = set(skips) - set(SKIPS) - set(OVERRIDES)
    if unknown:
        raise ValueError(f"unknown part(s) {sorted(unknown)}")

    def run(self: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
        for name, fragments, returned in skipped:
            if any(f in sql for f in fragments):
                matched[name] += 1
                return returned
        for name, fragment, param, value in overridden:
            if fragment in sql and param in kwargs and kwargs[param] != value:  # a no-op override is no match
                matched[name] += 1
                kwargs[param] = value
        return original(self, sql, *args, **kwargs)

    pg8000.native.Connection.run = run  # type: ignore[method-assign]

    def undo() -> None:
        pg8000.native.Connection.run = original  # type: ignore[method-assign]

    return undo, matched


def _one(case: str, rows: list[list[str]], base_url: str, redis_url: str) -> dict[str, float | None]:
    from leadimport.services.import_chunk import ChunkImporter
    from leadimport.store.db import Database
    from leadimport.store.tokens import TokenStore

    drop_fks, skips = VARIANTS[case]
    url = fresh_database(base_url, DB_NAME)
    db = Database.from_url(url)
    tokens = TokenStore(redis_url, key_prefix=f"bench-floor-{uuid.uuid4().hex[:8]}")
    try:
        if drop_fks:
            for table, names in TENANT_CHECKS.items():
                for trigger in names:
                    db.run(f"DROP TRIGGER {trigger} ON {table}")  # constants above, not input
        import_id = new_import(db)
        messages = chunk_messages(import_id, rows)
        importer = ChunkImporter(db, tokens)
        undo, matched = _skipping(skips)
        try:
            importer.import_chunk(messages[0])  # warm: connection, caches, first regions
            with db.transaction() as conn:
                backend = int(conn.run("SELECT pg_backend_pid()")[0][0])
            pg0, me0, t0 = _cpu_seconds(backend), time.process_time(), time.perf_counter()
            for m in messages[1:]:
                importer.import_chunk(m)
            wall = time.perf_counter() - t0
            pg1, me1 = _cpu_seconds(backend), time.process_time()
            with db.transaction() as conn:
                if int(conn.run("SELECT pg_backend_pid()")[0][0]) != backend:  # reconnected: not one backend's CPU
                    pg0 = pg1 = None
        finally:
            undo()
        missing = [name for name, n in matched.items() if n == 0]
        if missing:
            raise RuntimeError(f"variant {case!r}: no statement matched the skip(s) {missing}; the SQL changed")
        enrolled = int(db.run("SELECT count(*) FROM schedule_enrollments")[0][0])
        if ("enrollments" in skips) != (enrolled == 0):
            raise RuntimeError(f"variant {case!r}: {enrolled} enrollments written; the product must enroll and "
                               "the variants without enrollments must not")
        n = sum(len(m.rows) + len(m.rejected) for m in messages[1:])
        return {"rows": n, "wall": wall, "worker_cpu": me1 - me0,
                "pg_cpu": None if pg0 is None or pg1 is None else pg1 - pg0}
    finally:
        clear_tokens(tokens)
        db.close()
        drop_database(base_url, DB_NAME)


def _one_row_per_phone(rows: list[list[str]]) -> list[list[str]]:
    """The realistic rows without in-file duplicates (bad phones kept): every variant gets the same rows, none of
    them decided by a claim."""
    from leadimport.rules.phone import PhoneNormalizer

    normalizer, seen, out = PhoneNormalizer(), set(), []
    for row in rows:
        e164 = normalizer.normalize(row[0], row[3] or None).e164
        if e164 is None or e164 not in seen:
            seen.add(e164)
            out.append(row)
    return out


def run(*, quick: bool, workdir: Path) -> tuple[list[Result], dict[str, Any]]:
    quiet_environment()
    n = 5_000 if quick else 30_000
    rounds = 1 if quick else 3
    base_url, redis_url = server_urls()
    rows = _one_row_per_phone(realistic(n + 2_000))[:n + 500]  # the first chunk warms up and is not measured
    measured: dict[str, list[dict[str, float | None]]] = {case: [] for case in VARIANTS}
    for r in range(rounds):
        for case in VARIANTS:
            log(f"floor: round {r + 1}/{rounds}, {case} over {n:,} rows")
            measured[case].append(_one(case, rows, base_url, redis_url))

    def per_row_us(case: str, key: str) -> float | None:
        per_row: list[float] = []
        for m in measured[case]:
            value = m[key]
            if value is None:
                return None
            per_row.append(value / float(m["rows"] or 1))
        return round(median(per_row) * 1e6, 1)

    results: list[Result] = []
    cpu: dict[str, dict[str, float | None]] = {}
    product: Result | None = None
    for case in VARIANTS:
        rows_n = int(measured[case][0]["rows"] or 0)
        res = Result.timed(NAME, case, rows_n, [float(m["wall"] or 0) for m in measured[case]])
        pg, worker = per_row_us(case, "pg_cpu"), per_row_us(case, "worker_cpu")
        cpu[case] = {"pg_us": pg, "worker_us": worker,
                     "total_us": None if pg is None or worker is None else round(pg + worker, 1)}
        res.note = (f"CPU per row: PostgreSQL {pg if pg is not None else '?'} us, worker {worker} us"
                    if worker is not None else "")
        if product is None:
            product = res
        else:
            res.against(product)
        results.append(res)
    extra: dict[str, Any] = {"rows": n, "rounds": rounds, "cpu_per_row_us": cpu,
                             "tenant_checks": TENANT_CHECKS, "skips": {k: v[0] for k, v in SKIPS.items()},
                             "overrides": {k: f"{v[0]}: {v[1]} = {v[2]}" for k, v in OVERRIDES.items()}}
    return results, extra
