"""3. The worker alone: ChunkImporter.import_chunk in one process over 100k realistic rows (--quick 20k),
already chunked (500 rows per ChunkMessage, built beforehand), against real PostgreSQL and Redis.

Two runs, each into a freshly created, migrated and seeded database (so both start from the same state):

* timed: rows/s, peak RSS, and a low-overhead time split (wrappers around PhoneNormalizer.normalize,
  pg8000 Connection.run, TokenStore.stamp; everything else is the rest), SQL time per statement (by the
  function of leadimport.store.chunks / db that ran it), and chunk latency at the start vs the end of
  the run (growth means a per-chunk cost that grows with the tables);
* profiled: the same under cProfile; shares by the cumulative time of the same functions, and the
  functions with the most own time. cProfile slows Python code far more than waiting on sockets, so
  its shares overstate the Python parts: both splits are reported.

Then, with the tables as the timed run left them, one more chunk with PostgreSQL's auto_explain (ANALYZE,
BUFFERS, triggers): every statement's plan, whatever SQL the product runs today, in
benchmarks/out/worker_explain.txt, with a summary (duration, rows removed by filters, rows hashed, FK time).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CHUNK_ROWS,
    OUT_DIR,
    PeakRss,
    Result,
    chunk_messages,
    clear_tokens,
    drop_database,
    fresh_database,
    import_counts,
    log,
    median,
    new_import,
    quiet_environment,
    realistic,
    server_urls,
)

NAME = "worker"


class _Split:
    """Wall time inside normalize / Connection.run / TokenStore.stamp, by monkeypatching (undone by close())."""

    def __init__(self) -> None:
        import pg8000.native

        from leadimport.rules.phone import PhoneNormalizer
        from leadimport.store.tokens import TokenStore

        self.phone = 0.0
        self.sql = 0.0
        self.redis = 0.0
        self.sql_by: dict[str, float] = defaultdict(float)
        self.sql_calls: dict[str, int] = defaultdict(int)
        self.plans: dict[str, list[str]] | None = None  # auto_explain plans per caller, when set
        self.raw_plans: list[str] = []
        self.sql_keys: dict[str, str] = {}  # normalized SQL prefix -> caller
        self._undo: list[tuple[Any, str, Any]] = []
        perf = time.perf_counter
        getframe = sys._getframe
        split = self

        normalize = PhoneNormalizer.normalize

        def timed_normalize(self: Any, raw: Any, country: Any = None) -> Any:
            t = perf()
            try:
                return normalize(self, raw, country)
            finally:
                split.phone += perf() - t

        run = pg8000.native.Connection.run

        def timed_run(self: Any, sql: str, stream: Any = None, types: Any = None, **params: Any) -> Any:
            if sql in ("BEGIN", "COMMIT", "ROLLBACK"):
                caller = "BEGIN/COMMIT"
            else:
                frame = getframe(1)
                if frame.f_code.co_filename.endswith("store/db.py"):  # Database.run / rows: name their caller
                    frame = frame.f_back or frame
                caller = frame.f_code.co_name
                if frame.f_code.co_filename.endswith("services/import_chunk.py"):
                    caller = f"{caller}: {' '.join(sql.split()[:3])}"
            if split.plans is not None:
                split.sql_keys[_sql_key(sql)] = caller
                self.notices.clear()
            t = perf()
            try:
                return run(self, sql, stream=stream, types=types, **params)
            finally:
                dt = perf() - t
                split.sql += dt
                split.sql_by[caller] += dt
                split.sql_calls[caller] += 1
                if split.plans is not None:
                    # auto_explain reports a statement when its portal closes, which may be during the next
                    # statement's round trip: plans are matched to callers by their query text, later.
                    for notice in self.notices:
                        text = notice.get(b"M", b"").decode(errors="replace")
                        if "Query Text" in text:
                            split.raw_plans.append(text)
                    self.notices.clear()

        stamp = TokenStore.stamp

        def timed_stamp(self: Any, stamps: Any, batch: int = 1000) -> Any:
            t = perf()
            try:
                return stamp(self, stamps, batch)
            finally:
                split.redis += perf() - t

        for owner, attr, new in ((PhoneNormalizer, "normalize", timed_normalize),
                                 (pg8000.native.Connection, "run", timed_run),
                                 (TokenStore, "stamp", timed_stamp)):
            self._undo.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, new)

    def close(self) -> None:
        for owner, attr, old in reversed(self._undo):
            setattr(owner, attr, old)
        self._undo = []


def _setup(rows: list[list[str]], db_name: str) -> tuple[Any, Any, Any, str, list[Any], str]:
    from leadimport.services.import_chunk import ChunkImporter
    from leadimport.store.db import Database
    from leadimport.store.tokens import TokenStore

    base_url, redis_url = server_urls()
    url = fresh_database(base_url, db_name)
    db = Database.from_url(url)
    tokens = TokenStore(redis_url, key_prefix=f"bench-{uuid.uuid4().hex[:8]}")
    import_id = new_import(db)
    messages = chunk_messages(import_id, rows)
    return db, tokens, ChunkImporter(db, tokens), import_id, messages, url


def run(*, quick: bool, workdir: Path) -> tuple[list[Result], dict[str, Any]]:
    quiet_environment()
    n = 20_000 if quick else 100_000
    base_url, _ = server_urls()
    rows = realistic(n + 500)  # the last chunk is kept for the EXPLAIN after the timed run
    extra_rows, rows = rows[n:], rows[:n]
    results: list[Result] = []
    extra: dict[str, Any] = {"rows": n}

    # ---- timed run ------------------------------------------------------------------------------------
    log(f"worker: timed run over {n:,} rows")
    db, tokens, importer, import_id, messages, url = _setup(rows, "bench_worker_timed")
    split = _Split()
    chunk_ms: list[float] = []
    sql_per_chunk: list[dict[str, float]] = []  # cumulative SQL seconds per caller after each chunk
    try:
        with PeakRss() as mem:
            t0 = time.perf_counter()
            for m in messages:
                t = time.perf_counter()
                importer.import_chunk(m)
                chunk_ms.append((time.perf_counter() - t) * 1000)
                sql_per_chunk.append(dict(split.sql_by))
            total = time.perf_counter() - t0
    finally:
        split.close()
    counts = import_counts(db, import_id)
    assert counts.get("processed_rows") == n, counts
    other = total - split.phone - split.sql - split.redis
    timed = Result.timed(NAME, "ChunkImporter.import_chunk, 1 process (timed)", n, [total],
                         peak_rss_mb=mem.peak_mb,
                         note=f"created {counts['created_leads']:,}, rejected {counts['rejected_rows']:,}; "
                              f"RSS before {mem.base_mb:,.0f} MiB (messages built)")
    results.append(timed)
    tenth = max(len(chunk_ms) // 10, 1)
    extra["timed"] = {
        "seconds": round(total, 2),
        "split_pct": {"phone (PhoneNormalizer.normalize)": _pct(split.phone, total),
                      "SQL (pg8000 Connection.run)": _pct(split.sql, total),
                      "Redis (TokenStore.stamp)": _pct(split.redis, total),
                      "everything else": _pct(other, total)},
        "split_seconds": {"phone": round(split.phone, 2), "sql": round(split.sql, 2), "redis": round(split.redis, 2),
                          "other": round(other, 2)},
        "sql_by_statement": {k: {"seconds": round(v, 3), "pct_of_total": _pct(v, total), "calls": split.sql_calls[k],
                                 "ms_per_call": round(v * 1000 / max(split.sql_calls[k], 1), 2)}
                             for k, v in sorted(split.sql_by.items(), key=lambda kv: -kv[1])},
        "sql_ms_per_chunk_first_vs_last_10pct": _growth(sql_per_chunk, tenth),
        "chunk_ms_first_10pct": round(median(chunk_ms[:tenth]), 1),
        "chunk_ms_last_10pct": round(median(chunk_ms[-tenth:]), 1),
        "counts": {k: v for k, v in counts.items() if k != "rejections"},
        "rejections": counts.get("rejections"),
    }
    extra["timed"]["chunk_growth"] = round(extra["timed"]["chunk_ms_last_10pct"]
                                           / max(extra["timed"]["chunk_ms_first_10pct"], 0.001), 2)

    log("worker: one more chunk with auto_explain (ANALYZE)")
    try:
        extra["explain"] = _explain(db, importer, import_id, extra_rows, n)
    except Exception as exc:  # noqa: BLE001 - a diagnostic must not fail the benchmark
        extra["explain"] = {"error": repr(exc)}
    clear_tokens(tokens)
    db.close()
    drop_database(base_url, "bench_worker_timed")

    # ---- profiled run ---------------------------------------------------------------------------------
    log(f"worker: cProfile run over {n:,} rows")
    db, tokens, importer, import_id, messages, url = _setup(rows, "bench_worker_prof")
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for m in messages:
        importer.import_chunk(m)
    prof.disable()
    total_prof = time.perf_counter() - t0
    results.append(Result.timed(NAME, "ChunkImporter.import_chunk under cProfile", n, [total_prof],
                                note="profiler overhead included; for the shares only").against(timed))
    extra["profile"] = _attribute(prof, total_prof)
    clear_tokens(tokens)
    db.close()
    drop_database(base_url, "bench_worker_prof")
    return results, extra


def _growth(snapshots: list[dict[str, float]], tenth: int) -> dict[str, list[float]]:
    """Per caller: mean SQL ms per chunk over the first and the last 10% of chunks (from cumulative snapshots)."""
    if len(snapshots) < 2 * tenth + 1:
        return {}
    first_end, last_start, last_end = snapshots[tenth - 1], snapshots[-tenth - 1], snapshots[-1]
    out = {}
    for caller in last_end:
        first = first_end.get(caller, 0.0) * 1000 / tenth
        last = (last_end[caller] - last_start.get(caller, 0.0)) * 1000 / tenth
        out[caller] = [round(first, 2), round(last, 2)]
    return dict(sorted(out.items(), key=lambda kv: -kv[1][1])[:8])


_PARAM = re.compile(r"(?<!:):[A-Za-z_]\w*|\$\d+")


def _sql_key(sql: str) -> str:
    """SQL with parameters (pg8000's :name, PostgreSQL's $n) blanked and whitespace collapsed; 120 chars."""
    return " ".join(_PARAM.sub("?", sql).split())[:120]


def _pct(part: float, total: float) -> float:
    return round(100 * part / total, 1) if total else 0.0


def _attribute(prof: cProfile.Profile, total: float) -> dict[str, Any]:
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]

    def cum(path_part: str, func: str) -> float:
        return sum(v[3] for (file, _line, name), v in raw.items() if name == func and file.endswith(path_part))

    phone = cum("rules/phone.py", "normalize")
    sql = cum("pg8000/native.py", "run")
    redis = cum("store/tokens.py", "stamp")
    chunk_total = cum("services/import_chunk.py", "import_chunk") or total
    other = chunk_total - phone - sql - redis

    def short(key: tuple[str, int, str]) -> str:
        file, line, name = key
        file = re.sub(r"^.*/site-packages/", "", file)
        file = re.sub(r"^.*/layers/core/", "", file)
        file = re.sub(r"^.*/lib/python3\.\d+/", "", file)
        return f"{file}:{line}({name})" if line else name

    by_own = sorted(raw.items(), key=lambda kv: -kv[1][2])[:20]
    ours = [(k, v) for k, v in raw.items() if "leadimport" in k[0] and k[2] != "import_chunk"]
    by_cum = sorted(ours, key=lambda kv: -kv[1][3])[:20]
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(60)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "worker_profile.txt").write_text(text.getvalue(), encoding="utf-8")
    return {
        "seconds": round(chunk_total, 2),
        "split_pct": {"phone (PhoneNormalizer.normalize)": _pct(phone, chunk_total),
                      "SQL (pg8000 Connection.run)": _pct(sql, chunk_total),
                      "Redis (TokenStore.stamp)": _pct(redis, chunk_total),
                      "everything else": _pct(other, chunk_total)},
        "top_own_time": [{"function": short(k), "own_pct": _pct(v[2], chunk_total), "calls": v[1]}
                         for k, v in by_own],
        "top_cumulative_leadimport": [{"function": short(k), "cum_pct": _pct(v[3], chunk_total), "calls": v[1]}
                                      for k, v in by_cum],
        "full_profile": str(OUT_DIR / "worker_profile.txt"),
    }


_ARRAY = re.compile(r"'\{[^}]{200,}\}'|\[\{.{200,}?\}\]")


def _explain(db: Any, importer: Any, import_id: str, extra_rows: list[list[str]], first_row: int) -> dict[str, Any]:
    """One more chunk with auto_explain (ANALYZE, BUFFERS, triggers) on: the plans come back as notices and are
    attributed to the leadimport function that ran each statement. Whatever SQL the product runs today."""
    from leadimport_local.demo_data import HEADER

    from leadimport.messages import ChunkMessage

    msg = ChunkMessage(import_id=import_id, chunk_no=first_row // CHUNK_ROWS + 1, first_row=first_row + 1,
                       source_columns=list(HEADER), columns=list(HEADER),
                       rows=[(first_row + 1 + i, list(v)) for i, v in enumerate(extra_rows)])
    conn = db.connection()
    for stmt in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0", "SET auto_explain.log_analyze = on",
                 "SET auto_explain.log_buffers = on", "SET auto_explain.log_triggers = on",
                 "SET auto_explain.log_level = notice", "SET client_min_messages = notice"):
        conn.run(stmt)
    split = _Split()
    split.plans = {}
    try:
        importer.import_chunk(msg)
    finally:
        split.close()
        conn.run("SET auto_explain.log_min_duration = -1")
        conn.run("RESET client_min_messages")
    for text in split.raw_plans:
        query = _sql_key(text.split("Query Text:", 1)[1])
        caller = next((c for key, c in split.sql_keys.items() if query.startswith(key[:100])), "unmatched")
        split.plans.setdefault(caller, []).append(text)
    out: dict[str, Any] = {}
    lines: list[str] = []
    for name, plans in split.plans.items():
        for text in plans:
            text = "\n".join(
                "Query Parameters: (omitted)" if line.startswith("Query Parameters") else
                (line if len(line) <= 300 else line[:300] + " ...") for line in _ARRAY.sub("'{...}'", text).splitlines())
            lines += [f"===== {name} (chunk after {first_row:,} rows)", text, ""]
            ms = re.search(r"duration: ([\d.]+) ms", text)
            removed = [int(float(x)) for x in re.findall(r"Rows Removed by Filter: ([\d.]+)", text)]
            hashed = [int(float(x)) for x in re.findall(r"->  Hash .*?actual time=[\d.]+\.\.[\d.]+ rows=([\d.]+)", text)]
            triggers = sum(float(x) for x in re.findall(r"Trigger for constraint .*?time=([\d.]+)", text))
            entry = out.setdefault(name, {"execution_ms": 0.0, "max_rows_removed_by_filter": 0, "max_hash_rows": 0,
                                          "fk_trigger_ms": 0.0})
            entry["execution_ms"] = round(entry["execution_ms"] + (float(ms.group(1)) if ms else 0.0), 2)
            entry["max_rows_removed_by_filter"] = max([entry["max_rows_removed_by_filter"], *removed])
            entry["max_hash_rows"] = max([entry["max_hash_rows"], *hashed])
            entry["fk_trigger_ms"] = round(entry["fk_trigger_ms"] + triggers, 2)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "worker_explain.txt").write_text("\n".join(lines), encoding="utf-8")
    top = dict(sorted(out.items(), key=lambda kv: -kv[1]["execution_ms"])[:6])
    top["file"] = str(OUT_DIR / "worker_explain.txt")
    return top
