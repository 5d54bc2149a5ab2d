"""The end-to-end benchmark splits PostgreSQL's CPU by role, read from each process's title."""

from __future__ import annotations

import pytest

from benchmarks.bench_e2e import postgres_role


@pytest.mark.parametrize(("title", "role"), [
    ("postgres: postgres postgres 127.0.0.1(58984) SELECT", "postgres (backends)"),
    ("postgres: postgres postgres 127.0.0.1(58966) idle", "postgres (backends)"),
    ("postgres: autovacuum worker postgres", "postgres (autovacuum)"),
    ("postgres: autovacuum launcher", "postgres (background)"),
    ("postgres: walwriter", "postgres (background)"),
    ("postgres: checkpointer", "postgres (background)"),
    ("postgres: background writer", "postgres (background)"),
    ("postgres: io worker 1", "postgres (background)"),
    ("/x/pginstall/bin/postgres -D /tmp/pgdata -p 5432", "postgres (background)"),  # the postmaster
])
def test_each_postgres_process_is_labelled_by_its_role(title: str, role: str) -> None:
    assert postgres_role(title) == role
