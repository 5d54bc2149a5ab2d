"""Shared helpers: peak memory, timing, results, throwaway databases, benchmark data."""

from __future__ import annotations

import csv
import gc
import io
import json
import os
import re
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
REPO_ROOT = BENCH_DIR.parent

COMPANY_ID = 1
OWNER = ("schedule", 2)  # what `leadimport import --schedule 2` imports into
CHUNK_ROWS = 500  # template.yaml ChunkRows default

_T0 = time.perf_counter()


def log(msg: str) -> None:
    """Progress on stderr (stdout of a child is not parsed, but keep it quiet anyway)."""
    print(f"[bench {time.perf_counter() - _T0:7.1f}s] {msg}", file=sys.stderr, flush=True)


# ---- memory ------------------------------------------------------------------------------------------


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """VmHWM / VmRSS / VmPeak of a process in kB (empty when the process is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith(("VmHWM:", "VmRSS:", "VmPeak:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return out


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcStat:
    name: str
    ppid: int
    cpu_ticks: int  # utime + stime (fields 14 and 15 of /proc/<pid>/stat), in CLOCK_TICKS

    @property
    def cpu_seconds(self) -> float:
        return self.cpu_ticks / CLOCK_TICKS


def proc_stat(pid: int | str) -> ProcStat | None:
    """Name, parent and CPU time of a process from /proc/<pid>/stat (None when it is gone or not ours to read)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return ProcStat(stat[stat.find("(") + 1:stat.rfind(")")], int(fields[1]), int(fields[11]) + int(fields[12]))


def clear_tokens(tokens: Any) -> None:
    """Delete the keys a benchmark's TokenStore wrote under its own prefix."""
    client = tokens.client
    keys = list(client.scan_iter(f"{tokens.key_prefix}:*", count=5000))
    for i in range(0, len(keys), 5000):
        client.delete(*keys[i:i + 5000])


def reset_peak_rss() -> bool:
    """Reset this process's RSS high-water mark (Linux >= 4.0: `echo 5 > /proc/self/clear_refs`)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def maxrss_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kB on Linux


class PeakRss:
    """Peak RSS of this process during a `with` block (VmHWM after a reset; else the lifetime ru_maxrss)."""

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.exact = reset_peak_rss()
        self.base_kb = proc_status().get("VmRSS", 0)
        return self

    def __exit__(self, *exc: object) -> None:
        status = proc_status()
        self.peak_kb = status.get("VmHWM", 0) if self.exact else maxrss_kb()

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024

    @property
    def base_mb(self) -> float:
        return self.base_kb / 1024


# ---- timing and results ------------------------------------------------------------------------------


def repeat(fn: Callable[[], Any], times: int) -> tuple[list[float], Any]:
    """Run fn `times` times; (seconds of each run, the last return value)."""
    runs: list[float] = []
    value: Any = None
    for _ in range(times):
        gc.collect()
        t = time.perf_counter()
        value = fn()
        runs.append(time.perf_counter() - t)
    return runs, value


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


@dataclass
class Result:
    bench: str
    case: str
    rows: int | None = None
    seconds: float | None = None  # median of `runs`
    runs: list[float] = field(default_factory=list)
    rows_per_s: float | None = None
    peak_rss_mb: float | None = None
    ref: str | None = None  # the case this one is compared with (same benchmark, same run)
    ratio: float | None = None  # rows_per_s / ref's rows_per_s
    note: str = ""

    @classmethod
    def timed(cls, bench: str, case: str, rows: int, runs: list[float], **kw: Any) -> Result:
        sec = median(runs)
        return cls(bench, case, rows=rows, seconds=sec, runs=[round(r, 4) for r in runs],
                   rows_per_s=rows / sec if sec > 0 else None, **kw)

    def against(self, ref: Result) -> Result:
        self.ref = ref.case
        if self.rows_per_s and ref.rows_per_s:
            self.ratio = self.rows_per_s / ref.rows_per_s
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_child_result(path: str | None, results: list[Result], extra: dict[str, Any]) -> None:
    payload = {"results": [r.to_dict() for r in results], "extra": extra}
    if path:
        Path(path).write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    else:
        print(json.dumps(payload, indent=2, default=str))


# ---- databases ---------------------------------------------------------------------------------------


def server_urls() -> tuple[str, str]:
    """The PostgreSQL server and Redis that run.py started (or DATABASE_URL / REDIS_URL from the caller)."""
    db, rd = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not db or not rd:
        raise SystemExit("benchmarks: DATABASE_URL and REDIS_URL must be set (run through `python -m benchmarks.run`)")
    return db, rd


def database_url(base_url: str, name: str) -> str:
    u = urlparse(base_url)
    return urlunparse(u._replace(path="/" + name))


_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def fresh_database(base_url: str, name: str, *, seed: bool = True) -> str:
    """(Re)create database `name` on the server of `base_url`, migrated (and seeded with the demo data)."""
    from leadimport_local.runner import prepare_database

    from leadimport.store.db import Database

    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"bad database name {name!r}")
    admin = Database.from_url(database_url(base_url, "postgres"))
    try:
        admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.run(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    url = database_url(base_url, name)
    prepare_database(url, seed=seed)
    return url


def drop_database(base_url: str, name: str) -> None:
    from leadimport.store.db import Database

    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"bad database name {name!r}")
    admin = Database.from_url(database_url(base_url, "postgres"))
    try:
        admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


def new_import(db: Any, *, status: str = "processing", upload_key: str | None = None,
               options: Any = None) -> str:
    """An import row for OWNER of the demo company, ready for the worker (or, status queued, the splitter)."""
    from leadimport.imports import repository as repo
    from leadimport.options import ImportOptions, options_json

    import_id = str(uuid.uuid4())
    with db.transaction() as conn:
        created = repo.insert_import(conn, import_id=import_id, company_id=COMPANY_ID, name="benchmark", owner_type=OWNER[0],
                           owner_id=OWNER[1], options=options_json(options or ImportOptions()), status=status,
                           source="api", upload_key=upload_key or f"bench/{import_id}")
    if created is None:
        raise RuntimeError("the benchmark's import was not created (upload key already used?)")
    return import_id


def import_counts(db: Any, import_id: str) -> dict[str, Any]:
    rows = db.rows("SELECT status, processed_rows, created_leads, rejected_rows, rejections, chunks_done"
                   " FROM lead_imports WHERE id = CAST(:i AS uuid)", i=import_id)
    return rows[0] if rows else {}


# ---- data --------------------------------------------------------------------------------------------


def realistic(n: int) -> list[list[str]]:
    """The benchmark's realistic mix (demo_data.realistic_rows); the first k rows of n are those of k."""
    from leadimport_local.demo_data import realistic_rows

    return list(realistic_rows(n))


def csv_bytes(rows: Iterable[list[str]], header: list[str] | None = None) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    if header is not None:
        w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def realistic_file(workdir: Path, n: int) -> Path:
    """workdir/realistic-{n}.csv (header + n realistic rows), generated once per benchmark run."""
    from leadimport_local.demo_data import HEADER, realistic_rows

    path = workdir / f"realistic-{n}.csv"
    if not path.exists():
        t = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(HEADER)
            w.writerows(realistic_rows(n))
        tmp.rename(path)
        log(f"generated {path.name} ({path.stat().st_size / 1e6:,.1f} MB) in {time.perf_counter() - t:.1f}s")
    return path


def big_file(path: Path, target_bytes: int, block_rows: int = 20_000) -> Path:
    """A realistic file of about `target_bytes`, fast: one block of realistic rows repeated, each copy with
    its own lead numbers in the email column (so no two lines are equal)."""
    from leadimport_local.demo_data import HEADER, realistic_rows

    t = time.perf_counter()
    block = list(realistic_rows(block_rows))
    # Every line as head + row number + tail around the email's number, to vary it cheaply.
    parts: list[tuple[str, str]] = []
    for row in block:
        line = io.StringIO()
        csv.writer(line).writerow(row)
        text = line.getvalue()
        email = row[1]
        at = text.index(email)
        number_at = at + len("lead")
        number_end = number_at + len(email) - len("lead") - len("@example.com")
        parts.append((text[:number_at], text[number_end:]))
    written = 0
    row_no = 0
    with path.open("w", newline="", encoding="utf-8") as fh:
        header = ",".join(HEADER) + "\r\n"
        fh.write(header)
        written += len(header)
        while written < target_bytes:
            lines = []
            for head, tail in parts:
                row_no += 1
                lines.append(f"{head}{row_no}{tail}")
            text = "".join(lines)
            fh.write(text)
            written += len(text)
    log(f"generated {path.name} ({written / 1e6:,.0f} MB, {row_no:,} rows) in {time.perf_counter() - t:.1f}s")
    return path


def chunk_messages(import_id: str, rows: list[list[str]], chunk: int = CHUNK_ROWS) -> list[Any]:
    """ChunkMessages as the splitter would send them for a file with demo_data.HEADER."""
    from leadimport_local.demo_data import HEADER

    from leadimport.messages import ChunkMessage

    out = []
    for no, start in enumerate(range(0, len(rows), chunk)):
        group = rows[start:start + chunk]
        out.append(ChunkMessage(import_id=import_id, chunk_no=no, first_row=start + 1, source_columns=list(HEADER),
                                columns=list(HEADER),
                                rows=[(start + 1 + i, list(values)) for i, values in enumerate(group)]))
    return out


class CountingQueue:
    """A ChunkQueue stand-in: serializes every message (as ChunkQueue does) and counts; sends nothing."""

    def __init__(self) -> None:
        self.messages = 0
        self.rows = 0
        self.bytes = 0
        self.max_bytes = 0

    def send(self, chunks: Sequence[Any]) -> None:
        for c in chunks:
            body = c.to_json()
            n = len(body)
            self.messages += 1
            self.rows += c.row_count
            self.bytes += n
            if n > self.max_bytes:
                self.max_bytes = n


def quiet_environment() -> None:
    """What the CLI sets: no powertools INFO logs or metrics on stdout."""
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "leadimport")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LeadImportBench")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    import warnings

    warnings.filterwarnings("ignore", message="No application metrics to publish")


def fmt_rate(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}"


def fmt_num(v: float | None, digits: int = 1) -> str:
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def phonenumbers_pass(pairs: list[tuple[str, str]]) -> int:
    """phonenumbers' own parse + is_valid_number + format(E164) of each (raw, region): the benchmarks' reference
    for phone work. Returns how many are valid."""
    import phonenumbers

    e164, valid = phonenumbers.PhoneNumberFormat.E164, 0
    for raw, region in pairs:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            phonenumbers.format_number(number, e164)
            valid += 1
    return valid
