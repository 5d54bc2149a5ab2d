"""The upload page in a real headless Chromium (Debian's /usr/bin/chromium, driven by Playwright): the whole
wizard with every option group (nothing chosen for the user, schedule-only options for schedules only, every API
error at its field at once), the upload straight to the moto bucket with the presigned POST, the preview with its
totals and a changed mapping, the progress, the result with its rejected rows in words, errors.csv, the detail page
after a reload, undo; an import opened by its URL; Cancel while it runs. axe-core checks each step (0 serious or
critical violations), and a screenshot of each step goes to docs/ with LEADIMPORT_UPDATE_SCREENSHOT=1.

Needs the `chromium` apt package and the `playwright` pip package (no `playwright install`: the
system browser is used); skipped with a message when either is missing. axe-core comes from `make install` (npm)."""

from __future__ import annotations

import os
import re
import shutil
import time
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
DOCS = ROOT / "docs"
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


AXE_JS = ROOT / ".local" / "npm" / "node_modules" / "axe-core" / "axe.min.js"  # make install puts it there
AXE_RUN = """async () => {
  const r = await axe.run(document, { resultTypes: ["violations"] });
  return r.violations.filter((v) => ["serious", "critical"].includes(v.impact))
    .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.slice(0, 5).map((n) => n.target.join(" ")).join(", ")}`);
}"""


@pytest.fixture
def axe() -> Any:
    """axe-core on the page as it is: no serious or critical violation. Without axe-core (make install fetches it
    with npm) the check is a no-op with a warning; test_axe_core_is_installed then skips saying why."""
    if not AXE_JS.exists():
        import warnings

        warnings.warn(f"axe-core not found at {AXE_JS}: accessibility not checked (run make install with npm)",
                      stacklevel=1)
        return lambda page, step: None

    def check(page: Any, step: str) -> None:
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.add_script_tag(path=str(AXE_JS))
        violations = page.evaluate(AXE_RUN)
        assert violations == [], f"axe-core on the {step} step: {violations}"

    return check


def test_axe_core_is_installed() -> None:
    if not AXE_JS.exists():
        pytest.skip(f"axe-core is not installed at {AXE_JS}: `make install` fetches it with npm (pinned in "
                    "infra/axe/package-lock.json); without npm the browser tests skip their accessibility check")
    assert "axe" in AXE_JS.read_text(encoding="utf-8")[:2000]


def shoot(page: Any, name: str, tmp_path: Path, selector: str | None = None) -> None:
    """A screenshot of the step: into docs/ with LEADIMPORT_UPDATE_SCREENSHOT=1 (the README shows them), else into
    the test's folder, so a test run leaves the working tree clean."""
    folder = DOCS if os.environ.get("LEADIMPORT_UPDATE_SCREENSHOT") else tmp_path
    target = folder / f"upload-page-{name}.png"
    # Of an element, not full_page: a full-page screenshot resizes the viewport, and Chromium then lost the next
    # click on the form's button here.
    page.locator(selector or "main").screenshot(path=str(target))
    assert target.stat().st_size > 5_000


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


def api_import(server: LocalServer, content: str, **options: Any) -> dict[str, Any]:
    """An import made through the API (as a script would), followed to its end (generous ceiling: an event)."""
    import requests

    auth = {"Authorization": "Bearer dev-1"}
    created = requests.post(f"{server.url}/api/imports", headers=auth, timeout=30,
                            json={"owner": {"type": "schedule", "id": 1}, **options}).json()
    post = created["upload"]["post"]
    up = requests.post(post["url"], data=post["fields"], timeout=60,
                       files={"file": ("f.csv", content.encode(), "text/csv")})
    assert up.status_code == 204, up.text
    ceiling = time.monotonic() + 600
    while time.monotonic() < ceiling:
        r = requests.get(f"{server.url}/api/imports/{created['id']}", headers=auth, timeout=30).json()
        if r["status"] in ("completed", "failed") or (r["status"] == "cancelled" and r["counts_final"]):
            return dict(r)
        time.sleep(0.2)
    raise AssertionError("the import did not end within 600 s")


# What the wizard's file holds (the demo data: +12025550143 is blacklisted, +12125550101 opted out, +15125550133
# has a call with the disposition not_interested), and what the import makes of each row.
WIZARD_CSV = """Phone Number,interest,email
+19518761336,cars,john@gmail.com
+16785177520,houses,mary@gmail.com
+12025550143,boats,x@example.com
1-800-FLOWERS,bikes,a@example.com
+16785177520,dup,mary2@gmail.com
+15125550133,planes,p@example.com
+12125550101,vans,v@example.com
"""


def field_errors(page: Any) -> dict[str, str]:
    """The errors shown at the form's fields: {data-field of the holder: message}."""
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.field-error')]
        .map((p) => [p.closest('[data-field]').dataset.field, p.textContent]))""")


def test_the_whole_wizard_from_the_page(local_server: LocalServer, browser_page: Any, axe: Any,
                                        tmp_path: Path) -> None:
    page = browser_page
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "status of 422" not in msg.text else None)  # the 422s below are expected
    # Given the caller_id of the file's first row already has a live lead on schedule 1
    assert api_import(local_server, "caller_id\n+19518761336\n", name="earlier list")["created_leads"] == 1

    # Given the page, with the company's lists loaded: nothing is chosen for the user
    page.goto(f"{local_server.url}/")
    page.wait_for_selector("#def-buyers input[type=checkbox]", state="attached")
    assert page.input_value("#company") == "1"
    assert page.is_disabled("#owner") and page.input_value("#owner") == ""
    assert not page.is_checked("#owner-type-schedule") and not page.is_checked("#owner-type-offer")
    assert page.is_hidden("[data-field='lead_management.manage_schedule']")  # schedule options: not before a schedule
    assert page.evaluate(UNNAMED_CONTROLS) == []
    axe(page, "details (empty)")

    # When the user presses Next Step at once, every missing choice is said at its field, all at once
    page.click("#submit")
    assert field_errors(page) == {"owner": "Choose whether the leads go to a schedule or an offer.",
                                  "file": "Choose the CSV file to import."}
    assert "Please fix these 2 things" in page.text_content("#form-errors")

    # Options apply where they make sense: an offer has no Manage Schedule, Copy To or Schedule Leads?
    page.check("#owner-type-offer")
    assert page.is_hidden("#lm-copy_from") and page.is_hidden("#lm-schedule_leads") and page.is_hidden("#lm-manage-stop")
    assert [o for o in page.eval_on_selector_all("#owner option", "os => os.map(o => o.textContent)")] == [
        "Choose a offer…", "Debt Relief - Inbound", "Credit Repair - Inbound"]
    page.check("#owner-type-schedule")
    assert page.is_visible("#lm-copy_from") and page.is_visible("#lm-schedule_leads") and page.is_visible("#lm-manage-stop")
    assert page.input_value("#owner") == ""  # still nothing chosen
    page.select_option("#owner", label="New Debt Leads - Call then SMS")

    # ... every group of the guide, in its order, picked by name
    page.fill("#name", "Spring list (browser)")
    assert page.is_disabled("#scrub-dialed")  # history criteria need a scope
    page.check("#scrub-scope-company")
    page.check("#scrub-dispositions input[value='not_interested']")
    page.check("#scrub-opted_out")
    csv_path = tmp_path / "spring.csv"
    csv_path.write_text(WIZARD_CSV, encoding="utf-8")
    page.set_input_files("#file", str(csv_path))
    page.check("#lm-expire_existing")
    page.check("#lm-manage-restart")  # contradicts Expire Existing: the API says so below
    page.select_option("#lm-add_to_schedule_id", label="Dormant Re-engagement")
    page.select_option("#lm-copy_from", label="Debt Relief - Inbound")
    page.fill("#lm-hours_until_expiration", "72")
    page.fill("#lm-max_contact_attempts", "3")
    page.select_option("#def-traffic_source_id", label="Facebook Ads")
    page.check("#def-buyers input[value='1']")
    page.check("#def-buyers input[value='2']")
    page.fill("#def-lead_priority", "5000")  # over 1000
    page.fill("#def-sub_id", "spring")
    page.click("#add-data")
    page.fill("#additional-data tbody tr:nth-child(1) [data-kv='key']", "list")
    page.fill("#additional-data tbody tr:nth-child(1) [data-kv='value']", "spring")
    page.click("#add-data")
    page.fill("#additional-data tbody tr:nth-child(2) [data-kv='key']", "email")  # reserved
    page.fill("#additional-data tbody tr:nth-child(2) [data-kv='value']", "x")
    page.check("#val-require_email")
    page.fill("#val-allowed_countries", "US, Narnia")
    page.click("#advanced summary")
    page.fill("#opt-default_country", "US")
    page.select_option("#opt-phone_validation", "valid")
    page.select_option("#opt-duplicates", "first")
    page.fill("#opt-max_concurrency", "2")
    assert page.evaluate(UNNAMED_CONTROLS) == []
    axe(page, "details (filled)")

    # Then the API's errors are shown at their fields, all of them at once, in words. (Next Step by the keyboard:
    # headless Chromium scrolled the page ~300 px between the mouse's down and up after the inputs above, so the
    # mouse's click landed on nothing.)
    submit = page.locator("#submit")
    submit.focus()
    submit.press("Enter")
    page.wait_for_selector("[data-field='defaults.lead_priority'] > .field-error")
    errors = field_errors(page)
    assert set(errors) == {"defaults.lead_priority", "additional_data", "validations.allowed_countries"}, errors
    assert "Narnia" in errors["validations.allowed_countries"] and "reserved" in errors["additional_data"]
    assert not any("Value error" in m for m in errors.values())
    assert page.get_attribute("#def-lead_priority", "aria-invalid") == "true"
    axe(page, "details (errors)")
    page.fill("#def-lead_priority", "5")
    page.click("#additional-data tbody tr:nth-child(2) button")
    page.fill("#val-allowed_countries", "US, CA")
    submit.focus()
    submit.press("Enter")  # the contradiction comes next, at Manage Schedule
    page.wait_for_selector("[data-field='lead_management.manage_schedule'] > .field-error")
    assert list(field_errors(page)) == ["lead_management.manage_schedule"]
    assert "cannot be combined" in field_errors(page)["lead_management.manage_schedule"]
    page.uncheck("#lm-expire_existing")
    assert field_errors(page) == {} and page.is_hidden("#form-errors")  # fixing a group takes back its errors
    shoot(page, "1-details", tmp_path)
    submit.focus()
    submit.press("Enter")

    # Then the preview tells what the import would do with the whole file, the existing lead included
    page.wait_for_selector("#preview:not([hidden])", timeout=600_000)
    assert_step_is_announced(page, "preview")
    assert page.text_content("#pv-scope") == "The whole file: 7 rows."
    assert page.input_value("#mapping input[data-column='Phone Number']") == "caller_id"
    expected = {"pv-created": "1", "pv-updated": "1", "pv-rejected": "5", "pv-rows": "7"}
    assert {k: page.text_content(f"#{k}") for k in expected} == expected
    reasons = page.text_content("#pv-rejections")
    for code in ("blacklisted", "invalid_phone", "duplicate_in_file", "scrubbed_disposition", "scrubbed_opted_out"):
        assert code in reasons, (code, reasons)
    assert "updated with the row's values" in page.text_content("#pv-existing")
    assert page.locator("#preview-rows tbody tr").count() == 7
    assert page.locator("#preview-rows tbody tr.rejected").count() == 5
    axe(page, "preview")
    shoot(page, "2-preview", tmp_path)

    # When the mapping changes, the preview is computed again: interest as the phone makes every row invalid
    # (each input's change, on leaving it, asks again; the page keeps the answer to the last one)
    page.fill("#mapping input[data-column='Phone Number']", "phone")
    page.fill("#mapping input[data-column='interest']", "caller_id")
    page.press("#mapping input[data-column='interest']", "Tab")
    page.wait_for_function("document.getElementById('pv-created').textContent === '0'", timeout=600_000)
    assert page.text_content("#pv-rejected") == "7" and "invalid_phone" in page.text_content("#pv-rejections")
    page.fill("#mapping input[data-column='Phone Number']", "caller_id")
    page.fill("#mapping input[data-column='interest']", "interest")
    page.press("#mapping input[data-column='interest']", "Tab")
    page.wait_for_function("document.getElementById('pv-created').textContent === '1'"
                           " && document.getElementById('pv-updating').textContent.startsWith('Preview updated')",
                           timeout=600_000)

    # When the user starts it, the progress step follows it to the result, which matches the preview
    page.click("#start")
    page.wait_for_selector("#result:not([hidden])", timeout=600_000)
    assert_step_is_announced(page, "result")
    assert page.get_attribute("#bar", "role") == "progressbar" and page.get_attribute("#bar", "aria-valuenow")
    assert page.text_content("#rs-status") == "completed"
    assert (page.text_content("#rs-created"), page.text_content("#rs-updated"), page.text_content("#rs-rejected"),
            page.text_content("#rs-total")) == ("1", "1", "5", "7")
    page.wait_for_selector("#rs-errors tbody tr td code")
    assert page.locator("#rs-errors tbody tr").count() == 5
    assert "on the company's blacklist" in page.text_content("#rs-errors") or "blacklist" in page.text_content("#rs-errors")
    axe(page, "result")
    shoot(page, "4-result", tmp_path)

    # errors.csv downloads (with the dev authorizer's header) from the page
    with page.expect_download() as download:
        page.click("#errors-link")
    assert download.value.suggested_filename.endswith("-errors.csv")
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert lines[0] == "Phone Number,interest,email,row,reason,message" and len(lines) == 6

    # The import has its own URL: after a reload the detail page opens it again, with its counts and rejected rows
    assert re.search(r"#/imports/[0-9a-f-]{36}$", page.url), page.url
    page.reload()
    page.wait_for_selector("#result:not([hidden])")
    assert page.text_content("#rs-created") == "1" and page.text_content("#rs-status") == "completed"
    page.wait_for_selector("#rs-errors tbody tr td code")
    assert page.locator("#rs-errors tbody tr").count() == 5
    # ... and it is in the company's recent imports, as a link to that URL
    page.wait_for_selector("#history-table a")
    assert page.get_attribute("#history-table a", "href") == "#/imports/" + page.url.split("#/imports/")[1]
    assert page.text_content("#history-table tbody tr:nth-child(2) a") == "earlier list"
    shoot(page, "5-history", tmp_path, selector="#history")

    # Undo puts back what it did; the button goes away
    page.click("#undo")
    page.wait_for_selector("#alert:not([hidden])")
    assert "Undone: 1 leads" in page.text_content("#alert")
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


def test_cancel_while_importing_from_the_page(local_server: LocalServer, browser_page: Any, db: Database, axe: Any,
                                             tmp_path: Path) -> None:
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
        assert_step_is_announced(page, "progress")
        axe(page, "progress")
        shoot(page, "3-progress", tmp_path)
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
    axe(page, "result (cancelled)")


def test_an_import_cancelled_before_its_file_was_read_says_so(local_server: LocalServer, browser_page: Any,
                                                              axe: Any) -> None:
    import requests

    # Given an import cancelled before its upload arrived, whose file then arrives all the same
    auth = {"Authorization": "Bearer dev-1"}
    created = requests.post(f"{local_server.url}/api/imports", headers=auth, timeout=30,
                            json={"owner": {"type": "schedule", "id": 1}, "name": "cancelled early"}).json()
    assert requests.post(f"{local_server.url}/api/imports/{created['id']}/cancel", headers=auth,
                         timeout=30).status_code == 200
    page = browser_page
    page.goto(f"{local_server.url}/#/imports/{created['id']}")
    page.wait_for_selector("#result:not([hidden])")
    assert page.text_content("#rs-total") == "–" and "no file had arrived" in page.text_content("#rs-total-label")
    post = created["upload"]["post"]
    up = requests.post(post["url"], data=post["fields"], timeout=60,
                       files={"file": ("late.csv", b"caller_id\n+19518761336\n+16785177520\n", "text/csv")})
    assert up.status_code == 204, up.text
    ceiling = time.monotonic() + 600  # the splitter records the late upload: an event, with a generous ceiling
    while requests.get(f"{local_server.url}/api/imports/{created['id']}", headers=auth,
                       timeout=30).json()["unread_from_row"] != 1:
        assert time.monotonic() < ceiling, "the late upload was not recorded"
        time.sleep(0.2)

    # When the page opens it again, it says none of the file was read: rows in file unknown, not 0
    page.reload()
    page.wait_for_selector("#result:not([hidden])")
    assert page.text_content("#rs-status") == "cancelled"
    assert page.text_content("#rs-read") == "0" and page.text_content("#rs-total") == "unknown"
    assert "not read from row 1 on" in page.text_content("#rs-total-label")
    assert page.is_visible("#errors-link")
    with page.expect_download() as download:
        page.click("#errors-link")
    lines = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 3 and lines[1].split(",")[2] == "unprocessed"  # every row of the file, unprocessed
    axe(page, "result (cancelled before the file was read)")
