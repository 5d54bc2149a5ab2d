"""Run the benchmarks: `make bench` = `.venv/bin/python -m benchmarks.run [--quick] [--only NAME[,NAME]]`.

Starts a throwaway PostgreSQL + Redis (unless DATABASE_URL and REDIS_URL are set: then databases named
bench_* are created and dropped on that server), runs each benchmark in its own child process (so that
peak memory and crashes stay per benchmark), prints one markdown report and writes it to
benchmarks/out/results.md, with everything measured in benchmarks/out/results.json.

A missed target is reported as FAIL and is not an error: the exit code is 0 unless a benchmark crashed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import (
    CLOCK_TICKS,
    OUT_DIR,
    Result,
    fmt_num,
    fmt_rate,
    log,
    proc_stat,
    proc_status,
    write_child_result,
)

BENCHMARKS: dict[str, str] = {
    "splitter": "benchmarks.bench_splitter",
    "split_memory": "benchmarks.bench_split_memory",
    "worker": "benchmarks.bench_worker",
    "floor": "benchmarks.bench_floor",
    "ceilings": "benchmarks.bench_ceilings",
    "e2e": "benchmarks.bench_e2e",
    "driver": "benchmarks.bench_driver",
    "cli": "benchmarks.bench_cli",
}


# ---- machine -----------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_times() -> dict[int, tuple[str, int]]:
    out: dict[int, tuple[str, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := proc_stat(entry)) is not None:
            out[int(entry)] = (stat.name, stat.cpu_ticks)
    return out


def busy_snapshot(seconds: float = 1.0) -> dict[str, Any]:
    """Load average and the processes that used CPU during `seconds` (other users' work shows here)."""
    load = Path("/proc/loadavg").read_text().split()[:3]
    before = _cpu_times()
    t = time.perf_counter()
    time.sleep(seconds)
    after = _cpu_times()
    dt = time.perf_counter() - t
    me = os.getpid()
    busy: list[tuple[int, str, int]] = []
    for pid, (name, ticks) in after.items():
        if pid in before and pid != me:
            pct = round(100 * (ticks - before[pid][1]) / CLOCK_TICKS / dt)
            if pct >= 5:
                busy.append((pct, name, pid))
    busy.sort(reverse=True)
    return {"loadavg": " ".join(load),
            "busy_processes": [{"pid": pid, "name": name, "cpu_pct": pct} for pct, name, pid in busy[:8]],
            "cpu_used_pct_of_machine": round(sum(b[0] for b in busy) / (os.cpu_count() or 1))}


def machine_info() -> dict[str, Any]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    return {"nproc": len(os.sched_getaffinity(0)), "cpu_count": os.cpu_count(), "cpu_model": _cpu_model(),
            "memory_gib": round(mem_kb / 2**20, 1), "python": platform.python_version(), "uptime": uptime,
            "commit": _commit()}


def _commit() -> str:
    """The commit measured, and whether the working tree had changes on top of it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False,
                              cwd=Path(__file__).parent).stdout.strip()
    sha = git("rev-parse", "--short=12", "HEAD") or "unknown"
    return sha + (" + uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


# ---- children ----------------------------------------------------------------------------------------


def run_child(name: str, quick: bool, workdir: Path, timeout: float | None) -> dict[str, Any]:
    result_file = workdir / f"result-{name}.json"
    cmd = [sys.executable, "-m", "benchmarks.run", "--child", name, "--workdir", str(workdir),
           "--result-file", str(result_file)] + (["--quick"] if quick else [])
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, timeout=timeout, check=False, stdout=sys.stderr)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        code = -1
    seconds = time.perf_counter() - t
    if code != 0 or not result_file.exists():
        return {"error": f"exit code {code}" + (" (timeout)" if code == -1 else ""), "seconds": round(seconds, 1),
                "results": [], "extra": {}}
    data = json.loads(result_file.read_text())
    data["seconds"] = round(seconds, 1)
    return dict(data)


def child_main(name: str, quick: bool, workdir: Path, result_file: str | None) -> int:
    from benchmarks.common import quiet_environment

    quiet_environment()
    module = importlib.import_module(BENCHMARKS[name])
    results, extra = module.run(quick=quick, workdir=workdir)
    extra["process_peak_rss_mb"] = round(proc_status().get("VmHWM", 0) / 1024, 1)
    write_child_result(result_file, results, extra)
    return 0


# ---- report ------------------------------------------------------------------------------------------


def _find(results: list[dict[str, Any]], bench: str, starts: str) -> dict[str, Any] | None:
    for r in results:
        if r["bench"] == bench and r["case"].startswith(starts):
            return r
    return None


def targets(all_results: dict[str, Any], quick: bool) -> list[dict[str, Any]]:
    res = [r for b in all_results.values() for r in b.get("results", [])]
    out: list[dict[str, Any]] = []

    def add(target: str, measured: str, value: float | None, goal: str, ok: bool | None) -> None:
        out.append({"target": target, "measured": measured, "value": value, "goal": goal,
                    "result": "n/a" if ok is None else ("PASS" if ok else "FAIL")})

    worker = _find(res, "worker", "ChunkImporter.import_chunk, 1 process")
    phone = _find(res, "ceilings", "phone: PhoneNormalizer")
    plain = _find(res, "ceilings", "phone: phonenumbers")
    if worker and phone and worker["rows_per_s"] and phone["rows_per_s"]:
        ratio = worker["rows_per_s"] / phone["rows_per_s"]
        vs_plain = (f"; vs plain phonenumbers {fmt_rate(plain['rows_per_s'])} rows/s: "
                    f"{worker['rows_per_s'] / plain['rows_per_s']:.2f}") if plain and plain["rows_per_s"] else ""
        add("worker rows/s >= 0.5 x phone normalization alone",
            f"{fmt_rate(worker['rows_per_s'])} vs {fmt_rate(phone['rows_per_s'])} rows/s{vs_plain}", ratio, ">= 0.5",
            ratio >= 0.5)
    else:
        add("worker rows/s >= 0.5 x phone normalization alone", "not measured", None, ">= 0.5", None)

    e2e_runs = [r for r in res if r["bench"] == "e2e"]
    e2e = max(e2e_runs, key=lambda r: r["rows"] or 0) if e2e_runs else None
    naive = _find(res, "ceilings", "naive importer")
    if e2e and naive and e2e["rows_per_s"] and naive["rows_per_s"]:
        ratio = e2e["rows_per_s"] / naive["rows_per_s"]
        runs = all_results.get("e2e", {}).get("extra", {}).get("runs", {})
        alone = next((r.get("import_seconds") for r in runs.values() if r.get("rows") == e2e["rows"]), None)
        extra = (f"; import alone (started -> finished) {fmt_rate(e2e['rows'] / alone)} rows/s = "
                 f"{e2e['rows'] / alone / naive['rows_per_s']:.2f} x naive") if alone else ""
        add(f"end to end >= 20 x naive ({e2e['rows']:,} rows e2e, wall)",
            f"{fmt_rate(e2e['rows_per_s'])} vs {fmt_rate(naive['rows_per_s'])} rows/s{extra}", ratio, ">= 20",
            ratio >= 20)
    else:
        add("end to end >= 20 x naive", "not measured", None, ">= 20", None)

    cli = all_results.get("cli", {}).get("extra", {})
    if cli.get("slowest_warm_seconds") is not None:
        add("small CLI commands (import of 1 row, status, tokens, owners, list, errors), warm .local: <= 2 s each",
            f"slowest {cli['slowest_warm_seconds']:.2f} s", cli["slowest_warm_seconds"], "<= 2 s",
            bool(cli.get("warm_within_target")))

    million = next((r for r in e2e_runs if r["rows"] == 1_000_000), None)
    cores = all_results.get("e2e", {}).get("extra", {}).get("workers")
    if million and million["seconds"]:
        add(f"1M rows end to end < 60 s on 2 cores (ran with {cores} workers)", f"{million['seconds']:,.1f} s",
            million["seconds"], "< 60 s", million["seconds"] < 60 and "NOT COMPLETED" not in million["note"])
    elif e2e and e2e["rows_per_s"]:
        est = 1_000_000 / e2e["rows_per_s"]
        add("1M rows end to end < 60 s on 2 cores", f"~{est:,.0f} s (estimated from {e2e['rows']:,} rows; "
            "1M not run)", est, "< 60 s", None)
    else:
        add("1M rows end to end < 60 s on 2 cores", "not measured", None, "< 60 s", None)

    sm = all_results.get("split_memory", {}).get("extra", {})
    sizes = sm.get("sizes") or (["10 MB", "100 MB"] if quick else ["100 MB", "1 GB"])
    for source, label in (("file", "reader path, local file"), ("s3", "Splitter class, S3 via moto server")):
        data = sm.get(source) or {}
        small, big = data.get(sizes[0]), data.get(sizes[1])
        if small and big:
            ratio = big["peak_kb"] / small["peak_kb"]
            add(f"splitter peak RSS {sizes[1]} <= 1.2 x {sizes[0]} ({label})",
                f"{big['peak_kb'] / 1024:,.0f} vs {small['peak_kb'] / 1024:,.0f} MiB", ratio, "<= 1.2", ratio <= 1.2)
            big_mb = big["peak_kb"] / 1024
            add(f"splitter peak RSS {sizes[1]} < 256 MB ({label})", f"{big_mb:,.0f} MiB", big_mb, "< 256 MB",
                big_mb * 2**20 < 256e6)
        elif small:
            add(f"splitter peak RSS {sizes[1]} <= 1.2 x {sizes[0]} and < 256 MB ({label})",
                f"{sizes[0]} only: {small['peak_kb'] / 1024:,.0f} MiB ({sizes[1]} via S3 not run: "
                "BENCH_SPLIT_S3_1GB=1)", small["peak_kb"] / 1024, "<= 1.2, < 256 MB", None)
        else:
            add(f"splitter peak RSS {sizes[1]} <= 1.2 x {sizes[0]} and < 256 MB ({label})", "not measured", None,
                "<= 1.2, < 256 MB", None)
    return out


def render(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [f"# leadimport benchmarks ({'quick' if report['quick'] else 'full'}) — {report['started']}", ""]
    lines.append(f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Python {m['python']}. "
                 f"Commit {m.get('commit', 'unknown')}. Total time {report['seconds']:,.0f} s.")
    for when in ("before", "after"):
        b = report["busy"].get(when)
        if b:
            others = ", ".join(f"{p['name']} {p['cpu_pct']}%" for p in b["busy_processes"]) or "none"
            lines.append(f"- {when}: load average {b['loadavg']}; processes using CPU over 1 s: {others}")
    lines.append("")

    lines += ["## Targets", "", "| target | measured | ratio / value | goal | result |", "|---|---|---|---|---|"]
    for t in report["targets"]:
        value = "–" if t["value"] is None else (f"{t['value']:.3g}" if t["value"] < 100 else f"{t['value']:,.0f}")
        lines.append(f"| {t['target']} | {t['measured']} | {value} | {t['goal']} | **{t['result']}** |")
    lines.append("")

    lines += ["## Results", "",
              "| benchmark | case | rows | seconds (median) | runs | rows/s | reference | ratio | peak RSS MiB | notes |",
              "|---|---|---:|---:|---:|---:|---|---:|---:|---|"]
    for name, bench in report["benchmarks"].items():
        if bench.get("error"):
            lines.append(f"| {name} | **ERROR: {bench['error']}** | | | | | | | | |")
        for r in bench.get("results", []):
            ratio = "–" if r["ratio"] is None else f"{r['ratio']:.3g}"
            rows = "–" if r["rows"] is None else f"{r['rows']:,}"  # the driver and CLI cases time no rows
            lines.append(f"| {r['bench']} | {r['case']} | {rows} | {fmt_num(r['seconds'], 2)} | "
                         f"{len(r['runs'])} | {fmt_rate(r['rows_per_s'])} | {r['ref'] or '–'} | {ratio} | "
                         f"{fmt_num(r['peak_rss_mb'])} | {r['note']} |")
    lines.append("")

    worker = report["benchmarks"].get("worker", {}).get("extra", {})
    if worker.get("timed"):
        timed, prof = worker["timed"], worker.get("profile", {})
        lines += [f"## Worker time split ({worker['rows']:,} rows, one process)", "",
                  "| part | share, timed run (wrappers, low overhead) | share, cProfile (cumulative) |", "|---|---:|---:|"]
        for part, pct in timed["split_pct"].items():
            lines.append(f"| {part} | {pct}% | {prof.get('split_pct', {}).get(part, '–')}% |")
        growth = timed.get("sql_ms_per_chunk_first_vs_last_10pct") or {}
        grown = ", ".join(f"{k} {v[0]} -> {v[1]}" for k, v in growth.items())
        lines += ["", f"Chunk latency (median): first 10% of chunks {timed['chunk_ms_first_10pct']} ms, "
                      f"last 10% {timed['chunk_ms_last_10pct']} ms (x{timed['chunk_growth']})."
                      + (f" SQL ms per chunk, first -> last 10%: {grown}." if grown else ""), "",
                  "SQL by statement (timed run):", "", "| statement (caller) | seconds | % of worker time | calls | ms/call |",
                  "|---|---:|---:|---:|---:|"]
        for stmt, s in timed["sql_by_statement"].items():
            lines.append(f"| {stmt} | {s['seconds']} | {s['pct_of_total']}% | {s['calls']} | {s['ms_per_call']} |")
        explain = worker.get("explain") or {}
        if explain and "error" not in explain:
            lines += ["", f"auto_explain (ANALYZE) of one more chunk after {worker['rows']:,} rows, slowest statements "
                          "(plans in benchmarks/out/worker_explain.txt):", "",
                      "| statement (caller) | duration ms | max rows removed by a filter | max rows hashed | FK trigger ms |",
                      "|---|---:|---:|---:|---:|"]
            for stmt, e in explain.items():
                if isinstance(e, dict):
                    lines.append(f"| {stmt} | {e['execution_ms']} | {e['max_rows_removed_by_filter']:,} | "
                                 f"{e['max_hash_rows']:,} | {e['fk_trigger_ms']} |")
        if prof.get("top_own_time"):
            lines += ["", "cProfile, functions with the most own time (% of the profiled worker time):", "",
                      "| function | own % | calls |", "|---|---:|---:|"]
            for f in prof["top_own_time"][:12]:
                lines.append(f"| `{f['function']}` | {f['own_pct']}% | {f['calls']:,} |")
            lines += ["", "cProfile, leadimport functions by cumulative time:", "", "| function | cum % | calls |",
                      "|---|---:|---:|"]
            for f in prof["top_cumulative_leadimport"][:12]:
                lines.append(f"| `{f['function']}` | {f['cum_pct']}% | {f['calls']:,} |")
        lines.append("")

    lines += render_floor(report)

    e2e = report["benchmarks"].get("e2e", {}).get("extra", {})
    if e2e.get("runs"):
        lines += ["## End to end: peak RSS and CPU time per process", "",
                  "CPU seconds are utime + stime as last sampled (every 0.2 s), summed over the processes with the "
                  "label; the share is of all the CPU the tree used, so it shows where the two cores went.", "",
                  "| run | process | processes | peak RSS MiB | CPU s | us per row | CPU share |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        budgets = []
        for label, run in e2e["runs"].items():
            per = run["memory"]["per_process"]
            rows = max(run.get("rows") or 1, 1)
            cpu_total = sum(v.get("cpu_seconds", 0.0) for v in per.values()) or 1.0
            for proc, v in per.items():
                cpu = v.get("cpu_seconds", 0.0)
                lines.append(f"| {label} | {proc} | {v['processes']} | {v['peak_rss_mb']:,.1f} | {cpu:,.1f} | "
                             f"{cpu * 1e6 / rows:,.1f} | {100 * cpu / cpu_total:.0f}% |")
            lines.append(f"| {label} | (whole tree: max of the sum of RSS, shared memory counted in each process) | | "
                         f"{run['memory']['max_total_rss_mb']:,.1f} | {cpu_total:,.1f} | {cpu_total * 1e6 / rows:,.1f} | |")
            if rows >= 1_000_000:
                budgets.append(budget_line(label, per, rows, cpu_total, report["machine"].get("nproc") or 2))
        lines += ["", *budgets]
        for label, run in e2e["runs"].items():
            deciles = run.get("rate_by_decile")
            if deciles:
                shown = ", ".join("–" if d is None else f"{d:,.0f}" for d in deciles)
                lines.append(f"- {label}: processing rate by tenth of the rows (rows/s): {shown}"
                             + (f"; split done after {run['split_finished_after_s']:,.0f} s of processing"
                                if run.get("split_finished_after_s") is not None else "")
                             + f"; max backlog (split, not yet processed) {run.get('max_backlog_rows', 0):,} rows")
        lines.append("")

    sm = report["benchmarks"].get("split_memory", {}).get("extra", {})
    if sm.get("file"):
        lines += ["## Splitter memory", ""]
        for source, label in (("file", "reader path over a local file"), ("s3", "Splitter class, S3 via a moto server")):
            d = sm.get(source) or {}
            if "ratio" in d:
                lines.append(f"- {label}: peak ratio {sizes_str(sm)} = {d['ratio']}; above the pre-split RSS: "
                             f"{d['ratio_above_baseline']}")
        lines.append("")
    return "\n".join(lines)


def budget_line(label: str, per: dict[str, Any], rows: int, cpu_total: float, cores: int) -> str:
    """CPU per row of all processes of a large end-to-end run against the budget (cores x 60 s / 1M rows), by part."""
    budget = cores * 60 / 1_000_000 * 1e6

    def part(*prefixes: str) -> float:
        return sum(v.get("cpu_seconds", 0.0) for k, v in per.items() if k.startswith(prefixes)) * 1e6 / rows

    total = cpu_total * 1e6 / rows
    return (f"- {label}: all processes **{total:,.1f} us of CPU per row = {total / budget:.2f} x the budget** of "
            f"{budget:,.0f} us (1M rows in 60 s on {cores} cores): PostgreSQL {part('postgres'):,.1f}, workers "
            f"{part('worker'):,.1f}, splitter {part('splitter'):,.1f}, CLI with its moto server (local AWS: S3 and "
            f"SQS, which cost none of this CPU deployed) {part('cli'):,.1f}, Redis {part('redis'):,.1f}. PostgreSQL by role: "
            f"backends {part('postgres (backends)'):,.1f}, autovacuum {part('postgres (autovacuum)'):,.1f}, the rest "
            f"of its background (WAL writer, checkpointer, I/O workers...) {part('postgres (background)'):,.1f}.")


def other_cpu_per_lead_us(report: dict[str, Any]) -> tuple[float, str] | None:
    """CPU per row of everything in the 1M-row end-to-end run that is neither a worker nor PostgreSQL
    (splitter, the CLI with its moto server, Redis), in us, and the run's label. Smaller runs are not
    used: their start-up (imports, servers, upload) would be spread over too few leads."""
    runs = report["benchmarks"].get("e2e", {}).get("extra", {}).get("runs", {})
    done = [(label, r) for label, r in runs.items() if (r.get("rows") or 0) >= 1_000_000 and r.get("memory")]
    if not done:
        return None
    label, run = max(done, key=lambda lr: lr[1]["rows"])
    per = run["memory"]["per_process"]
    other = sum(v.get("cpu_seconds", 0.0) for k, v in per.items() if not k.startswith(("worker", "postgres")))
    return other * 1e6 / run["rows"], label


def render_floor(report: dict[str, Any]) -> list[str]:
    """The floor benchmark's table and the 1M-in-60-s budget it is compared with."""
    floor = report["benchmarks"].get("floor", {})
    cpu = floor.get("extra", {}).get("cpu_per_row_us")
    if not cpu:
        return []
    rates = {r["case"]: r for r in floor.get("results", [])}
    extra = floor["extra"]
    lines = [f"## CPU per row: the product, each part taken out, and the floor ({extra['rows']:,} rows, "
             f"median of {extra['rounds']} round{'' if extra['rounds'] == 1 else 's'})", "",
             "The worker in one process, as in `worker`; CPU is utime + stime of the worker process and of its "
             "PostgreSQL backend. Each variant removes a part in a throwaway database (see "
             "`benchmarks/bench_floor.py`); `floor` keeps only the contact upsert, the lead insert, the counters "
             "and the tokens.", "",
             "| case | rows/s | vs product | PostgreSQL us/row | worker us/row | both us/row |",
             "|---|---:|---:|---:|---:|---:|"]
    for case, c in cpu.items():
        r = rates.get(case, {})
        ratio = "–" if r.get("ratio") is None else f"{r['ratio']:.2f}"
        lines.append(f"| {case} | {fmt_rate(r.get('rows_per_s'))} | {ratio} | {fmt_num(c['pg_us'])} | "
                     f"{fmt_num(c['worker_us'])} | {fmt_num(c['total_us'])} |")
    cores = report["machine"].get("nproc") or 2
    budget = cores * 60 / 1_000_000 * 1e6
    lowest = cpu.get("floor", {}).get("total_us")
    other = other_cpu_per_lead_us(report)
    if lowest is not None:
        text = (f"1M rows in 60 s on {cores} cores leaves {budget:,.0f} us of CPU per row for everything. "
                f"The floor's worker and PostgreSQL backend alone use {lowest:,.1f} us")
        if other is not None:
            text += (f"; the other processes of the {other[1]} end-to-end run (splitter, CLI with moto, Redis) "
                     f"{other[0]:,.1f} us more: {lowest + other[0]:,.1f} us, "
                     f"{(lowest + other[0]) / budget:.2f} x the budget (PostgreSQL's background processes, "
                     "such as the WAL writer and autovacuum, are counted nowhere: the real total is higher)")
        else:
            text += (f", {lowest / budget:.2f} x the budget before the splitter and the queue (their share comes "
                     "from the 1M end-to-end run, not run here)")
        lines += ["", text + "."]
    return lines + [""]


def sizes_str(sm: dict[str, Any]) -> str:
    sizes = sm.get("sizes") or []
    return f"{sizes[1]}/{sizes[0]}" if len(sizes) == 2 else "?"


# ---- main --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    p.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    p.add_argument("--child", choices=list(BENCHMARKS), help=argparse.SUPPRESS)
    p.add_argument("--workdir", help=argparse.SUPPRESS)
    p.add_argument("--result-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.child:
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="leadimport-bench-"))
        return child_main(args.child, args.quick, workdir, args.result_file)

    names = list(BENCHMARKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            p.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    report: dict[str, Any] = {"quick": args.quick, "started": started, "machine": machine_info(), "busy": {},
                              "benchmarks": {}}
    report["busy"]["before"] = busy_snapshot()
    log(f"machine: {report['machine']['nproc']} CPUs, {report['machine']['cpu_model']}; "
        f"load {report['busy']['before']['loadavg']}")

    workdir = Path(tempfile.mkdtemp(prefix="leadimport-bench-"))
    workdir.chmod(0o755)
    from leadimport_local.runner import LocalServices

    services = LocalServices.throwaway()
    failed = False
    try:
        services.start()
        os.environ["DATABASE_URL"] = services.database_url or ""
        os.environ["REDIS_URL"] = services.redis_url or ""
        for name in names:
            log(f"=== {name}")
            timeout = None if name == "e2e" else (900 if args.quick else 1800)
            report["benchmarks"][name] = run_child(name, args.quick, workdir, timeout)
            if report["benchmarks"][name].get("error"):
                failed = True
                log(f"{name} FAILED: {report['benchmarks'][name]['error']}")
    finally:
        services.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    report["busy"]["after"] = busy_snapshot()
    report["seconds"] = time.perf_counter() - t0
    report["targets"] = targets(report["benchmarks"], args.quick)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    # the measurements first: a report that fails to render must not lose a run of many minutes
    (OUT_DIR / "results.json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    text = render(report)
    print(text)
    (OUT_DIR / "results.md").write_text(text + "\n", encoding="utf-8")
    log(f"written {OUT_DIR / 'results.md'} and results.json")
    return 1 if failed else 0


__all__ = ["Result", "main"]

if __name__ == "__main__":
    sys.exit(main())
