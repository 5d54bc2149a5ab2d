"""How long small CLI commands take, as a user runs them: `.venv/bin/leadimport ...` in a process of its own.

Reference, same run: `python -c 'import leadimport'` (the interpreter and the core package, nothing else).
The commands run on a `.local` of their own (LEADIMPORT_LOCAL_DIR in the work dir, no DATABASE_URL /
REDIS_URL): the first one starts its PostgreSQL and Redis and creates the database ("cold"); the others
attach to them ("warm", what a user sees from the second command on). The servers are stopped at the end.

Each warm command runs `repeats` times; the median is reported with each run's wall time. The ratio is the
command's wall time over the reference's (lower is better).
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.common import Result, log

TARGET_SECONDS = 2.0  # "about a second or two on a quiet machine"


def _env(local: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["LEADIMPORT_LOCAL_DIR"] = str(local)
    return env


def _cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """(wall seconds, CPU seconds of the command's process and its waited-for children, the result). The CPU
    time moves less than the wall time when other work shares the machine; servers the command started are not
    its children once they run in their own session, so their CPU is not counted."""
    cpu, t = _cpu_of_children(), time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=900)
    return time.perf_counter() - t, _cpu_of_children() - cpu, done


def run(*, quick: bool, workdir: Path) -> tuple[list[Result], dict[str, Any]]:
    repeats = 3 if quick else 5
    local = Path(tempfile.mkdtemp(prefix="cli-local-", dir=workdir))
    local.chmod(0o755)
    env = _env(local)
    cli = [sys.executable, "-m", "leadimport_local.cli"]
    csv_file = workdir / "one-lead.csv"
    csv_file.write_text("caller_id,interest\n+19518761336,cars\n", encoding="utf-8")
    results: list[Result] = []
    extra: dict[str, Any] = {"repeats": repeats, "target_seconds": TARGET_SECONDS}

    ref = [_timed([sys.executable, "-c", "import leadimport"], env, workdir) for _ in range(repeats)]
    ref_runs = [r[0] for r in ref]
    reference = Result("cli", "python -c 'import leadimport'", rows=0, seconds=median(ref_runs),
                       runs=[round(r, 4) for r in ref_runs], note=f"CPU {median(r[1] for r in ref):.2f} s")
    results.append(reference)

    def measure(case: str, argv: list[str], times: int, note: str = "") -> subprocess.CompletedProcess[str]:
        runs: list[float] = []
        cpus: list[float] = []
        done: subprocess.CompletedProcess[str] | None = None
        for _ in range(times):
            seconds, cpu, done = _timed(cli + argv, env, workdir)
            if done.returncode != 0:
                raise RuntimeError(f"`leadimport {' '.join(argv)}` exited {done.returncode}: {done.stderr[-500:]}")
            runs.append(seconds)
            cpus.append(cpu)
        sec = median(runs)
        cpu_note = f"CPU {median(cpus):.2f} s" + (f"; {note}" if note else "")
        results.append(Result("cli", case, rows=0, seconds=sec, runs=[round(r, 4) for r in runs],
                              ref=reference.case, ratio=sec / reference.seconds if reference.seconds else None,
                              note=cpu_note))
        log(f"{case}: {sec:.2f} s wall, {median(cpus):.2f} s CPU (runs {', '.join(f'{r:.2f}' for r in runs)})")
        assert done is not None
        return done

    try:
        measure("owners, cold (starts PostgreSQL + Redis, creates the database)", ["owners"], 1,
                "once: the first command on a new .local")
        imported = measure("import of a 1-row file", ["import", str(csv_file), "--schedule", "1", "--json"], repeats)
        import json

        import_id = json.loads(imported.stdout)["id"]
        measure("status ID", ["status", import_id], repeats)
        measure("tokens --schedule 1 PHONE", ["tokens", "--schedule", "1", "+19518761336"], repeats)
        measure("owners", ["owners"], repeats)
        measure("list", ["list"], repeats)
        measure("errors ID", ["errors", import_id], repeats)
    finally:
        stopped = subprocess.run(cli + ["stop"], env=env, cwd=workdir, capture_output=True, text=True, check=False)
        extra["servers_stopped"] = stopped.stdout.strip() or stopped.stderr.strip()
    warm = results[2:]
    extra["slowest_warm_seconds"] = max(r.seconds or 0 for r in warm)
    extra["warm_within_target"] = all((r.seconds or 0) <= TARGET_SECONDS for r in warm)
    return results, extra
