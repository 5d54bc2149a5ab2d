"""5. End to end: `leadimport import FILE --schedule 2 --workers <cores> --json` as a subprocess.

Sizes: 100k (warm-up) then 1M realistic rows; --quick: 20k. Each run gets its own LEADIMPORT_LOCAL_DIR
(a temp dir, deleted after) and no DATABASE_URL / REDIS_URL, so the CLI starts its own PostgreSQL and
Redis there, as a developer's first run would: wall time includes their start (~1-2 s), the moto server,
the upload, the split and the workers. The import's own time (started_at -> finished_at from --json)
is reported too.

While it runs, a poller samples every 0.2 s the process tree of the CLI plus the PostgreSQL it started
(found by its data dir) and keeps each process's VmHWM (peak RSS; exact even between samples). The
CLI's spawned children are named by start order (the pipeline starts the splitter first, then the
workers). Every 2 s it also reads the import's processed_rows from that PostgreSQL, to see whether
throughput drops as the tables grow (rate over the first vs the last 10% of rows).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CLOCK_TICKS,
    Result,
    log,
    median,
    phonenumbers_pass,
    proc_stat,
    proc_status,
    realistic_file,
)

NAME = "e2e"


def postgres_role(cmdline: str) -> str:
    """A PostgreSQL process's label by its role (its process title): the backends that run the statements,
    autovacuum, or the rest of its background (postmaster, WAL writer, checkpointer, I/O workers...)."""
    if cmdline.startswith("postgres: autovacuum worker"):
        return "postgres (autovacuum)"
    role = cmdline.removeprefix("postgres: ").split(" ")[0] if cmdline.startswith("postgres: ") else ""
    background = ("autovacuum", "walwriter", "checkpointer", "background", "io", "logical", "startup", "walsummarizer",
                  "archiver", "walsender", "walreceiver", "slotsync")
    if not role or role in background:
        return "postgres (background)"
    return "postgres (backends)"


class TreeMonitor:
    """Peak RSS per process of a process tree (plus processes whose command line contains `marker`)."""

    def __init__(self, root: int, marker: str):
        self.root = root
        self.marker = marker
        self.cmdlines: dict[int, str] = {}
        self.names: dict[int, str] = {}
        self.hwm_kb: dict[int, int] = {}
        self.cpu_ticks: dict[int, int] = {}  # utime + stime, last seen (a process's total at its last sample)
        self.max_total_rss_kb = 0
        self.postmaster_port: int | None = None

    def _cmdline(self, pid: int) -> str:
        if pid not in self.cmdlines:
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                raw = b""
            self.cmdlines[pid] = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        return self.cmdlines[pid]

    def sample(self) -> None:
        parent: dict[int, int] = {}
        ticks: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            stat = proc_stat(pid)
            if stat is None:
                continue
            parent[pid] = stat.ppid
            ticks[pid] = stat.cpu_ticks
            if pid not in self.names:
                self.names[pid] = stat.name
        # command lines are read once per pid (cached): cheap after the first sample
        roots = {self.root} | {pid for pid in parent if self.marker in self._cmdline(pid)}
        children: dict[int, list[int]] = {}
        for pid, ppid in parent.items():
            children.setdefault(ppid, []).append(pid)
        tree: set[int] = set()
        stack = [p for p in roots if p in parent]
        while stack:
            pid = stack.pop()
            if pid in tree:
                continue
            tree.add(pid)
            stack.extend(children.get(pid, []))
        total = 0
        for pid in tree:
            status = proc_status(pid)
            if not status:
                continue
            if self.names.get(pid) == "postgres" and not self.cmdlines.get(pid, "").startswith("postgres:"):
                # a PostgreSQL child shows the postmaster's command line until it names its role: read it again
                self.cmdlines.pop(pid, None)
            self._cmdline(pid)
            self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), status.get("VmHWM", 0))
            self.cpu_ticks[pid] = max(self.cpu_ticks.get(pid, 0), ticks.get(pid, 0))
            total += status.get("VmRSS", 0)
            if self.postmaster_port is None and self.marker in self.cmdlines[pid] and " -p " in self.cmdlines[pid]:
                with contextlib.suppress(ValueError, IndexError):
                    self.postmaster_port = int(self.cmdlines[pid].split(" -p ")[1].split()[0])
        self.max_total_rss_kb = max(self.max_total_rss_kb, total)

    def postmaster_pids(self) -> list[int]:
        return [pid for pid, cmd in self.cmdlines.items()
                if self.marker in cmd and " -D " in cmd and self.names.get(pid) == "postgres"]

    def labels(self) -> dict[int, str]:
        out: dict[int, str] = {}
        spawned = sorted(pid for pid in self.hwm_kb if "spawn_main" in self.cmdlines.get(pid, ""))
        for i, pid in enumerate(spawned):
            out[pid] = "splitter" if i == 0 else f"worker-{i}"
        for pid in self.hwm_kb:
            if pid in out:
                continue
            cmd = self.cmdlines.get(pid, "")
            name = self.names.get(pid, "?")
            if pid == self.root:
                out[pid] = "cli (+ moto server thread)"
            elif "resource_tracker" in cmd:
                out[pid] = "mp resource tracker"
            elif name == "postgres" or cmd.startswith("postgres"):
                out[pid] = postgres_role(cmd)
            elif "redis-server" in name or "redis-server" in cmd:
                out[pid] = "redis"
            else:
                out[pid] = name
        return out

    def summary(self) -> dict[str, Any]:
        by_label: dict[str, dict[str, Any]] = {}
        for pid, label in self.labels().items():
            mb = self.hwm_kb[pid] / 1024
            entry = by_label.setdefault(label, {"processes": 0, "peak_rss_mb": 0.0, "cpu_seconds": 0.0})
            entry["processes"] += 1
            entry["peak_rss_mb"] = round(max(entry["peak_rss_mb"], mb), 1)
            entry["cpu_seconds"] = round(entry["cpu_seconds"] + self.cpu_ticks.get(pid, 0) / CLOCK_TICKS, 1)
        return {"per_process": dict(sorted(by_label.items())),
                "max_total_rss_mb": round(self.max_total_rss_kb / 1024, 1)}


def _progress(port: int | None, conn: Any) -> tuple[Any, tuple[int, int, bool] | None]:
    """(connection, (processed_rows, rows split so far, split done)) from the CLI's own PostgreSQL, best effort."""
    if port is None:
        return conn, None
    try:
        if conn is None:
            from leadimport.store.db import ConnectionParams, connect

            conn = connect(ConnectionParams("127.0.0.1", port, "postgres", None, "postgres", False), timeout=2)
        rows = conn.run("SELECT processed_rows, split_next_row - 1, split_done FROM lead_imports"
                        " WHERE status IN ('splitting', 'processing', 'completed') ORDER BY created_at DESC LIMIT 1")
        return conn, ((rows[0][0], rows[0][1], rows[0][2]) if rows else None)
    except Exception:  # noqa: BLE001 - not up yet, or going away: try again later
        with contextlib.suppress(Exception):
            if conn is not None:
                conn.close()
        return None, None


def _rate_between(samples: list[tuple[float, int]], start: float, lo: int, hi: int) -> float | None:
    """rows/s between the moments processed_rows reached lo and hi (linear interpolation between samples);
    `start` is when processing started (processed_rows = 0)."""
    def when(target: int) -> float | None:
        prev = (start, 0)
        for t, done in samples:
            if t < start:
                continue
            if done >= target:
                if done == prev[1]:
                    return t
                return prev[0] + (t - prev[0]) * (target - prev[1]) / (done - prev[1])
            prev = (t, done)
        return None

    a = start if lo == 0 else when(lo)
    b = when(hi)
    if a is None or b is None or b <= a:
        return None
    return (hi - lo) / (b - a)


def _round(v: float | None) -> float | None:
    return None if v is None else round(v)


def _stop_local_servers(local: Path) -> None:
    """The CLI leaves the servers of its `.local` running for the next command: this run's folder has none."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["LEADIMPORT_LOCAL_DIR"] = str(local)
    subprocess.run([sys.executable, "-m", "leadimport_local.cli", "stop"], env=env, check=False,
                   stdout=subprocess.DEVNULL)


def run_cli(path: Path, rows: int, workdir: Path, workers: int, timeout: float) -> dict[str, Any]:
    local = Path(tempfile.mkdtemp(prefix="e2e-local-", dir=workdir))
    local.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["LEADIMPORT_LOCAL_DIR"] = str(local)
    out_path, err_path = local.parent / f"{local.name}.stdout", local.parent / f"{local.name}.stderr"
    cmd = [sys.executable, "-m", "leadimport_local.cli", "import", str(path), "--schedule", "2", "--workers",
           str(workers), "--json"]
    monitor: TreeMonitor | None = None
    samples: list[tuple[float, int]] = []
    progress: list[tuple[float, int, int, bool]] = []  # (t, processed, split so far, split done)
    conn = None
    timed_out = False
    with out_path.open("wb") as out, err_path.open("wb") as err:
        t0 = time.perf_counter()
        wall0 = time.time()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, start_new_session=True, cwd=workdir)
        monitor = TreeMonitor(proc.pid, str(local))
        last_progress = 0.0
        try:
            while proc.poll() is None:
                monitor.sample()
                now = time.perf_counter() - t0
                if now - last_progress >= 2.0:
                    last_progress = now
                    conn, got = _progress(monitor.postmaster_port, conn)
                    if got is not None:
                        samples.append((now, got[0]))
                        progress.append((now, got[0], got[1], got[2]))
                if now > timeout:
                    timed_out = True
                    break
                time.sleep(0.2)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                for pid in monitor.postmaster_pids():  # the CLI's PostgreSQL, if it was killed first
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGINT)
                time.sleep(1)
        wall = time.perf_counter() - t0
    stdout = out_path.read_text(errors="replace")
    stderr_tail = err_path.read_text(errors="replace")[-2000:]
    _stop_local_servers(local)
    shutil.rmtree(local, ignore_errors=True)
    out_path.unlink(missing_ok=True)
    err_path.unlink(missing_ok=True)

    result: dict[str, Any] = {"rows": rows, "wall_seconds": round(wall, 2), "exit_code": proc.returncode,
                              "timed_out": timed_out, "workers": workers, "memory": monitor.summary()}
    try:
        resource = json.loads(stdout)
    except ValueError:
        resource = {}
        result["stderr_tail"] = stderr_tail
    if resource:
        from datetime import datetime

        def ts(key: str) -> datetime | None:
            v = resource.get(key)
            return datetime.fromisoformat(v.replace("Z", "+00:00")) if v else None

        started, finished = ts("started_at"), ts("finished_at")
        result.update({k: resource.get(k) for k in ("status", "total_rows", "created_leads", "rejected_rows")})
        if started and finished:
            result["import_seconds"] = round((finished - started).total_seconds(), 2)
            samples.append((finished.timestamp() - wall0, rows))  # the end, exactly
            samples.sort()
    else:
        started = None
    if samples:
        # Processing starts when the split is claimed (started_at), else at the last sample still at 0.
        start = (started.timestamp() - wall0 if started is not None
                 else max((t for t, done in samples if done == 0), default=0.0))
        result["rate_first_10pct"] = _rate_between(samples, start, 0, rows // 10)
        result["rate_last_10pct"] = _rate_between(samples, start, rows - rows // 10, rows)
        result["rate_by_decile"] = [_round(_rate_between(samples, start, rows * i // 10, rows * (i + 1) // 10))
                                    for i in range(10)]
        result["progress_samples"] = len(samples)
        split_end = next((t for t, _, _, done in progress if done), None)
        if split_end is not None:
            result["split_finished_after_s"] = round(split_end - start, 1)
        # rows split (sent to SQS) but not yet processed: the chunk queue's depth, in rows
        result["max_backlog_rows"] = max((split - done for _, done, split, _ in progress), default=0)
    return result


def run(*, quick: bool, workdir: Path) -> tuple[list[Result], dict[str, Any]]:
    workers = os.cpu_count() or 2
    sizes = [20_000] if quick else [100_000, 1_000_000]
    timeout = float(os.environ.get("BENCH_E2E_TIMEOUT", "600" if quick else "1800"))
    results: list[Result] = []
    extra: dict[str, Any] = {"workers": workers, "runs": {}}
    for n in sizes:
        path = realistic_file(workdir, n)
        label = f"{n // 1000}k" if n < 1_000_000 else f"{n // 1_000_000}M"
        log(f"e2e: leadimport import {path.name} --workers {workers} (timeout {timeout:.0f}s)")
        got = run_cli(path, n, workdir, workers, timeout)
        extra["runs"][label] = got
        ok = got.get("status") == "completed" and got.get("total_rows") == n
        mem = got["memory"]["per_process"]
        python_peak = max((v["peak_rss_mb"] for k, v in mem.items()
                           if k.startswith(("cli", "splitter", "worker"))), default=None)
        case = f"leadimport import, {label} rows, --workers {workers}" + (" (warm-up)" if n == 100_000 else "")
        r = Result.timed(NAME, case, n, [got["wall_seconds"]], peak_rss_mb=python_peak)
        notes = []
        if not ok:
            notes.append(f"NOT COMPLETED (status {got.get('status')}, exit {got['exit_code']}"
                         + (", timed out" if got["timed_out"] else "") + ")")
        if got.get("import_seconds"):
            notes.append(f"import alone {got['import_seconds']:.1f}s = {n / got['import_seconds']:,.0f} rows/s")
        if got.get("rate_first_10pct") and got.get("rate_last_10pct"):
            notes.append(f"rate first 10% {got['rate_first_10pct']:,.0f} -> last 10% {got['rate_last_10pct']:,.0f} rows/s")
        if got.get("split_finished_after_s") is not None:
            notes.append(f"split done after {got['split_finished_after_s']:,.0f}s; max backlog "
                         f"{got.get('max_backlog_rows', 0):,} rows")
        notes.append("peak RSS = max of CLI/splitter/workers")
        if n == sizes[-1] and ok:
            workers_us = sum(v.get("cpu_seconds", 0.0) for k, v in mem.items() if k.startswith("worker")) * 1e6 / n
            plain_us = phonenumbers_us_per_row(path)
            extra["workers_us_per_row"], extra["phonenumbers_us_per_row"] = workers_us, plain_us
            notes.append(f"workers {workers_us:,.1f} us of CPU per row = {workers_us / plain_us:.2f} x phonenumbers' own "
                         f"parse + validate + format alone ({plain_us:,.1f} us per row, this file's first 100k phones, "
                         "same run)")
        r.note = "; ".join(notes)
        results.append(r)
        log(f"e2e: {label}: {got['wall_seconds']:.1f}s wall, status {got.get('status')}")
    return results, extra


def phonenumbers_us_per_row(path: Path, rows: int = 100_000) -> float:
    """CPU per row of phonenumbers alone on the file's phones: parse in the row's country (US when none),
    is_valid_number, format as E.164, what a worker would do per row with no importer around it."""
    import csv
    import itertools

    from leadimport.rules.phone import region_for_country

    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        phone_at, country_at = header.index("caller_id"), header.index("country")
        pairs = [(r[phone_at], region_for_country(r[country_at]) or "US") for r in itertools.islice(reader, rows)]

    def one_pass(items: list[tuple[str, str]]) -> float:
        started = time.process_time()
        phonenumbers_pass(items)
        return time.process_time() - started

    one_pass(pairs[:5_000])  # phonenumbers loads each region's metadata on first use: not per row
    return median([one_pass(pairs) for _ in range(3)]) * 1e6 / len(pairs)
