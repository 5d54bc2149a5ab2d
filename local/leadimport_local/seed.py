"""Demo data (infra/db/seed/demo.sql) and the owners listing used by `leadimport owners`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from leadimport.store.db import Database

DEMO_SQL = Path(__file__).resolve().parents[2] / "infra" / "db" / "seed" / "demo.sql"
DEMO_COMPANY_ID = 1


def seed_demo(db: Database) -> bool:
    """Load the demo data into an empty database. Returns False when data was already there."""
    with db.transaction() as conn:
        conn.run("LOCK TABLE companies IN EXCLUSIVE MODE")
        if conn.run("SELECT 1 FROM companies LIMIT 1"):
            return False
        conn.run(DEMO_SQL.read_text(encoding="utf-8"))
    return True


def list_owners(db: Database, company_id: int) -> list[dict[str, Any]]:
    return db.rows(
        "SELECT 'schedule' AS type, id::text AS id, name, company_id::text AS company_id FROM schedules"
        " WHERE company_id = :c"
        " UNION ALL"
        " SELECT 'offer', id::text, name, company_id::text FROM offers WHERE company_id = :c"
        " ORDER BY type DESC, id",
        c=company_id,
    )


def list_choices(db: Database, company_id: int) -> dict[str, list[dict[str, Any]]]:
    """What the upload page picks from by name, all of this company only: its schedules and offers, buyers, traffic
    sources, and the call dispositions its call history holds (for Scrub Import)."""
    return {
        "owners": list_owners(db, company_id),
        "buyers": db.rows("SELECT id::text AS id, name FROM buyers WHERE company_id = :c ORDER BY name, id",
                          c=company_id),
        "traffic_sources": db.rows("SELECT id::text AS id, name FROM traffic_sources WHERE company_id = :c"
                                   " ORDER BY name, id", c=company_id),
        "dispositions": [r[0] for r in db.run(
            "SELECT DISTINCT disposition FROM calls WHERE company_id = :c AND disposition IS NOT NULL"
            " ORDER BY disposition LIMIT 500", c=company_id)],
    }
