"""Test harness: real PostgreSQL and Redis (started here unless DATABASE_URL / REDIS_URL are set),
a fresh database per test (cloned from a migrated + seeded template), a Redis key prefix per test,
moto for AWS, a Lambda context, and the event factories."""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import moto  # noqa: F401  - hooks into botocore on import: before the app's boto3 session can exist
import pytest
from leadimport_local.events import LambdaContext
from leadimport_local.runner import FAKE_AWS_ENV, LocalAws, LocalServices, prepare_database

from leadimport.store.db import ConnectionParams, Database

os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "LeadImportTests")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "leadimport")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")  # INFO: logging calls run in tests too
os.environ.setdefault("POWERTOOLS_DEV", "false")
for _k, _v in FAKE_AWS_ENV.items():
    os.environ[_k] = _v  # never talk to a real AWS account from tests

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def services() -> Iterator[LocalServices]:
    with LocalServices.throwaway() as s:
        yield s


@pytest.fixture(scope="session")
def template_database(services: LocalServices) -> Iterator[str]:
    """A database with the migrations and demo data, cloned for each test.

    Vacuumed, then closed to connections: autovacuum skips a database that takes no connections, and an
    autovacuum worker inside the template would make every CREATE DATABASE wait for it (~0.3 s a test).
    """
    assert services.database_url
    admin = Database.from_url(services.database_url)
    name = f"leadimport_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin.run(f'CREATE DATABASE "{name}"')
    url = _with_database(services.database_url, name)
    prepare_database(url, seed=True)
    template = Database.from_url(url)
    template.run("VACUUM (ANALYZE)")
    template.close()
    admin.run(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
    try:
        yield name
    finally:
        admin.run(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false')
        admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    query = ""
    if "?" in url:
        query = "?" + url.split("?", 1)[1]
    return f"{base}/{name}{query}"


class DatabaseClones:
    """Test databases cloned from the template two tests ahead, in a background thread.

    A clone costs 0.05-0.5 s of waiting on the server; made while the previous tests run, a test finds
    its database ready. Used databases are dropped in the same thread. If the thread fails (cannot
    connect, CREATE or DROP fails), every test that asks for a database from then on gets its error.
    """

    def __init__(self, admin_url: str, template: str):
        self._admin_url = admin_url
        self._template = template
        self._ready: queue.Queue[str] = queue.Queue(maxsize=2)
        self._used: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="database-clones", daemon=True)
        self._thread.start()

    def take(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self._ready.get(timeout=0.2)
            except queue.Empty:
                pass
            if self._error is not None:
                raise RuntimeError(f"cloning test databases failed: {self._error!r}") from self._error
            if not self._thread.is_alive():
                raise RuntimeError("the thread cloning test databases has stopped")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no test database after {timeout:.0f} s")

    def give_back(self, name: str) -> None:
        self._used.put(name)

    def _run(self) -> None:
        try:
            admin = Database.from_url(self._admin_url)
            try:
                while not self._stop.is_set():
                    self._drop_used(admin)
                    name = f"t_{uuid.uuid4().hex[:12]}"
                    admin.run(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
                    while not self._stop.is_set():
                        try:
                            self._ready.put(name, timeout=0.05)
                            break
                        except queue.Full:
                            self._drop_used(admin)
                    else:
                        self._used.put(name)
            finally:
                admin.close()
        except BaseException as exc:  # handed to every test that asks for a database from now on
            self._error = exc

    def _drop_used(self, admin: Database) -> None:
        while True:
            try:
                name = self._used.get_nowait()
            except queue.Empty:
                return
            admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Stop cloning, then drop every database made: used, or ready and never taken."""
        self._stop.set()
        self._thread.join(timeout=60)
        while True:
            try:
                self._used.put(self._ready.get_nowait())
            except queue.Empty:
                break
        admin = Database.from_url(self._admin_url)
        try:
            self._drop_used(admin)
        finally:
            admin.close()


@pytest.fixture(scope="session")
def database_clones(services: LocalServices, template_database: str) -> Iterator[DatabaseClones]:
    assert services.database_url
    clones = DatabaseClones(services.database_url, template_database)
    yield clones
    clones.close()


@pytest.fixture
def database_url(services: LocalServices, database_clones: DatabaseClones) -> Iterator[str]:
    assert services.database_url
    name = database_clones.take()
    try:
        yield _with_database(services.database_url, name)
    finally:
        _reset_app()
        database_clones.give_back(name)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    d = Database(ConnectionParams.from_url(database_url))
    yield d
    d.close()


@pytest.fixture
def redis_prefix(services: LocalServices) -> Iterator[str]:
    import redis

    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    assert services.redis_url
    client = redis.Redis.from_url(services.redis_url)
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def redis_client(services: LocalServices) -> Iterator[Any]:
    import redis

    assert services.redis_url
    client = redis.Redis.from_url(services.redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalAws]:
    """moto for every AWS call in the test, with the stack's bucket and queues created."""
    from moto import mock_aws

    with mock_aws():
        local = LocalAws().setup()
        yield local


@pytest.fixture
def pipeline_env(monkeypatch: pytest.MonkeyPatch, database_url: str, services: LocalServices, redis_prefix: str,
                 aws: LocalAws) -> LocalAws:
    """Everything the handlers read from their environment, pointed at this test's stores."""
    assert services.redis_url
    env = {"DATABASE_URL": database_url, "REDIS_URL": services.redis_url, "REDIS_KEY_PREFIX": redis_prefix,
           **aws.handler_env()}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("SPLITTER_FUNCTION_NAME", raising=False)
    _reset_app()
    return aws


def _reset_app() -> None:
    from leadimport import roots

    roots.reset()
