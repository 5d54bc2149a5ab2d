"""Applies the ordered plain-SQL migrations under infra/db/migrations.

Written by hand (~60 lines) rather than taking a migration library: the well-kept ones (alembic,
yoyo, sqitch) either want SQLAlchemy/psycopg or a separate tool runtime, while all we need is
"apply each numbered .sql file once, in order, in a transaction, under a lock". Each file is
recorded with its checksum; an applied file that was edited afterwards is an error, not a
silent skip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from leadimport.store.db import Database

# local/leadimport_local/migrations.py -> the repository root is parents[2]
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "infra" / "db" / "migrations"
_LOCK_KEY = 0x6C656164  # "lead": one migrator at a time


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = DEFAULT_DIR) -> list[Migration]:
    files = sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    return [Migration(version=f.stem, path=f) for f in files]


def migrate(db: Database, directory: Path = DEFAULT_DIR) -> list[str]:
    """Apply pending migrations; returns the versions applied now (empty when up to date)."""
    applied_now: list[str] = []
    with db.transaction() as conn:
        conn.run("SELECT pg_advisory_xact_lock(:k)", k=_LOCK_KEY)
        conn.run(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {v: c for v, c in conn.run("SELECT version, checksum FROM schema_migrations") or []}
        for m in discover(directory):
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise MigrationError(
                        f"migration {m.version} was changed after it was applied; add a new migration instead"
                    )
                continue
            conn.run(m.sql)
            conn.run("INSERT INTO schema_migrations (version, checksum) VALUES (:v, :c)", v=m.version, c=m.checksum)
            applied_now.append(m.version)
    return applied_now
