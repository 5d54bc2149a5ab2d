"""The CLI covers the API's operations: import, list, undo, cancel, status; exit 2 for the user's mistakes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
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


def test_help_explains_every_option_with_examples_and_exit_codes() -> None:
    from leadimport_local.cli import build_parser

    parser = build_parser()
    top = parser.format_help()
    assert "examples:" in top and "exit codes:" in top and "2  your mistake" in top
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        for action in command._actions:
            assert action.help, f"`{name} {'/'.join(action.option_strings) or action.dest}` has no help"
    assert "schedule with this id" in sub.choices["import"].format_help()
    assert "schedule with this id" in sub.choices["tokens"].format_help()


def test_a_dry_run_says_what_would_happen(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = cli_env / "dry.csv"
    csv_file.write_text("caller_id\n+19518761336\nnot a phone\n")
    options = cli_env / "dry.json"
    options.write_text('{"dry_run": true}')
    code, out = run(capsys, "import", str(csv_file), "--schedule", "1", "--options", str(options))
    assert code == 0
    assert "leads that would be created          1" in out and "rows that would be rejected          1" in out
    assert "leads created" not in out and "rows rejected" not in out


def test_a_rejected_file_is_explained_once_and_unknown_ids_exit_2(cli_env: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    csv_file = cli_env / "no-phone.csv"
    csv_file.write_text("name,email\nAda,ada@example.com\n")
    code = main(["import", str(csv_file), "--schedule", "1"])
    out, err = capsys.readouterr()
    assert code == 2
    ours = [line for line in err.splitlines() if line.startswith("leadimport: ")]  # not the handlers' logs
    assert len(ours) == 1 and "no caller_id column" in ours[0]
    assert "caller_id column" not in out
    unknown = "00000000-0000-0000-0000-000000000000"
    for argv in (["status", unknown], ["errors", unknown], ["errors", unknown, "--csv"], ["undo", unknown]):
        assert main(argv) == 2, argv


def test_a_closed_pipe_ends_quietly(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given an import with more rejected rows than a pipe holds
    csv_file = cli_env / "bad.csv"
    csv_file.write_text("caller_id,notes\n" + "".join(f"not a phone {i},{'x' * 80}\n" for i in range(2_000)))
    code, out = run(capsys, "import", str(csv_file), "--schedule", "1", "--json")
    import_id = json.loads(out)["id"]

    # When its errors go to a reader that stops after one line (`| head -1`)
    proc = subprocess.Popen([sys.executable, "-m", "leadimport_local.cli", "errors", import_id],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ))
    assert proc.stdout is not None and proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=600)

    # Then the command ends without a traceback
    assert proc.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err
