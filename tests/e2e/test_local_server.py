"""`leadimport serve` over real HTTP: the dev authorizer, the API under /api, the page, and an upload
with the presigned POST straight to the moto server (with the browser's Origin), run to completion
by the splitter and worker processes the server keeps running."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from leadimport_local.runner import LocalServices
from leadimport_local.server import LocalServer, dev_company, running_server, to_api_event

pytestmark = pytest.mark.e2e
DATA = Path(__file__).parents[1] / "data"
TIMEOUT = 10


def serve_for_test(services: LocalServices, database_url: str, redis_prefix: str, tmp_path: Path,
                   workers: int) -> Any:
    """The server on a free port, its pipeline on this test's database and Redis prefix."""
    assert services.redis_url
    env = {"DATABASE_URL": database_url, "REDIS_URL": services.redis_url, "REDIS_KEY_PREFIX": redis_prefix,
           "LEADIMPORT_LOCAL_DIR": str(tmp_path / "local")}
    return running_server(port=0, workers=workers, quiet=True, env=env)


@pytest.fixture
def api_server(services: LocalServices, database_url: str, redis_prefix: str,
               tmp_path: Path) -> Iterator[LocalServer]:
    """Without splitter/worker processes: for what only the API answers (quicker to start and stop)."""
    with serve_for_test(services, database_url, redis_prefix, tmp_path, workers=0) as server:
        yield server


@pytest.fixture
def local_server(services: LocalServices, database_url: str, redis_prefix: str,
                 tmp_path: Path) -> Iterator[LocalServer]:
    with serve_for_test(services, database_url, redis_prefix, tmp_path, workers=1) as server:
        yield server


def auth(company: int) -> dict[str, str]:
    return {"Authorization": f"Bearer dev-{company}"}


def create_import(server: LocalServer, company: int = 1, **options: Any) -> dict[str, Any]:
    r = requests.post(f"{server.url}/api/imports", headers=auth(company), timeout=TIMEOUT,
                      json={"owner": {"type": "schedule", "id": 1}, **options})
    assert r.status_code == 201, r.text
    return dict(r.json())


def wait_for(server: LocalServer, import_id: str, statuses: set[str], seconds: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        r = requests.get(f"{server.url}/api/imports/{import_id}", headers=auth(1), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        resource = dict(r.json())
        if resource["status"] in statuses:
            return resource
        assert time.monotonic() < deadline, f"still {resource['status']} after {seconds}s: {resource}"
        time.sleep(0.2)


def test_the_api_wants_the_dev_authorizer_and_scopes_imports_by_company(api_server: LocalServer) -> None:
    local_server = api_server
    base = f"{local_server.url}/api"
    # Without the header, or with anything but `Bearer dev-<id>`, the event has no authorizer: 401
    for headers in ({}, {"Authorization": "Bearer eyJhbGciOi.x.y"}, {"Authorization": "Bearer dev-abc"}):
        r = requests.get(f"{base}/imports", headers=headers, timeout=TIMEOUT)
        assert r.status_code == 401, (headers, r.text)
        assert r.json()["code"] == "unauthorized"
        assert r.headers["Content-Type"].startswith("application/problem+json")
    assert requests.get(f"{local_server.url}/local/owners", timeout=TIMEOUT).status_code == 401
    assert requests.get(f"{local_server.url}/local/lists", timeout=TIMEOUT).status_code == 401

    # Company 1 creates an import; company 2 cannot see it (404, as for an import that does not exist)
    created = create_import(local_server, name="Mine")
    assert created["status"] == "awaiting_upload" and created["company_id"] == "1"
    mine = requests.get(f"{base}/imports/{created['id']}", headers=auth(1), timeout=TIMEOUT)
    assert mine.status_code == 200 and mine.json()["name"] == "Mine"
    theirs = requests.get(f"{base}/imports/{created['id']}", headers=auth(2), timeout=TIMEOUT)
    assert theirs.status_code == 404 and theirs.json()["code"] == "import_not_found"
    listed = requests.get(f"{base}/imports", params={"limit": "5"}, headers=auth(2), timeout=TIMEOUT)
    assert listed.status_code == 200 and listed.json()["items"] == []

    # Validation errors come back as the handler shapes them
    bad = requests.post(f"{base}/imports", headers=auth(1), json={"owner": {"type": "schedule", "id": 1}, "nope": 1},
                        timeout=TIMEOUT)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"

    # The page and its helpers
    owners = requests.get(f"{local_server.url}/local/owners", headers=auth(1), timeout=TIMEOUT).json()
    assert {"type": "schedule", "id": "1"}.items() <= owners[0].items()
    # ... the wizard's lists, by name, of the caller's company only
    lists = requests.get(f"{local_server.url}/local/lists", headers=auth(1), timeout=TIMEOUT).json()
    assert lists["owners"] == owners and "not_interested" in lists["dispositions"]
    assert [b["name"] for b in lists["buyers"]] == ["Freedom Settlement", "National Debt Partners"]
    assert [t["name"] for t in lists["traffic_sources"]] == ["Facebook Ads", "Purchased List"]
    other = requests.get(f"{local_server.url}/local/lists", headers=auth(2), timeout=TIMEOUT).json()
    assert [b["name"] for b in other["buyers"]] == ["Globex Buyer"] and "not_interested" not in other["dispositions"]
    lifecycle = requests.get(f"{local_server.url}/local/lifecycle", timeout=TIMEOUT).json()
    assert lifecycle["final"] == ["cancelled", "completed", "failed"] and ["processing", "completed"] in lifecycle[
        "transitions"]
    words = requests.get(f"{local_server.url}/local/reasons", timeout=TIMEOUT).json()
    assert words["duplicate_lead"].startswith("a live lead for this phone") and "invalid_phone" in words
    page = requests.get(f"{local_server.url}/", timeout=TIMEOUT)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Next Step" in page.text
    js = requests.get(f"{local_server.url}/app.js", timeout=TIMEOUT)
    assert js.status_code == 200 and "javascript" in js.headers["Content-Type"]
    assert requests.get(f"{local_server.url}/..%2Fserver.py", timeout=TIMEOUT).status_code == 404
    assert requests.get(f"{local_server.url}/static/../server.py", timeout=TIMEOUT).status_code == 404


def test_a_browser_style_upload_runs_to_completed(local_server: LocalServer) -> None:
    # Given an import created through the local API
    created = create_import(local_server, name="seed example")
    post = created["upload"]["post"]
    assert local_server.pipeline and local_server.pipeline.aws
    assert post["url"].startswith(local_server.pipeline.aws.endpoint_url)

    # The browser's preflight and form POST to the moto bucket from the page's origin are allowed
    origin = local_server.url
    pre = requests.options(post["url"], headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
                           timeout=TIMEOUT)
    assert pre.status_code == 200 and pre.headers.get("Access-Control-Allow-Origin") == origin
    up = requests.post(post["url"], data=post["fields"], headers={"Origin": origin}, timeout=TIMEOUT,
                       files={"file": ("seed_example.csv", (DATA / "seed_example.csv").read_bytes(), "text/csv")})
    assert up.status_code == 204, up.text
    assert up.headers.get("Access-Control-Allow-Origin") in (origin, "*")

    # Then the splitter and worker processes take it to completed, polled through GET /api/imports/{id}
    done = wait_for(local_server, created["id"], {"completed", "failed"})
    assert done["status"] == "completed", done
    assert (done["total_rows"], done["processed_rows"], done["created_leads"], done["rejected_rows"]) == (3, 3, 3, 0)
    assert done["progress"] == 1.0

    errors = requests.get(f"{local_server.url}/api/imports/{created['id']}/errors.csv", headers=auth(1),
                          timeout=TIMEOUT)
    assert errors.status_code == 200 and errors.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in errors.headers["Content-Disposition"]
    assert errors.text.splitlines()[0].endswith("row,reason,message")


def test_requests_become_http_api_v2_events() -> None:
    event = to_api_event("post", "/imports/x/start", "a=1&a=2&b=",
                         [("Authorization", "Bearer dev-7"), ("Content-Type", "application/json"),
                          ("X-Twice", "1"), ("x-twice", "2"), ("Cookie", "s=1; t=2")], b'{"column_mapping": null}')
    assert event["version"] == "2.0" and event["rawPath"] == "/imports/x/start"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["company_id"] == "7"
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""} and event["rawQueryString"] == "a=1&a=2&b="
    assert event["headers"]["x-twice"] == "1,2" and "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "t=2"]
    assert event["body"] == '{"column_mapping": null}' and event["isBase64Encoded"] is False

    binary = to_api_event("POST", "/imports", "", [("Content-Type", "application/octet-stream")], b"\xff\x00")
    assert binary["isBase64Encoded"] is True and binary["body"] == "/wA="
    assert "authorizer" not in binary["requestContext"] and binary["queryStringParameters"] is None
    assert [dev_company(h) for h in ("Bearer dev-12", "bearer dev-3", "Bearer dev-0", "dev-1", None)] == [
        12, 3, None, None, None]
