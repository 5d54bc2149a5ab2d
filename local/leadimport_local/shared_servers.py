"""One PostgreSQL and one Redis per `.local` folder, shared by every command and `leadimport serve`.

A command attaches to the servers that run on its `.local` (serve's, or the ones a previous command
started) and leaves them running when it ends, so the next command answers at once. Nothing but
`leadimport stop` (or `reset_servers` in tests and benchmarks) stops them, and it refuses while any
process uses them.

* Who uses the servers: every process that attached holds a shared `flock` on `.local/servers.users`
  until it is done (the kernel drops it when the process dies, however it dies). Stopping takes an
  exclusive lock on that file without waiting: it fails while anybody holds the shared one.
* Starting and stopping are serialised by an exclusive `flock` on `.local/servers.lock`, so two
  commands started together start one set of servers.
* A running PostgreSQL is recognised by its own `postmaster.pid` (pid, port, "ready"), checked against
  a live postgres process and a port that accepts connections; Redis by `redis/server.json` (pid and
  port), checked the same way. A file whose process is gone is stale: it is replaced, and nothing is
  killed for it.
* The servers run in their own session: Ctrl-C in the terminal of the command that started them does
  not reach them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from leadimport_local.servers import LocalPostgres, LocalRedis

SERVERS_LOCK = "servers.lock"
SERVERS_USERS = "servers.users"
REDIS_RECORD = "server.json"


class ServersInUseError(RuntimeError):
    """The servers cannot be stopped: a process (serve, a command) is using them."""


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _alive(pid: int, name: str) -> bool:
    """A live process whose command line names `name` (a recycled pid is not our server)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return name.encode() in cmdline


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class _Postmaster:
    pid: int
    port: int
    status: str


def _postmaster(pgdata: Path) -> _Postmaster | None:
    """What postmaster.pid says: pid (line 1), port (line 4), status (line 8: starting/ready/stopping)."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
        return _Postmaster(int(lines[0]), int(lines[3]), lines[7].strip() if len(lines) > 7 else "")
    except (OSError, ValueError, IndexError):
        return None


def running_postgres(pgdata: Path, timeout: float = 60.0) -> int | None:
    """The port of the PostgreSQL that runs on `pgdata`, or None when none does (a stale pid file is removed).
    Waits while a server is starting or stopping there."""
    deadline = time.monotonic() + timeout
    while True:
        pm = _postmaster(pgdata)
        if pm is None:
            if not (pgdata / "postmaster.pid").exists():
                return None
        elif not _alive(pm.pid, "postgres"):
            with contextlib.suppress(FileNotFoundError):
                (pgdata / "postmaster.pid").unlink()  # its server is gone: nothing uses it
            return None
        elif pm.status == "ready" and _answers(pm.port):
            return pm.port
        if time.monotonic() > deadline:
            raise RuntimeError(f"the PostgreSQL on {pgdata} neither became ready nor stopped within {timeout:.0f}s")
        time.sleep(0.1)  # starting, stopping, or the pid file is being written


def running_redis(redis_dir: Path) -> tuple[int, int] | None:
    """(pid, port) of the Redis recorded for `redis_dir`, or None when it is gone (its record is removed)."""
    record = redis_dir / REDIS_RECORD
    try:
        data = json.loads(record.read_text())
        pid, port = int(data["pid"]), int(data["port"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _alive(pid, "redis-server") and _answers(port):
        return pid, port
    with contextlib.suppress(FileNotFoundError):
        record.unlink()
    return None


class ServersInUse:
    """This process's use of the shared servers: hold it while using them, `release()` when done."""

    def __init__(self, local: Path, postgres_dir: Path):
        self.local = local
        self.postgres_dir = postgres_dir
        self.database_url = ""
        self.redis_url = ""
        self.started: list[str] = []  # what this process had to start ("postgres", "redis")
        self._users_fd: int | None = None

    def attach(self) -> ServersInUse:
        self.local.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.local / SERVERS_USERS, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)  # waits only while a `stop` is stopping them
        self._users_fd = fd
        try:
            with _exclusive(self.local / SERVERS_LOCK):
                pg = LocalPostgres(self.postgres_dir)
                port = running_postgres(self.postgres_dir / "pgdata")
                if port is None:
                    pg.start(detached=True)
                    port = pg.port
                    self.started.append("postgres")
                pg.port = port
                self.database_url = pg.url
                redis_dir = self.local / "redis"
                found = running_redis(redis_dir)
                if found is None:
                    redis = LocalRedis(redis_dir, persist=True)
                    redis.start(detached=True)
                    assert redis.pid is not None
                    found = (redis.pid, redis.port)
                    (redis_dir / REDIS_RECORD).write_text(json.dumps({"pid": found[0], "port": found[1]}))
                    self.started.append("redis")
                self.redis_url = f"redis://127.0.0.1:{found[1]}/0"
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        if self._users_fd is not None:
            os.close(self._users_fd)  # drops the shared lock
            self._users_fd = None


def stop_servers(local: Path, postgres_dir: Path, timeout: float = 60.0) -> list[str]:
    """Stop the servers of `local` unless a process uses them (ServersInUseError). Returns what was stopped."""
    if not local.is_dir():
        return []
    stopped: list[str] = []
    with _exclusive(local / SERVERS_LOCK):
        fd = os.open(local / SERVERS_USERS, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ServersInUseError(
                    f"the local servers of {local} are in use (by `leadimport serve` or a running command)") from None
            if running_postgres(postgres_dir / "pgdata") is not None:
                LocalPostgres(postgres_dir).stop_running()
                stopped.append("postgres")
            found = running_redis(local / "redis")
            if found is not None:
                pid = found[0]
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)  # Redis saves its dump, then exits
                deadline = time.monotonic() + timeout
                while _alive(pid, "redis-server") and time.monotonic() < deadline:
                    time.sleep(0.05)
                with contextlib.suppress(FileNotFoundError):
                    (local / "redis" / REDIS_RECORD).unlink()
                stopped.append("redis")
        finally:
            os.close(fd)
    return stopped


__all__ = ["ServersInUse", "ServersInUseError", "running_postgres", "running_redis", "stop_servers"]
