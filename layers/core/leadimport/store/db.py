"""PostgreSQL connections (pg8000), reused across invocations and reconnected after a failure.

pg8000 does not set TCP_NODELAY, which stalls every multi-message round trip (~8 ms each, see
../shared/measurements.md): we open the socket ourselves with TCP_NODELAY and hand it over.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pg8000.native

from leadimport import settings

# pg8000.native re-parses the SQL text for :name parameters on every run(), character by character
# in Python (~1 ms for our chunk statements, ~10% of a chunk). The result depends only on the text:
# cache it. (Named prepared statements would also save it, but pin sessions behind RDS Proxy.)
if not hasattr(pg8000.native.to_statement, "cache_info"):
    pg8000.native.to_statement = lru_cache(maxsize=512)(pg8000.native.to_statement)


class DatabaseUnavailableError(RuntimeError):
    """A transient failure: the message is retried by SQS."""


@dataclass(frozen=True)
class ConnectionParams:
    host: str
    port: int
    user: str
    password: str | None
    database: str
    tls: bool
    tls_if_offered: bool = False  # sslmode=prefer: TLS when the server offers it, without verification

    @classmethod
    def from_url(cls, url: str) -> ConnectionParams:
        u = urlparse(url)
        if u.scheme not in ("postgres", "postgresql"):
            raise ValueError("DATABASE_URL must start with postgresql://")
        query = parse_qs(u.query)
        sslmode = (query.get("sslmode") or ["disable"])[0]
        return cls(
            host=u.hostname or "127.0.0.1",
            port=u.port or 5432,
            user=unquote(u.username or "postgres"),
            password=unquote(u.password) if u.password else None,
            database=(u.path or "/postgres").lstrip("/") or "postgres",
            tls=sslmode in ("require", "verify-ca", "verify-full"),
            tls_if_offered=sslmode == "prefer",
        )

    @classmethod
    def from_settings(cls, db: settings.DatabaseSettings) -> ConnectionParams:
        if db.url:
            return cls.from_url(db.url)
        # AWS: credentials from Secrets Manager (rotated), host from the RDS Proxy endpoint, TLS on.
        from aws_lambda_powertools.utilities.parameters import get_secret

        secret = json.loads(str(get_secret(db.secret_arn or "", max_age=300)))
        return cls(
            host=db.host or secret["host"],
            port=int(secret.get("port", 5432)),
            user=secret["username"],
            password=secret["password"],
            database=secret.get("dbname", "postgres"),
            tls=True,
        )


def connect(params: ConnectionParams, timeout: float = 10.0) -> pg8000.native.Connection:
    try:
        sock = socket.create_connection((params.host, params.port), timeout=timeout)
    except OSError as exc:
        raise DatabaseUnavailableError(f"cannot reach PostgreSQL at {params.host}:{params.port}: {exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(None)
    try:
        conn = pg8000.native.Connection(
            user=params.user,
            password=params.password,
            database=params.database,
            sock=sock,
            # False, not None: pg8000 takes None as "try TLS", building a default SSL context (loading the CA
            # certificates, ~40 ms of CPU) for every connection, to be refused by a server without TLS.
            ssl_context=ssl.create_default_context() if params.tls else (None if params.tls_if_offered else False),
            application_name="leadimport",
        )
    except Exception as exc:
        sock.close()
        raise DatabaseUnavailableError(f"cannot connect to PostgreSQL: {exc}") from exc
    return conn


_CONNECTION_SQLSTATE_CLASSES = ("08", "57")  # connection exception; operator intervention (admin shutdown)


def is_connection_error(exc: BaseException) -> bool:
    """Errors after which the connection cannot be used again (the server went away or restarted)."""
    if isinstance(exc, pg8000.native.InterfaceError | OSError | ConnectionError):
        return True
    if isinstance(exc, pg8000.native.DatabaseError) and exc.args and isinstance(exc.args[0], dict):
        return str(exc.args[0].get("C", "")).startswith(_CONNECTION_SQLSTATE_CLASSES)
    return False


class Database:
    """One connection per container, created on first use and replaced after a failure.

    `transaction()` yields the connection inside BEGIN/COMMIT; any exception rolls back, and a
    connection-level error drops the connection so the next use reconnects.
    """

    def __init__(self, params: ConnectionParams):
        self.params = params
        self._conn: pg8000.native.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> Database:
        return cls(ConnectionParams.from_url(url))

    def connection(self) -> pg8000.native.Connection:
        if self._conn is None:
            self._conn = connect(self.params)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
            self._conn = None

    @contextmanager
    def transaction(self) -> Iterator[pg8000.native.Connection]:
        with self._lock:
            conn = self.connection()
            try:
                conn.run("BEGIN")
                yield conn
                conn.run("COMMIT")
            except BaseException as exc:
                if is_connection_error(exc):
                    self.close()
                    raise DatabaseUnavailableError(f"database connection lost: {_sqlstate(exc)}") from exc
                try:
                    conn.run("ROLLBACK")
                except Exception:  # noqa: BLE001
                    self.close()
                raise

    @contextmanager
    def _statement(self) -> Iterator[pg8000.native.Connection]:
        """The connection for one autocommit statement; a lost connection is dropped and said so."""
        with self._lock:
            conn = self.connection()
            try:
                yield conn
            except Exception as exc:
                if is_connection_error(exc):
                    self.close()
                    raise DatabaseUnavailableError(f"database connection lost: {_sqlstate(exc)}") from exc
                raise

    def run(self, sql: str, **params: Any) -> list[list[Any]]:
        """One statement in its own transaction (autocommit)."""
        with self._statement() as conn:
            return conn.run(sql, **params) or []

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        with self._statement() as conn:
            return as_dicts(conn, conn.run(sql, **params))


def describe_error(exc: BaseException) -> str:
    """An error as a user or operator may read it: the SQLSTATE and PostgreSQL's message (which names the
    constraint, never a value: the values are in the detail, left out), or the exception's type."""
    return _sqlstate(exc)


def _sqlstate(exc: BaseException) -> str:
    """A short description without the statement's parameters (which may hold phone numbers)."""
    if exc.args and isinstance(exc.args[0], dict):
        return f"{exc.args[0].get('C', '')} {exc.args[0].get('M', '')}".strip()
    return type(exc).__name__


def as_dicts(conn: pg8000.native.Connection, rows: list[list[Any]] | None) -> list[dict[str, Any]]:
    cols = [c["name"] for c in conn.columns or []]
    return [dict(zip(cols, r, strict=True)) for r in rows or []]


_shared: Database | None = None


def shared_database() -> Database:
    """The container-wide database, from settings (reused across invocations)."""
    global _shared
    if _shared is None:
        _shared = Database(ConnectionParams.from_settings(settings.database()))
    return _shared


def reset_shared_database() -> None:
    global _shared
    if _shared is not None:
        _shared.close()
    _shared = None
