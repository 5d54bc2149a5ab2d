"""The local pipeline behind the CLI: local stores, a moto server, and the handlers in processes.

Processes, not threads: a splitter process fed by the S3 notification queue and N worker
processes fed by the chunk queue, like Lambda concurrency, so a laptop import uses its cores.
They drain the chunk queue while the splitter sends (moto's SQS slows down with queue depth).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from leadimport_local.events import make_api_request
from leadimport_local.runner import (
    FAKE_AWS_ENV,
    LocalAws,
    LocalServices,
    load_handler,
    local_dir,
    prepare_database,
)

POST_UPLOAD_LIMIT = 64 * 1024**2  # above this the CLI streams the file with the presigned PUT URL
SUPERVISE_SECONDS = 0.5  # how often the supervisor looks for a dead process
SWEEP_SECONDS = 3.0  # the sweeps' schedule locally (5 minutes deployed)


def call_api(company: int | None, method: str, path: str, *, body: Any = None,
             query: dict[str, str] | None = None) -> tuple[int, Any, str]:
    """One request through the API handler, as API Gateway would send it. Returns (status, json, text).
    A 303 (a large errors.csv handed out through S3) is followed, as a browser would."""
    from leadimport_local.events import LambdaContext

    api = load_handler("api")
    handler_logs_to_stderr()
    response = api(make_api_request(method, path, body=body, company_id=company, query=query),
                                   LambdaContext(function_name="api", timeout_seconds=30))
    location = (response.get("headers") or {}).get("Location")
    if int(response["statusCode"]) == 303 and location:
        import requests

        followed = requests.get(location, timeout=600)
        return followed.status_code, None, followed.text
    text = response.get("body") or ""
    if response.get("isBase64Encoded"):
        import base64

        text = base64.b64decode(text).decode()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return int(response["statusCode"]), parsed, text


# Where no moto server runs (the read commands), the AWS endpoint is a closed local port: a call that was not
# expected fails at once instead of reaching out to AWS.
NO_AWS_ENDPOINT = "http://127.0.0.1:9"


class LocalPipeline:
    """The local stores, and with `aws` a moto server holding the bucket and queues; with `workers` > 0 the
    splitter, worker and sweeper processes. A command that only reads (status, list, tokens, owners...) takes
    `aws=False`: nothing of moto is loaded (its import alone takes ~2 s)."""

    def __init__(self, workers: int = 2, *, fresh: bool = False, chunk_rows: int | None = None, aws: bool = True):
        self.workers = workers
        self.fresh = fresh
        self.chunk_rows = chunk_rows
        self.with_aws = aws
        self.services = LocalServices.for_cli()
        self._moto: Any = None
        self.aws: LocalAws | None = None
        self._stop: Any = None
        self._procs: list[Any] = []
        self._targets: list[tuple[Any, str]] = []
        self._supervisor: threading.Thread | None = None
        self.restarts = 0
        self._saved_env: dict[str, str] = {}

    def __enter__(self) -> LocalPipeline:
        self._saved_env = dict(os.environ)  # put back on exit: the next pipeline in this process starts afresh
        for k, v in FAKE_AWS_ENV.items():
            os.environ[k] = v
        self.services.start()
        assert self.services.database_url and self.services.redis_url
        if self.fresh:
            self._wipe()
        prepare_database(self.services.database_url, seed=True)
        env = {
            "DATABASE_URL": self.services.database_url,
            "REDIS_URL": self.services.redis_url,
            "REDIS_KEY_PREFIX": os.environ.get("REDIS_KEY_PREFIX", "li"),
        }
        if self.with_aws:
            self._moto = _moto_server()
            self._moto.start()
            host, port = self._moto.get_host_and_port()
            self.aws = LocalAws(endpoint_url=f"http://{host}:{port}").setup()
            env.update(self.aws.handler_env())
        else:
            env.update(LocalAws(endpoint_url=NO_AWS_ENDPOINT).handler_env())
        if self.chunk_rows:
            env["CHUNK_ROWS"] = str(self.chunk_rows)
        # Keep moto's queue shallow: its cost grows with depth and would eat the workers' CPU.
        env["LOCAL_CHUNK_QUEUE_MAX_DEPTH"] = str(max(20, 10 * self.workers))
        os.environ.update(env)
        from leadimport import roots

        roots.reset()
        if self.workers > 0:
            self._start_processes()
        return self

    def __exit__(self, *exc: object) -> None:
        from leadimport import roots

        self._stop_processes()
        roots.reset()
        if self._moto is not None:
            self._moto.stop()
        self.services.stop()
        os.environ.clear()
        os.environ.update(self._saved_env)
        roots.reset()

    def _wipe(self) -> None:
        import redis

        from leadimport.store.db import Database

        assert self.services.database_url and self.services.redis_url
        db = Database.from_url(self.services.database_url)
        db.run("DROP SCHEMA public CASCADE")
        db.run("CREATE SCHEMA public")
        db.close()
        client = redis.Redis.from_url(self.services.redis_url)
        prefix = os.environ.get("REDIS_KEY_PREFIX", "li")
        keys = list(client.scan_iter(f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i:i + 1000])
        client.close()

    # ------------------------------------------------------------------------------------------

    def import_file(self, path: Path, company: int, owner: dict[str, Any], options: dict[str, Any],
                    *, progress: bool = False) -> tuple[int, dict[str, Any]]:
        """Create the import through the API, upload like the UI, run splitter and workers to the end."""
        status, created, _ = call_api(company, "POST", "/imports",
                                      body={**options, "owner": owner, "name": options.get("name") or path.name,
                                            "upload_size": path.stat().st_size or None})
        if status != 201:
            return status, created or {}
        self._upload(path, created["upload"])
        return 200, self.run_until_done(company, created["id"], progress=progress)

    def _upload(self, path: Path, upload: dict[str, Any]) -> None:
        import requests

        size = path.stat().st_size
        with path.open("rb") as fh:
            if size <= POST_UPLOAD_LIMIT:
                post = upload["post"]
                r = requests.post(post["url"], data=post["fields"], files={"file": (path.name, fh, "text/csv")},
                                  timeout=600)
            else:
                r = requests.put(upload["put_url"], data=fh, headers={"Content-Type": "text/csv"}, timeout=3600)
        if r.status_code >= 300:
            raise RuntimeError(f"upload to the local bucket failed: HTTP {r.status_code} {r.text[:200]}")

    def _start_processes(self) -> None:
        """Splitter, workers and the sweeper start with the pipeline, so their start-up overlaps the upload; a
        supervisor thread restarts any of them that dies (as Lambda would run the next invocation)."""
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        env = dict(os.environ)
        self._targets = [(_splitter_loop, "splitter"), (_sweeper_loop, "sweeper")]
        self._targets += [(_worker_loop, f"worker-{i}") for i in range(self.workers)]
        self._procs = [ctx.Process(target=t, args=(env, self._stop), name=n, daemon=True) for t, n in self._targets]
        for p in self._procs:
            p.start()
        self._supervisor = threading.Thread(target=self._supervise, args=(ctx, env), name="supervisor", daemon=True)
        self._supervisor.start()

    def _supervise(self, ctx: Any, env: dict[str, str]) -> None:
        while not self._stop.wait(SUPERVISE_SECONDS):
            for i, p in enumerate(list(self._procs)):
                if p.is_alive() or self._stop.is_set():
                    continue
                target, name = self._targets[i]
                print(f"local pipeline: the {name} process exited (code {p.exitcode}); starting a new one",
                      file=sys.stderr)
                self._procs[i] = ctx.Process(target=target, args=(env, self._stop), name=name, daemon=True)
                self._procs[i].start()
                self.restarts += 1

    def _stop_processes(self) -> None:
        if self._stop is not None:
            self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=30)
        for p in self._procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
        self._procs = []

    def run_until_done(self, company: int, import_id: str, *, progress: bool = False) -> dict[str, Any]:
        """Poll the status API until the import is final. Without worker processes (a small file) this process
        plays the splitter and the worker itself, handing them the same events from the same queues."""
        bar = ProgressBar(enabled=progress)
        resource: dict[str, Any] = {}
        started = time.monotonic()
        aws = None if self._procs else self.aws
        if aws is not None:
            splitter, worker = load_handler("splitter"), load_handler("worker")
            handler_logs_to_stderr()
        try:
            while True:
                moved = aws.deliver_s3_events(splitter) + aws.deliver_chunks(worker) if aws is not None else 0
                _, resource, _ = call_api(company, "GET", f"/imports/{import_id}")
                bar.update(resource)
                if _finished(resource):
                    break
                if not moved:
                    # Quick at first (small imports end in seconds), then once a second: each look is an API
                    # call in this process (5 a second cost ~5 us of CPU per row of a 1M-row import).
                    time.sleep(0.05 if aws is not None else (0.2 if time.monotonic() - started < 5 else 1.0))
        finally:
            bar.close()
        return resource


def handler_logs_to_stderr() -> None:
    """The handlers log on stdout, as in Lambda; run inside a command, stdout is the command's output (`--json`):
    their log handlers write to stderr instead, as the worker processes' do."""
    import logging

    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__):
                handler.setStream(sys.stderr)


def _moto_server() -> Any:
    """moto's threaded server, stopping in ~0.05 s instead of up to 0.5 s (werkzeug's default poll interval:
    a quarter of a small import's wall time was this wait)."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    class _QuickStopMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.05)

    return _QuickStopMotoServer(ip_address="127.0.0.1", port=0, verbose=False)


def _finished(r: dict[str, Any]) -> bool:
    if r["status"] in ("completed", "failed", "awaiting_confirmation"):
        return True
    if r["status"] == "cancelled":
        return bool(r.get("counts_final", True))  # every chunk sent counted, no splitter still reading
    return False


def _child_setup(env: dict[str, str]) -> None:
    import warnings

    os.environ.clear()
    os.environ.update(env)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    # The handlers log (and emit metrics) on stdout as in Lambda; here stdout belongs to the CLI's output.
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def _splitter_loop(env: dict[str, str], stop: Any) -> None:
    _child_setup(env)
    aws = _attach_aws()
    splitter = load_handler("splitter")
    while not stop.is_set():
        aws.deliver_s3_events(splitter, wait_seconds=1)


def _worker_loop(env: dict[str, str], stop: Any) -> None:
    _child_setup(env)
    aws = _attach_aws()
    worker = load_handler("worker")
    while not stop.is_set():
        aws.deliver_chunks(worker, wait_seconds=1)


def _sweeper_loop(env: dict[str, str], stop: Any) -> None:
    """The scheduled sweeps, every few seconds instead of every 5 minutes: stuck imports, splits to resume
    (a splitter that died), leads past their expiry."""
    _child_setup(env)
    sweeps = load_handler("stuck_imports")
    from leadimport_local.events import LambdaContext

    while not stop.wait(SWEEP_SECONDS):
        try:
            sweeps({}, LambdaContext(function_name="stuck_imports", timeout_seconds=60))
        except Exception as exc:  # noqa: BLE001 - a sweep that fails (a store restarting) runs again later
            print(f"local pipeline: a sweep failed ({type(exc).__name__}); it runs again", file=sys.stderr)


def _attach_aws() -> LocalAws:
    """A LocalAws for a child process: the moto server's queues, looked up by name (not created)."""
    from leadimport.store.aws import client

    aws = LocalAws(endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    aws.s3 = client("s3", region_name="us-east-1")
    aws.sqs = client("sqs", region_name="us-east-1")
    aws.chunk_queue_url = os.environ["CHUNK_QUEUE_URL"]
    aws.events_queue_url = os.environ["SPLIT_CONTINUATION_QUEUE_URL"]
    return aws


class ProgressBar:
    """Rows done of the file's rows (estimated from the bytes read while the file is split: `~`), rate, ETA; on a
    terminal only. The shown share never goes backwards: an estimate that drops a little leaves the bar where it
    was."""

    def __init__(self, enabled: bool, width: int = 30):
        self.enabled = enabled
        self.width = width
        self._shown = False
        self.shown_fraction = 0.0

    def line(self, r: dict[str, Any]) -> str:
        done = r.get("processed_rows", 0) + r.get("unprocessed_rows", 0)
        self.shown_fraction = max(self.shown_fraction, float(r.get("progress") or 0.0))
        frac = self.shown_fraction
        filled = int(frac * self.width)
        estimate = r.get("estimated_total_rows")
        approximate = r["status"] in ("queued", "splitting")  # the file's rows are estimated until it is split
        of = "?" if estimate is None else f"{'~' if approximate else ''}{estimate:,}"
        rate = r.get("rate_rows_per_second")
        eta = r.get("eta_seconds")
        return (f"\r{r['status']:<11} [{'#' * filled}{'.' * (self.width - filled)}] {frac:6.1%} "
                f"{done:>10,}/{of:<11} rows" + (f"  {rate:,.0f} rows/s" if rate else "")
                + (f"  ETA {eta:,.0f}s" if eta is not None else "") + "   ")

    def update(self, r: dict[str, Any]) -> None:
        if not self.enabled:
            return
        sys.stderr.write(self.line(r))
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


__all__ = ["LocalPipeline", "ProgressBar", "call_api", "local_dir"]
