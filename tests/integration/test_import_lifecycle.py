"""The lifecycle in the database: the repository moves imports only along the table, the trigger refuses
everything else (even a hand-written UPDATE), and a split cannot revive a failed import."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from leadimport.imports import repository as repo
from leadimport.imports.status import ImportStatus, all_transitions, can_transition
from leadimport.store.db import Database

pytestmark = pytest.mark.integration


def make(db: Database, status: str = "queued", **extra: Any) -> str:
    import_id = str(uuid.uuid4())
    with db.transaction() as conn:
        repo.insert_import(conn, import_id=import_id, company_id=1, name="t", owner_type="schedule", owner_id=1,
                           options={}, status=status, source="api", upload_key=f"uploads/1/{import_id}/upload.csv",
                           error="boom" if status == "failed" else None)
        for column, value in extra.items():
            conn.run(f"UPDATE lead_imports SET {column} = :v WHERE id = CAST(:i AS uuid)", v=value, i=import_id)
    return import_id


def status_of(db: Database, import_id: str) -> str:
    return str(db.run("SELECT status FROM lead_imports WHERE id = CAST(:i AS uuid)", i=import_id)[0][0])


def test_the_database_holds_the_same_transition_table(db: Database) -> None:
    rows = db.run("SELECT from_status, to_status FROM lead_import_transitions ORDER BY 1, 2")
    assert sorted((r[0], r[1]) for r in rows) == all_transitions()
    check = db.run("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'lead_imports_status_check'")
    assert all(f"'{s.value}'" in check[0][0] for s in ImportStatus)


@pytest.mark.parametrize(("source", "target"),
                         [(a, b) for a, b in itertools.product(list(ImportStatus), list(ImportStatus)) if a != b])
def test_every_status_change_is_allowed_or_refused_by_the_database_as_the_table_says(
        db: Database, source: ImportStatus, target: ImportStatus) -> None:
    import_id = make(db, source.value)
    if can_transition(source, target):
        db.run("UPDATE lead_imports SET status = :t WHERE id = CAST(:i AS uuid)", t=target.value, i=import_id)
        assert status_of(db, import_id) == target
    else:
        with pytest.raises(Exception, match="cannot go from"):
            db.run("UPDATE lead_imports SET status = :t WHERE id = CAST(:i AS uuid)", t=target.value, i=import_id)
        assert status_of(db, import_id) == source


def test_fail_and_cancel_refuse_a_final_import_and_keep_its_error(db: Database) -> None:
    done = make(db, "failed")
    assert repo.fail(db, done, "again") is False
    assert repo.cancel(db, 1, done) is False
    assert db.run("SELECT error FROM lead_imports WHERE id = CAST(:i AS uuid)", i=done)[0][0] == "boom"
    running = make(db, "processing")
    assert repo.cancel(db, 2, running) is False  # another company's import
    assert repo.cancel(db, 1, running) is True and status_of(db, running) == "cancelled"


def test_a_failed_import_stays_failed_when_its_split_checkpoints_and_finishes(db: Database) -> None:
    # Given an import the splitter claimed, then something failed it (a poison chunk, the stuck detector)
    import_id = make(db, "queued")
    job = repo.claim_split(db, import_id, 900)
    assert job is not None
    assert repo.fail(db, import_id, "A chunk could not be processed.")
    # When the still-running split checkpoints and finishes
    assert repo.checkpoint(db, import_id, job["split_attempt"], 100, 11, 2, 900) == "failed"
    assert repo.finish_split(db, import_id, job["split_attempt"], 200, 20, 2) == "failed"
    # Then the import stays failed with its error, and its counters reaching the chunk count do not complete it
    with db.transaction() as conn:
        assert repo.add_chunk_counters(conn, import_id, chunks=2, processed=0, created=0, updated=0, rejected=0, unprocessed=20,
                                       rejections={}, warnings={}) == "failed"
    row = db.rows("SELECT status, error, finished_at FROM lead_imports WHERE id = CAST(:i AS uuid)", i=import_id)[0]
    assert row["status"] == "failed" and row["error"] == "A chunk could not be processed."


def test_a_split_finishing_after_its_chunks_completes_the_import_and_a_cancel_keeps_its_totals(db: Database) -> None:
    import_id = make(db, "queued", chunks_done=3)
    assert repo.finish_split(db, import_id, repo.claim_split(db, import_id, 900)["split_attempt"], 300, 30, 3) == "completed"
    cancelled = make(db, "queued")
    job = repo.claim_split(db, cancelled, 900)
    assert job is not None
    assert repo.cancel(db, 1, cancelled)
    assert repo.checkpoint(db, cancelled, job["split_attempt"], 100, 11, 1, 900) == "cancelled"
    row = db.rows("SELECT status, total_rows, chunk_count, split_done FROM lead_imports WHERE id = CAST(:i AS uuid)",
                  i=cancelled)[0]
    assert (row["status"], row["total_rows"], row["chunk_count"], row["split_done"]) == ("cancelled", 10, 1, True)


def test_the_split_lease_is_taken_only_from_queued_or_an_expired_splitting(db: Database) -> None:
    for status in ("awaiting_upload", "awaiting_confirmation", "processing", "completed", "failed", "cancelled"):
        assert repo.claim_split(db, make(db, status), 900) is None
    import_id = make(db, "queued")
    first = repo.claim_split(db, import_id, 900)
    assert first is not None
    assert repo.claim_split(db, import_id, 900) is None  # lease held
    repo.release_split(db, import_id, first["split_attempt"])
    second = repo.claim_split(db, import_id, 900)
    assert second is not None and second["split_attempt"] == first["split_attempt"] + 1
    # the first attempt lost its lease: its checkpoint and finish change nothing, and it cannot release the lease
    assert repo.checkpoint(db, import_id, first["split_attempt"], 100, 11, 1, 900) == repo.SUPERSEDED
    assert repo.finish_split(db, import_id, first["split_attempt"], 100, 10, 1) == repo.SUPERSEDED
    repo.release_split(db, import_id, first["split_attempt"])
    assert repo.claim_split(db, import_id, 900) is None
    assert repo.checkpoint(db, import_id, second["split_attempt"], 100, 11, 1, 900) == "splitting"


def test_splits_to_resume_are_the_lapsed_leases_and_the_idle_queued(db: Database) -> None:
    lapsed, running, idle, fresh = (make(db, "queued") for _ in range(4))
    for import_id in (lapsed, running):
        assert repo.claim_split(db, import_id, 900) is not None
    db.run("UPDATE lead_imports SET split_lease_until = now() - interval '1 second' WHERE id = CAST(:i AS uuid)",
           i=lapsed)
    db.run("UPDATE lead_imports SET updated_at = now() - interval '10 minutes' WHERE id = CAST(:i AS uuid)", i=idle)
    released = make(db, "queued")
    job = repo.claim_split(db, released, 900)
    repo.release_split(db, released, job["split_attempt"])  # a crash or a continuation gave the lease back
    db.run("UPDATE lead_imports SET updated_at = now() - interval '10 minutes' WHERE id = CAST(:i AS uuid)",
           i=released)
    assert sorted(repo.splits_to_resume(db, 120)) == sorted([lapsed, idle, released])
    assert fresh not in repo.splits_to_resume(db, 120)


def test_the_stuck_detector_fails_only_active_imports_without_progress(db: Database) -> None:
    stale = [make(db, s) for s in ("queued", "splitting", "processing")]
    idle = [make(db, s) for s in ("awaiting_upload", "awaiting_confirmation", "completed")]
    fresh = make(db, "processing")
    db.run("UPDATE lead_imports SET updated_at = now() - interval '2 hours' WHERE id <> CAST(:f AS uuid)", f=fresh)
    assert sorted(repo.mark_stuck(db, 60)) == sorted(stale)
    assert all(status_of(db, i) == "failed" for i in stale)
    assert [status_of(db, i) for i in idle] == ["awaiting_upload", "awaiting_confirmation", "completed"]
    assert status_of(db, fresh) == "processing"
