"""One set of local servers per `.local` folder: `serve` and CLI commands share them, no command stops a
server another process uses, a stale pid file is recognised, and tokens survive a restart of the servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from leadimport_local.cli import main
from leadimport_local.runner import LocalServices
from leadimport_local.server import running_server
from leadimport_local.shared_servers import ServersInUseError, running_postgres, running_redis

pytestmark = pytest.mark.e2e
REPO = Path(__file__).parents[2]
CEILING = 600  # seconds: a generous ceiling for a subprocess on a busy machine, not a deadline


@pytest.fixture
def shared_local(tmp_path: Path, redis_prefix: str) -> Iterator[Path]:
    """A `.local` of its own, with no DATABASE_URL / REDIS_URL: commands use its shared servers. Stopped after."""
    local = tmp_path / "local"
    saved = dict(os.environ)
    for key in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(key, None)
    os.environ.update({"LEADIMPORT_LOCAL_DIR": str(local), "REDIS_KEY_PREFIX": redis_prefix})
    try:
        yield local
    finally:
        from leadimport import roots

        try:
            LocalServices.for_cli().stop_shared()
        finally:
            os.environ.clear()
            os.environ.update(saved)
            roots.reset()
        assert not _server_processes(local), "servers were left running"


def _server_processes(local: Path) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(local) in cmdline and ("postgres" in cmdline or "redis-server" in cmdline):
                found.append(cmdline)
    return found


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it: its own process, next to this one."""
    return subprocess.run([sys.executable, "-m", "leadimport_local.cli", *argv], capture_output=True, text=True,
                          timeout=CEILING, cwd=REPO, env=env or dict(os.environ), check=False)


def _postgres_dir(local: Path) -> Path:
    return LocalServices.for_cli()._postgres_dir()


def test_commands_beside_serve_leave_its_servers_running(shared_local: Path) -> None:
    # Given `leadimport serve` on the folder's servers (it starts them)
    env = dict(os.environ)  # a terminal's: the pipeline points this process's environment at the servers
    with running_server(port=0, workers=0, quiet=True) as server:
        auth = {"Authorization": "Bearer dev-1"}
        assert requests.get(f"{server.url}/api/imports", headers=auth, timeout=30).status_code == 200
        pg_port = running_postgres(_postgres_dir(shared_local) / "pgdata")
        redis = running_redis(shared_local / "redis")
        assert pg_port and redis

        # When commands run in other processes meanwhile
        owners = cli("owners", "--json", env=env)
        tokens = cli("tokens", "--schedule", "1", "+19518761336", env=env)

        # Then they answered from the same servers, and the page's API still works on them
        assert owners.returncode == 0, owners.stderr
        assert ("schedule", "1") in [(o["type"], str(o["id"])) for o in json.loads(owners.stdout)]
        assert tokens.returncode == 0, tokens.stderr
        assert requests.get(f"{server.url}/api/imports", headers=auth, timeout=30).status_code == 200
        assert requests.get(f"{server.url}/local/owners", headers=auth, timeout=30).status_code == 200
        assert running_postgres(_postgres_dir(shared_local) / "pgdata") == pg_port
        assert running_redis(shared_local / "redis") == redis

        # And nothing stops them while serve uses them
        with pytest.raises(ServersInUseError):
            LocalServices.for_cli().stop_shared()
        assert cli("stop", env=env).returncode == 2
        assert requests.get(f"{server.url}/api/imports", headers=auth, timeout=30).status_code == 200

    # Once serve is gone they keep running for the next command, until `leadimport stop`
    assert running_postgres(_postgres_dir(shared_local) / "pgdata") == pg_port
    stopped = cli("stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert running_postgres(_postgres_dir(shared_local) / "pgdata") is None
    assert running_redis(shared_local / "redis") is None
    assert not _server_processes(shared_local)


def test_tokens_of_an_earlier_import_survive_a_restart_of_the_servers(
        shared_local: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a lead imported by one command
    csv_file = tmp_path / "one.csv"
    csv_file.write_text("caller_id,interest\n+16785177520,boats\n")
    assert main(["import", str(csv_file), "--schedule", "1", "--workers", "1", "--json"]) == 0
    capsys.readouterr()

    # When the servers are stopped and a later command starts them again
    assert main(["stop"]) == 0
    assert running_redis(shared_local / "redis") is None
    capsys.readouterr()
    assert main(["tokens", "--schedule", "1", "+16785177520"]) == 0

    # Then the lead's tokens are there (Redis saved them on stop and loaded them on start)
    assert json.loads(capsys.readouterr().out) == {"interest": "boats"}


def test_a_stale_pid_file_is_replaced_and_a_live_server_is_reused(shared_local: Path) -> None:
    # Given servers started by one command, then recorded pid files whose processes are gone
    with LocalServices.for_cli() as services:
        first = services.database_url
    assert LocalServices.for_cli().stop_shared() == ["postgres", "redis"]
    pgdata = _postgres_dir(shared_local) / "pgdata"
    (pgdata / "postmaster.pid").write_text(f"{2**22 + 7}\n{pgdata}\n0\n5432\n\n127.0.0.1\n0 0\nready\n")
    (shared_local / "redis" / "server.json").write_text(json.dumps({"pid": 2**22 + 7, "port": 1}))

    # When a command needs the servers: it starts new ones; the next command reuses those
    with LocalServices.for_cli() as services:
        second = services.database_url
        with LocalServices.for_cli() as other:
            assert (other.database_url, other.redis_url) == (services.database_url, services.redis_url)
    assert first and second and running_postgres(pgdata) is not None
