"""The `floor` benchmark removes parts of the write path by constraint name and by matching SQL. If the
schema or the SQL changes, the benchmark must fail loudly rather than quietly measure the product under
a variant's name: these tests run its own mechanism against the real schema and a real chunk."""

from __future__ import annotations

import pytest

from benchmarks import bench_floor
from leadimport.services.import_chunk import ChunkImporter
from leadimport.store.db import Database
from tests.integration.test_import_chunk import SEEDED, chunk, importer, make_import, tokens

pytestmark = pytest.mark.integration
__all__ = ["importer", "tokens"]  # fixtures shared with test_import_chunk


def test_the_floor_drops_every_tenant_check_of_the_tables_written_per_lead(db: Database) -> None:
    for table, names in bench_floor.TENANT_CHECKS.items():
        found = {r[0] for r in db.run("SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass)"
                                      " AND NOT tgisinternal AND (tgtype & 1) = 0", t=table)}  # statement-level
        # All of them: a check added later must be in the variant's list, or it would still be run.
        assert set(names) == found, f"{table}: the benchmark lists {sorted(names)}, the schema has {sorted(found)}"
        # and no per-row foreign key is left on these tables to measure
        assert db.run("SELECT count(*) FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) AND contype = 'f'",
                      t=table) == [[0]]


def test_every_statement_skip_matches_what_a_chunk_sends(importer: ChunkImporter, db: Database) -> None:
    import_id = make_import(db)
    rows = [[SEEDED["fresh"], "a@example.com", "solar", "US"], ["+16175550101", "", "", "US"],
            ["not a phone", "", "", "US"], [SEEDED["blacklisted"], "", "", "US"]]
    undo, matched = bench_floor._skipping([*bench_floor.SKIPS, *bench_floor.OVERRIDES])
    try:
        importer.import_chunk(chunk(import_id, 0, rows))
    finally:
        undo()
    assert all(n > 0 for n in matched.values()), matched


def test_the_skips_leave_the_floor_writing_contacts_and_leads(importer: ChunkImporter, db: Database) -> None:
    import_id = make_import(db)
    undo, _ = bench_floor._skipping([*bench_floor.SKIPS, *bench_floor.OVERRIDES])
    try:
        # fresh phones: without the facts query nothing tells the importer of an existing contact
        importer.import_chunk(chunk(import_id, 0, [[SEEDED["fresh"], "", "", "US"], ["+16175550987", "", "", "US"]]))
    finally:
        undo()
    assert db.run("SELECT count(*) FROM leads WHERE import_id = CAST(:i AS uuid)", i=import_id)[0][0] == 2
    assert db.run("SELECT count(*) FROM schedule_enrollments e JOIN leads l ON l.id = e.lead_id"
                  " WHERE l.import_id = CAST(:i AS uuid)", i=import_id)[0][0] == 0
