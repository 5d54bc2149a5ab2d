"""8. What pg8000 (the customer's driver) costs the worker against psycopg 3, in client CPU per row.

The worker's statement shape, on the same server, interleaved: a 2,000-row chunk sent as ONE JSON text
parameter unpacked with `json_to_recordset` into an insert, whose result comes back as one aggregated value,
plus 10 small statements (the chunk's other round trips), inside BEGIN ... ROLLBACK. Measured: the client
process's CPU (getrusage) minus the JSON encoding (the same for both drivers), per row, 60 chunks each.

psycopg is not a dependency of the project: the benchmark measures it when it is importable (install it into
the venv by hand: `.venv/bin/pip install 'psycopg[binary]'`) and says "not measured" otherwise.
"""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

from benchmarks.common import Result, log, server_urls

NAME = "driver"
ROWS = 2_000
CHUNKS = 60
SETUP = "CREATE TEMP TABLE bench_driver (p text PRIMARY KEY, r text, z text, t jsonb)"
INSERT = ("WITH ins AS (INSERT INTO bench_driver (p, r, z, t) SELECT p, r, z, t FROM json_to_recordset(CAST({} AS json))"
          " AS x(p text, r text, z text, t jsonb) RETURNING p) SELECT CAST(count(*) AS text) FROM ins")
SMALL = "SELECT CAST({} AS text)"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _chunk(k: int) -> str:
    return orjson.dumps([{"p": f"+1555{k:03d}{i:04d}", "r": "US", "z": "America/New_York",
                          "t": {"first_name": "John", "interest": "cars", "debt_amount": "1000"}}
                         for i in range(ROWS)]).decode()


def run(*, quick: bool, workdir: Path) -> tuple[list[Result], dict[str, Any]]:
    import pg8000.native

    base_url, _ = server_urls()
    u = urlparse(base_url)
    chunks = 10 if quick else CHUNKS
    p8 = pg8000.native.Connection(user=u.username or "postgres", password=u.password, host=u.hostname or "localhost",
                                  port=u.port or 5432, database=u.path[1:])
    p8.run(SETUP)

    def with_pg8000(body: str) -> None:
        p8.run("BEGIN")
        p8.run(INSERT.format(":j"), j=body)
        for _ in range(10):
            p8.run(SMALL.format(":x"), x="1")
        p8.run("ROLLBACK")

    drivers: dict[str, Any] = {"pg8000": with_pg8000}
    try:
        import psycopg  # type: ignore[import-not-found]
    except ImportError:
        psycopg = None
        log("driver: psycopg is not installed: only pg8000 is measured")
    if psycopg is not None:
        ps = psycopg.connect(host=u.hostname, port=u.port, user=u.username, password=u.password, dbname=u.path[1:],
                             autocommit=True)
        ps.execute(SETUP)

        def with_psycopg(body: str) -> None:
            with ps.transaction(force_rollback=True):
                ps.execute(INSERT.format("%s"), (body,)).fetchone()
                for _ in range(10):
                    ps.execute(SMALL.format("%s"), ("1",)).fetchone()

        drivers["psycopg 3"] = with_psycopg
    spent = dict.fromkeys(drivers, 0.0)
    for k in range(chunks):
        body = _chunk(k)
        order = list(drivers) if k % 2 else list(reversed(drivers))
        for name in order:
            t = _cpu()
            drivers[name](body)
            spent[name] += _cpu() - t
    per_row = {name: round(v / chunks / ROWS * 1e6, 2) for name, v in spent.items()}
    log(f"driver: client CPU per row {per_row}")
    results = [Result(NAME, f"{name}: one {ROWS:,}-row JSON statement + 10 small ones, client CPU", rows=chunks * ROWS,
                      note=f"{us} us of client CPU per row") for name, us in per_row.items()]
    if "psycopg 3" not in per_row:
        results.append(Result(NAME, "psycopg 3", note="not measured: psycopg is not installed in this venv"))
    return results, {"client_cpu_per_row_us": per_row}
