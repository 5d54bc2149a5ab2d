"""`leadimport serve`: the API and the upload page on 127.0.0.1, with the whole pipeline running behind.

* `/api/...` is the HTTP API: each request becomes an API Gateway HTTP API (payload v2) event and
  goes to the very handler Lambda runs (functions/api/handler.py). `/api` is the API's base URL, as
  the stage URL is deployed: `/api/imports/{id}` here is `/imports/{id}` there.
* The company comes from a dev authorizer that only this server has: `Authorization: Bearer
  dev-<company_id>` puts `company_id` into requestContext.authorizer.jwt.claims, as the JWT
  authorizer does deployed. Without it (or with anything else) the event has no authorizer and the
  API answers 401.
* `/local/owners` (local only, same dev authorizer) lists the company's schedules and offers for
  the page's owner select; `/local/lists` (the same) those and the company's buyers, traffic sources and call
  dispositions, which the wizard picks from by name; `/local/lifecycle` gives the page the import statuses and transitions;
  `/local/reasons` the reason and warning codes in words.
* `/` and the page's files come from ./static.
* The pipeline (`LocalPipeline`: stores, a moto server with the bucket and queues, the splitter and
  worker processes) runs while the server serves. The browser uploads the file straight to the moto
  server with the presigned POST the API returns, so the bucket gets a CORS rule for the page's
  origin, like the deployed bucket's (template.yaml, AllowedOrigins).

The handler runs under a lock: a Lambda execution environment handles one request at a time, and
the handler's router and connections assume it.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from leadimport_local.events import LambdaContext, make_api_request
from leadimport_local.pipeline import LocalPipeline
from leadimport_local.runner import LocalAws, load_handler

STATIC_DIR = Path(__file__).resolve().parent / "static"
API_PREFIX = "/api"
MAX_API_BODY = 10 * 1024**2  # API Gateway's payload limit
DEV_TOKEN = re.compile(r"^Bearer\s+dev-(\d{1,18})$", re.IGNORECASE)
TEXT_TYPES = ("text/", "application/json", "application/problem+json", "application/xml",
              "application/javascript", "application/x-www-form-urlencoded")


def dev_company(authorization: str | None) -> int | None:
    """The dev authorizer: `Bearer dev-<company_id>` -> company_id; anything else -> None (401)."""
    m = DEV_TOKEN.match((authorization or "").strip())
    return int(m.group(1)) if m and int(m.group(1)) > 0 else None


def to_api_event(method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes,
                 *, source_ip: str = "127.0.0.1", host: str = "127.0.0.1") -> dict[str, Any]:
    """An HTTP request as API Gateway's HTTP API hands it to Lambda (payload format 2.0)."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value  # HTTP API joins repeats with commas
    company = dev_company(merged.get("authorization"))
    event = make_api_request(method, path, company_id=company)
    event["headers"] = merged
    event["cookies"] = cookies
    event["rawQueryString"] = query
    params: dict[str, str] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        params[k] = f"{params[k]},{v}" if k in params else v
    event["queryStringParameters"] = params or None
    http = event["requestContext"]["http"]
    http["sourceIp"] = source_ip
    http["userAgent"] = merged.get("user-agent", "")
    event["requestContext"]["domainName"] = host
    event["requestContext"]["domainPrefix"] = host.split(".")[0]
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if body:
        content_type = merged.get("content-type", "").lower()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and (not content_type or content_type.startswith(TEXT_TYPES)):
            event["body"], event["isBase64Encoded"] = text, False
        else:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode("ascii"), True
    else:
        event["body"], event["isBase64Encoded"] = None, False
    return event


def allow_browser_uploads(aws: LocalAws, origins: list[str]) -> None:
    """The bucket's CORS rule, as template.yaml's UploadBucket has it, for the page's origins.

    moto answers the preflight (OPTIONS) from this rule. Its reply to the form POST itself carries
    no bucket CORS headers (moto 5.2 does not apply them to bucket-level POSTs): there the moto
    server's own permissive CORS (on unless MOTO_DISABLE_GLOBAL_CORS is set) adds
    Access-Control-Allow-Origin, which is what lets the page read the upload's status.
    """
    aws.s3.put_bucket_cors(Bucket=aws.wiring.bucket_name, CORSConfiguration={"CORSRules": [{
        "AllowedMethods": ["POST", "PUT"],
        "AllowedOrigins": origins,
        "AllowedHeaders": ["*"],
        "ExposeHeaders": ["ETag"],
        "MaxAgeSeconds": 3000,
    }]})


class LocalServer:
    """The HTTP server; attach a started LocalPipeline before serving API requests."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, *, quiet: bool = False):
        self.httpd = _HttpServer((host, port), _RequestHandler)
        self.httpd.app = self
        self.quiet = quiet
        self.pipeline: LocalPipeline | None = None
        self._api: Any = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def origins(self) -> list[str]:
        return [f"http://127.0.0.1:{self.port}", f"http://localhost:{self.port}"]

    def attach(self, pipeline: LocalPipeline) -> None:
        assert pipeline.aws is not None, "start the pipeline first"
        self.pipeline = pipeline
        allow_browser_uploads(pipeline.aws, self.origins)
        from moto import settings as moto_settings

        if moto_settings.DISABLE_GLOBAL_CORS:
            print("leadimport: MOTO_DISABLE_GLOBAL_CORS is set: moto's reply to the browser's upload POST will lack"
                  " Access-Control-Allow-Origin, so uploads from the page fail; unset it.", file=sys.stderr)
        self._api = load_handler("api")

    # ---- serving -----------------------------------------------------------------------------

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.2)

    def start_background(self) -> LocalServer:
        self._thread = threading.Thread(target=self.serve_forever, name="leadimport-serve", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.httpd.server_close()

    # ---- what the request handler calls ---------------------------------------------------------

    def call_api(self, event: dict[str, Any]) -> dict[str, Any]:
        if self._api is None:
            return {"statusCode": 503, "headers": {"content-type": "application/problem+json"},
                    "body": json.dumps({"status": 503, "code": "starting", "message": "The server is starting."})}
        with self._lock:
            return dict(self._api(event, LambdaContext(function_name="api", timeout_seconds=30)))

    def owners(self, company: int) -> list[dict[str, Any]]:
        from leadimport.store.db import shared_database
        from leadimport_local.seed import list_owners

        with self._lock:
            return list_owners(shared_database(), company)


    def choices(self, company: int) -> dict[str, list[dict[str, Any]]]:
        from leadimport.store.db import shared_database
        from leadimport_local.seed import list_choices

        with self._lock:
            return list_choices(shared_database(), company)


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    app: LocalServer


class _RequestHandler(BaseHTTPRequestHandler):
    server: _HttpServer
    server_version = "leadimport-local"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._dispatch()

    # -----------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        app = self.server.app
        parts = urlsplit(self.path)
        path = parts.path or "/"
        try:
            body = self._read_body()
            if body is None:
                return
            if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
                self._api(path[len(API_PREFIX):] or "/", parts.query, body)
            elif path == "/local/owners":
                self._company_list(app.owners)
            elif path == "/local/lists":
                self._company_list(app.choices)
            elif path == "/local/lifecycle":
                self._send_json(200, lifecycle())
            elif path == "/local/reasons":
                self._send_json(200, reason_words())
            elif self.command in ("GET", "HEAD"):
                self._static(path)
            else:
                self._send_json(405, {"status": 405, "code": "method_not_allowed", "message": "Not allowed here."})
        except BrokenPipeError:
            pass
        except Exception as exc:  # the page gets a sentence; the terminal the traceback
            import traceback

            traceback.print_exc()
            self._send_json(500, {"status": 500, "code": "internal_error", "message": f"Local server error: {exc}"})

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._send_json(411, {"status": 411, "code": "length_required", "message": "Send a Content-Length."})
            return None
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_API_BODY:
            self.close_connection = True
            self._send_json(413, {"status": 413, "code": "too_large", "message": "The request body is too large."})
            return None
        return self.rfile.read(length) if length else b""

    def _api(self, path: str, query: str, body: bytes) -> None:
        event = to_api_event(self.command, path, query, list(self.headers.items()), body,
                             source_ip=self.client_address[0], host=self.headers.get("Host", "127.0.0.1"))
        response = self.server.app.call_api(event)
        raw = response.get("body") or ""
        payload = base64.b64decode(raw) if response.get("isBase64Encoded") else raw.encode("utf-8")
        headers: list[tuple[str, str]] = []
        for k, v in (response.get("headers") or {}).items():
            headers += [(k, str(x)) for x in v] if isinstance(v, list) else [(k, str(v))]
        for k, values in (response.get("multiValueHeaders") or {}).items():
            headers += [(k, str(x)) for x in values]
        headers += [("Set-Cookie", c) for c in response.get("cookies") or []]
        self._send(int(response.get("statusCode", 200)), payload, headers)

    def _company_list(self, read: Any) -> None:
        """A local list for the page, of the company the dev authorizer names (401 without one)."""
        if self.command != "GET":
            self._send_json(405, {"status": 405, "code": "method_not_allowed", "message": "Use GET."})
            return
        company = dev_company(self.headers.get("Authorization"))
        if company is None:
            self._send_json(401, {"status": 401, "code": "unauthorized",
                                  "message": "Sign in again: the request carries no company."})
            return
        self._send_json(200, read(company))

    def _static(self, path: str) -> None:
        name = "index.html" if path in ("/", "/index.html") else path.lstrip("/")
        target = (STATIC_DIR / name).resolve()
        if STATIC_DIR not in target.parents or not target.is_file():
            self._send_json(404, {"status": 404, "code": "not_found", "message": "No such page."})
            return
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        self._send(200, target.read_bytes(), [("Content-Type", content_type), ("Cache-Control", "no-store")])

    def _send_json(self, status: int, data: Any) -> None:
        ctype = "application/problem+json" if status >= 400 else "application/json"
        self._send(status, json.dumps(data).encode("utf-8"), [("Content-Type", ctype)])

    def _send(self, status: int, payload: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        if not self.server.app.quiet:
            sys.stderr.write(f"{time.strftime('%H:%M:%S')} {format % args}\n")


@contextmanager
def running_server(port: int = 8000, *, workers: int = 2, host: str = "127.0.0.1", quiet: bool = False,
                   env: dict[str, str] | None = None) -> Iterator[LocalServer]:
    """The server on a background thread with the pipeline up, for tests (`leadimport serve` serves in front).

    `env` (e.g. DATABASE_URL, REDIS_URL, REDIS_KEY_PREFIX) is set for the pipeline; the process
    environment, which the pipeline changes (moto endpoint, queue URLs), is put back afterwards.
    The port is bound first, so a busy port fails before anything starts."""
    from leadimport import roots

    saved = dict(os.environ)
    try:
        os.environ.update(env or {})
        server = LocalServer(host, port, quiet=quiet)
        try:
            with LocalPipeline(workers=workers) as pipeline:
                server.attach(pipeline)
                server.start_background()
                try:
                    yield server
                finally:
                    server.close()
        finally:
            server.httpd.server_close()
    finally:
        os.environ.clear()
        os.environ.update(saved)
        roots.reset()


def reason_words() -> dict[str, str]:
    """Each rejection reason and warning code in words, for the page's tables (leadimport.reasons.WORDS)."""
    from leadimport.reasons import WORDS

    return {str(code): words for code, words in WORDS.items()}


def lifecycle() -> dict[str, Any]:
    """The import lifecycle for the page: the one table of leadimport.imports.status."""
    from leadimport.imports.status import ACTIVE, FINAL, ImportStatus, all_transitions

    return {"statuses": [s.value for s in ImportStatus], "final": sorted(s.value for s in FINAL),
            "active": sorted(s.value for s in ACTIVE), "transitions": all_transitions()}


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def serve(port: int = 8000, *, workers: int = 2, host: str = "127.0.0.1") -> int:
    """`leadimport serve`: bind, start the pipeline, serve until Ctrl-C."""
    try:
        server = LocalServer(host, port)
    except OSError as exc:
        print(f"leadimport: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    try:
        print("Starting the local stores, the moto server and the pipeline ...", file=sys.stderr)
        with ExitStack() as stack:
            # Ctrl-C is for this process: the splitter/worker processes (and the local stores) started
            # meanwhile inherit an ignored SIGINT, and stop when the pipeline tells them to.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                pipeline = stack.enter_context(LocalPipeline(workers=workers))
            finally:
                signal.signal(signal.SIGINT, previous)
            server.attach(pipeline)
            assert pipeline.aws is not None
            print(f"\nleadimport is serving on {server.url}/  (API: {server.url}{API_PREFIX}/imports,"
                  f" uploads go to {pipeline.aws.endpoint_url})\n"
                  "API calls need `Authorization: Bearer dev-<company_id>` (the page sends it). Ctrl-C stops.\n",
                  file=sys.stderr)
            signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                print("\nStopping ...", file=sys.stderr)
            finally:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
    finally:
        server.httpd.server_close()
    return 0


__all__ = ["LocalServer", "allow_browser_uploads", "dev_company", "running_server", "serve", "to_api_event"]
