"""Test harness: real PostgreSQL and Redis (started here unless DATABASE_URL / REDIS_URL are set),
a fresh database per test (cloned from a migrated + seeded template), a Redis key prefix per test,
moto for AWS, a Lambda context, and the event factories."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from leadimport.local.events import LambdaContext
from leadimport.local.runner import FAKE_AWS_ENV, LocalAws, LocalServices, prepare_database
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
def template_database(services: LocalServices) -> str:
    """A database with the migrations and demo data, cloned for each test."""
    assert services.database_url
    admin = Database.from_url(services.database_url)
    name = f"leadimport_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin.run(f'CREATE DATABASE "{name}"')
    admin.close()
    url = _with_database(services.database_url, name)
    prepare_database(url, seed=True)
    return name


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    query = ""
    if "?" in url:
        query = "?" + url.split("?", 1)[1]
    return f"{base}/{name}{query}"


@pytest.fixture
def database_url(services: LocalServices, template_database: str) -> Iterator[str]:
    assert services.database_url
    admin = Database.from_url(services.database_url)
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin.run(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    try:
        yield _with_database(services.database_url, name)
    finally:
        _reset_app()
        admin.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


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
    from leadimport import app

    app.reset()
