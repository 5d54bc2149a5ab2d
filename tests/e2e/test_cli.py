"""The CLI covers the API's operations: import, list, undo, cancel, status; exit 2 for the user's mistakes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from leadimport_local.cli import main
from leadimport_local.runner import LocalServices

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli_env(services: LocalServices, database_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[Path]:
    saved = dict(os.environ)
    os.environ.update({"DATABASE_URL": database_url, "REDIS_URL": services.redis_url or "",
                       "REDIS_KEY_PREFIX": redis_prefix, "LEADIMPORT_LOCAL_DIR": str(tmp_path / "local")})
    try:
        yield tmp_path
    finally:
        os.environ.clear()
        os.environ.update(saved)
        from leadimport import roots

        roots.reset()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_import_list_undo_and_the_exit_codes(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = cli_env / "list.csv"
    csv_file.write_text("caller_id,interest\n+19518761336,cars\n+16785177520,boats\n")
    code, out = run(capsys, "import", str(csv_file), "--schedule", "1", "--workers", "1", "--json")
    imported = json.loads(out)
    assert code == 0 and imported["created_leads"] == 2
    code, out = run(capsys, "import", str(csv_file), "--schedule", "1", "--workers", "1", "--json")
    assert code == 0 and (json.loads(out)["created_leads"], json.loads(out)["updated_leads"]) == (0, 2)
    code, out = run(capsys, "list", "--json")
    assert code == 0 and imported["id"] in [i["id"] for i in json.loads(out)]
    code, out = run(capsys, "undo", imported["id"], "--json")
    assert code == 0 and json.loads(out)["undone_leads"] == 2
    assert run(capsys, "cancel", imported["id"])[0] == 2  # a finished import cannot be cancelled
    assert run(capsys, "status", "00000000-0000-0000-0000-000000000000")[0] == 2  # no such import


def test_errors_lists_the_rejected_rows_and_with_warnings_each_rows_warnings(cli_env: Path,
                                                                            capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = cli_env / "damaged.csv"
    csv_file.write_bytes(b'caller_id,name,notes\n+19518761336,Ann\x00,ok\n+16785177520,"oops\n+13125550123,Cy,x\n')
    code, out = run(capsys, "import", str(csv_file), "--schedule", "1", "--workers", "1", "--json")
    imported = json.loads(out)
    assert code == 0 and (imported["created_leads"], imported["rejections"]) == (2, {"malformed_row": 1})
    code, out = run(capsys, "errors", imported["id"])
    assert code == 0 and [(e["row"], e["reason"]) for e in json.loads(out)] == [(2, "malformed_row")]
    code, out = run(capsys, "errors", imported["id"], "--warnings")
    assert code == 0 and [(w["row"], w["code"], w["column"]) for w in json.loads(out)] == [(1, "nul_removed", "name")]
    assert run(capsys, "errors", "00000000-0000-0000-0000-000000000000", "--warnings")[0] == 2  # no such import
