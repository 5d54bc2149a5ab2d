"""The upload page in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
fill the wizard's first step, upload the CSV straight to the moto bucket with the presigned POST,
confirm the preview, follow the progress to the end, check the counts, download errors.csv, and
save a screenshot of the finished page to docs/upload-page.png.

Needs the `chromium` apt package and the `playwright` pip package (no `playwright install`: the
system browser is used); skipped with a message when either is missing."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from leadimport_local.runner import LocalServices
from leadimport_local.server import LocalServer, running_server

from leadimport.store.db import Database, connect

pytestmark = [pytest.mark.e2e]
ROOT = Path(__file__).parents[2]
DATA = ROOT / "tests" / "data"
SCREENSHOT = ROOT / "docs" / "upload-page.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STEP_TIMEOUT_MS = 20_000


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip("no /usr/bin/chromium: install Debian's browser with `apt-get install -y chromium`")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright; the system Chromium is used,"
                    " no `playwright install`)")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1100, "height": 640}, accept_downloads=True)
        context.set_default_timeout(STEP_TIMEOUT_MS)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield page
        finally:
            context.close()


@pytest.fixture
def local_server(services: LocalServices, database_url: str, redis_prefix: str,
                 tmp_path: Path) -> Iterator[LocalServer]:
    assert services.redis_url
    env = {"DATABASE_URL": database_url, "REDIS_URL": services.redis_url, "REDIS_KEY_PREFIX": redis_prefix,
           "LEADIMPORT_LOCAL_DIR": str(tmp_path / "local")}
    with running_server(port=0, workers=1, quiet=True, env=env) as server:
        yield server


UNNAMED_CONTROLS = """() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter((c) => !c.closest("[hidden]") && c.type !== "hidden")
  .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute("aria-label") && !c.textContent.trim())
  .map((c) => c.id || c.outerHTML)"""


def assert_step_is_announced(page: Any, step: str) -> None:
    """The step is marked aria-current, focus is on its heading, and every visible control has a name."""
    assert page.get_attribute(f"#steps li[data-step='{step}']", "aria-current") == "step"
    assert page.locator("#steps li[aria-current]").count() == 1
    assert page.evaluate("() => document.activeElement.closest('section')?.id") == step
    assert page.evaluate(UNNAMED_CONTROLS) == []


def test_the_upload_page_imports_a_file_end_to_end(local_server: LocalServer, browser_page: Any,
                                                   tmp_path: Path) -> None:
    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)

    # Given the page, with the company's schedules and offers loaded into the owner select
    page.goto(f"{local_server.url}/")
    page.wait_for_selector("#owner option[value='schedule:1']", state="attached")
    assert page.input_value("#company") == "1"
    assert page.evaluate(UNNAMED_CONTROLS) == []

    # When the user fills the first step and uploads the seed example
    page.fill("#name", "Seed example (browser)")
    page.select_option("#owner", "schedule:1")
    page.select_option("#scrub-scope", "company")
    page.check("#scrub-dialed")
    page.check("#lm-expire_existing")
    page.fill("#lm-hours_until_expiration", "72")
    page.fill("#def-lead_priority", "5")
    page.set_input_files("#file", str(DATA / "seed_example.csv"))
    page.click("#submit")

    # Then the preview shows the file's facts, the proposed mapping and the rows' outcomes
    page.wait_for_selector("#preview:not([hidden])")
    assert_step_is_announced(page, "preview")
    assert page.text_content("#pv-encoding") == "utf-8"
    assert page.text_content("#pv-delimiter") == "comma (,)"
    assert page.input_value("#mapping input[data-column='caller_id']") == "caller_id"
    assert page.locator("#mapping tbody tr").count() == 6
    assert page.locator("#preview-rows tbody tr").count() == 3
    assert page.locator("#preview-rows .badge.ok").count() == 3

    # When the user starts the import, the progress step follows it to the result
    page.click("#start")
    page.wait_for_selector("#result:not([hidden])")
    assert_step_is_announced(page, "result")
    assert page.get_attribute("#bar", "role") == "progressbar" and page.get_attribute("#bar", "aria-valuenow")
    assert page.text_content("#rs-status") == "completed"
    assert page.text_content("#rs-created") == "3"
    assert page.text_content("#rs-rejected") == "0"
    assert page.text_content("#rs-total") == "3"
    assert "No rejected rows" in page.text_content("#rs-rejections")

    # errors.csv downloads (with the dev authorizer's header) from the page
    with page.expect_download() as download:
        page.click("#errors-link")
    assert download.value.suggested_filename.endswith("-errors.csv")
    first_line = Path(download.value.path()).read_text(encoding="utf-8").splitlines()[0]
    assert first_line.endswith("row,reason,message")

    assert page.is_hidden("#alert"), page.text_content("#alert")
    assert not problems, problems
    # docs/upload-page.png is refreshed on request only, so a test run leaves the working tree clean
    target = SCREENSHOT if os.environ.get("LEADIMPORT_UPDATE_SCREENSHOT") else tmp_path / "upload-page.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 10_000

    # The import has its own URL: after a reload the page opens it again, with its counts and rejected rows
    assert re.search(r"#/imports/[0-9a-f-]{36}$", page.url), page.url
    page.reload()
    page.wait_for_selector("#result:not([hidden])")
    assert page.text_content("#rs-created") == "3" and page.text_content("#rs-status") == "completed"
    page.wait_for_selector("#rs-errors tbody tr")
    assert "No rejected rows" in page.text_content("#rs-errors")
    # ... and it is in the company's recent imports, as a link to that URL
    page.wait_for_selector("#history-table a")
    assert page.get_attribute("#history-table a", "href") == "#/imports/" + page.url.split("#/imports/")[1]

    # Undo puts back what it did; the button goes away
    page.click("#undo")
    page.wait_for_selector("#alert:not([hidden])")
    assert "Undone: 3 leads" in page.text_content("#alert")
    assert page.is_hidden("#undo")
    assert not problems, problems


def test_an_import_with_rejected_rows_opens_by_url_with_reasons_in_words(local_server: LocalServer,
                                                                         browser_page: Any) -> None:
    import requests

    # Given an import with a bad phone, made through the API (as a script or another tab would)
    auth = {"Authorization": "Bearer dev-1"}
    created = requests.post(f"{local_server.url}/api/imports", headers=auth, timeout=30,
                            json={"owner": {"type": "schedule", "id": 1}, "name": "with a bad row"}).json()
    post = created["upload"]["post"]
    up = requests.post(post["url"], data=post["fields"], timeout=30,
                       files={"file": ("bad.csv", b"caller_id\n+19518761336\n1-800-FLOWERS\n", "text/csv")})
    assert up.status_code == 204, up.text

    # When the user opens its URL
    page = browser_page
    page.goto(f"{local_server.url}/#/imports/{created['id']}")

    # Then the page follows it to its result, and the rejected row reads in words beside its code
    page.wait_for_selector("#result:not([hidden])", timeout=600_000)
    assert page.text_content("#rs-rejected") == "1"
    page.wait_for_selector("#rs-errors tbody tr td code")
    row = page.text_content("#rs-errors tbody tr")
    assert "not a valid phone number" in row and "invalid_phone" in row
    assert "not a valid phone number" in page.text_content("#rs-rejections")


def test_cancel_while_importing_from_the_page(local_server: LocalServer, browser_page: Any, db: Database) -> None:
    import requests

    # Given a large import under way, held running: its cap is 1 and a stand-in holds its only slot, so its chunks
    # wait their turn (a fast machine would otherwise finish 60,000 rows before the click)
    auth = {"Authorization": "Bearer dev-1"}
    created = requests.post(f"{local_server.url}/api/imports", headers=auth, timeout=30,
                            json={"owner": {"type": "schedule", "id": 1}, "name": "to cancel",
                                  "max_concurrency": 1}).json()
    holder = connect(db.params)
    holder.run("BEGIN")
    holder.run("SELECT pg_advisory_xact_lock(hashtextextended(:i, 0))", i=created["id"])
    try:
        body = "caller_id,n\n" + "".join(f"+1951{5550000 + i:07d},{i}\n" for i in range(60_000))
        post = created["upload"]["post"]
        up = requests.post(post["url"], data=post["fields"], timeout=600,
                           files={"file": ("big.csv", body.encode(), "text/csv")})
        assert up.status_code == 204, up.text

        # When the user opens it and, once its file is being read or imported, presses Cancel. (Pressed before the
        # splitter took the upload, the cancel lands on an import still awaiting_upload: that case has its own test,
        # test_api.py::test_a_cancel_before_the_upload_is_read_says_the_file_was_never_read_and_lists_it.)
        page = browser_page
        page.goto(f"{local_server.url}/#/imports/{created['id']}")
        page.wait_for_selector("#progress:not([hidden])")
        page.wait_for_function("['splitting', 'processing'].includes(document.getElementById('pg-status').textContent)",
                               timeout=600_000)
        page.click("#pg-cancel")
    finally:
        holder.run("ROLLBACK")  # the chunks waiting their turn come back and are skipped
        holder.close()

    # Then it ends cancelled once every chunk sent is counted (the page waits for counts_final), with its rows not
    # processed counted and the errors download offered
    page.wait_for_selector("#result:not([hidden])", timeout=600_000)
    assert page.text_content("#rs-status") == "cancelled"
    done = requests.get(f"{local_server.url}/api/imports/{created['id']}", headers=auth, timeout=30).json()
    assert done["status"] == "cancelled" and done["counts_final"] and done["unprocessed_rows"] > 0
    assert done["processed_rows"] + done["unprocessed_rows"] == done["total_rows"] > 0
    assert page.text_content("#rs-read" if done["unread_from_row"] else "#rs-total") == f"{done['total_rows']:,}"
    assert page.is_visible("#errors-link")
