"""The lead_imports repository: every statement on the import row lives here, and nowhere else.

Status changes go through `_move`, whose WHERE clause comes from the transition table in
`leadimport.imports.status` (`status = ANY(<the statuses allowed to move there>)`): a change the
lifecycle forbids matches no row, and the caller learns it from the return value. The database's
trigger (migration 0004) refuses the same changes as a second line of defence.

Queries interpolate only `_COLUMNS` and constant SET fragments written in this module (hence the
`noqa: S608`); every value is a bound parameter.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pg8000.native

from leadimport.imports.status import ACTIVE, FINAL, ImportStatus, sources_of
from leadimport.store.db import Database, as_dicts

_COLUMNS = """
    id::text AS id, company_id, name, owner_type, owner_id, options, status, error, source, upload_key,
    object_version, object_size, file_encoding, file_delimiter, header, preview, split_offset, split_next_row,
    split_next_chunk, split_lease_until, split_done, total_rows, chunk_count, chunks_done, processed_rows,
    created_leads, updated_leads, rejected_rows, unprocessed_rows, undone_leads, rejections, warnings, created_at, started_at,
    finished_at, updated_at, max_concurrency
"""
_FINAL = sorted(s.value for s in FINAL)
_ACTIVE = sorted(s.value for s in ACTIVE)


def new_import_id() -> str:
    return str(uuid.uuid4())


def _valid_id(import_id: str) -> bool:
    try:
        uuid.UUID(import_id)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def _first(conn: pg8000.native.Connection, rows: list[list[Any]] | None) -> dict[str, Any] | None:
    found = as_dicts(conn, rows)
    return found[0] if found else None


# ---- create and read ---------------------------------------------------------------------------

def insert_import(conn: pg8000.native.Connection, *, import_id: str, company_id: int, name: str, owner_type: str,
                  owner_id: int, options: dict[str, Any], status: ImportStatus | str, source: str, upload_key: str,
                  object_version: str | None = None, object_size: int | None = None,
                  error: str | None = None, max_concurrency: int | None = None) -> dict[str, Any] | None:
    """Insert; returns None when a drop import for this object version exists already (duplicate event).
    An import created `failed` (a dropped file refused before any row is read) carries its error."""
    status = ImportStatus(status)
    if (status is ImportStatus.FAILED) != (error is not None):
        raise ValueError("an import is created failed exactly when it carries an error")
    rows = conn.run(
        f"""INSERT INTO lead_imports (id, company_id, name, owner_type, owner_id, options, status, source, upload_key,
                                      object_version, object_size, error, finished_at, max_concurrency)
            VALUES (CAST(:id AS uuid), :company_id, :name, :owner_type, :owner_id, CAST(:options AS jsonb), :status,
                    :source, :upload_key, :object_version, :object_size, CAST(:error AS text),
                    CASE WHEN :status = 'failed' THEN now() END, CAST(:max_concurrency AS integer))
            ON CONFLICT DO NOTHING
            RETURNING {_COLUMNS}""",  # noqa: S608
        id=import_id, company_id=company_id, name=name, owner_type=owner_type, owner_id=owner_id,
        options=json.dumps(options), status=status.value, source=source, upload_key=upload_key,
        object_version=object_version, object_size=object_size, error=error, max_concurrency=max_concurrency,
    )
    return _first(conn, rows)


def get_import(db: Database, company_id: int, import_id: str) -> dict[str, Any] | None:
    """An import of this company, or None (also for another company's import and for a malformed id)."""
    if not _valid_id(import_id):
        return None
    rows = db.rows(f"SELECT {_COLUMNS} FROM lead_imports WHERE id = CAST(:id AS uuid) AND company_id = :c",  # noqa: S608
                   id=import_id, c=company_id)
    return rows[0] if rows else None


def find_by_upload_key(db: Database, key: str) -> dict[str, Any] | None:
    rows = db.rows(f"SELECT {_COLUMNS} FROM lead_imports WHERE upload_key = :k AND source <> 'drop'", k=key)  # noqa: S608
    return rows[0] if rows else None


def find_drop_import(db: Database, key: str, version: str) -> dict[str, Any] | None:
    rows = db.rows(f"SELECT {_COLUMNS} FROM lead_imports WHERE upload_key = :k AND object_version = :v"  # noqa: S608
                   " AND source = 'drop'", k=key, v=version)
    return rows[0] if rows else None


def list_imports(db: Database, company_id: int, *, status: str | None, limit: int,
                 before: tuple[str, str] | None) -> list[dict[str, Any]]:
    """Newest first; `before` = (created_at iso, id) of the last item of the previous page."""
    return db.rows(
        f"""SELECT {_COLUMNS} FROM lead_imports
            WHERE company_id = :c
              AND (CAST(:status AS text) IS NULL OR status = :status)
              AND (CAST(:b_at AS timestamptz) IS NULL
                   OR (created_at, id) < (CAST(:b_at AS timestamptz), CAST(:b_id AS uuid)))
            ORDER BY created_at DESC, id DESC
            LIMIT :limit""",  # noqa: S608
        c=company_id, status=status, b_at=before[0] if before else None, b_id=before[1] if before else None,
        limit=limit,
    )


def import_for_chunk(db: Database, import_id: str) -> dict[str, Any] | None:
    """What a worker needs to process a chunk: the owner, the options and the status."""
    if not _valid_id(import_id):
        return None
    rows = db.rows("SELECT id::text AS id, company_id, owner_type, owner_id, options, status, max_concurrency"
                   " FROM lead_imports WHERE id = CAST(:i AS uuid)", i=import_id)
    return rows[0] if rows else None


# ---- status changes ----------------------------------------------------------------------------

def _move(conn: pg8000.native.Connection, import_id: str, target: ImportStatus, *, set_sql: str = "",
          where_sql: str = "", returning: str = "1", **params: Any) -> list[list[Any]]:
    """UPDATE the import to `target` when the lifecycle allows it from its current status.
    `set_sql`/`where_sql` are constant fragments of this module; values are bound parameters."""
    finished = ", finished_at = now()" if target in FINAL else ""
    return conn.run(
        f"""UPDATE lead_imports SET status = :target, updated_at = now(){finished}{set_sql}
            WHERE id = CAST(:id AS uuid) AND status = ANY(CAST(:sources AS text[])){where_sql}
            RETURNING {returning}""",  # noqa: S608 - constant fragments
        target=target.value, id=import_id, sources=sources_of(target), **params,
    ) or []


def attach_upload(db: Database, import_id: str, version: str, size: int) -> bool:
    """The presigned upload arrived: awaiting_upload -> queued, recording the object. False when the import
    already had its file (a duplicate event, or a second file)."""
    with db.transaction() as conn:
        return bool(_move(conn, import_id, ImportStatus.QUEUED, set_sql=", object_version = :v, object_size = :s",
                          where_sql=" AND status = 'awaiting_upload'", v=version, s=size))


def attach_upload_of_ended(db: Database, import_id: str, version: str, size: int) -> bool:
    """The upload's event reached an import cancelled before it: record the object all the same (no status change),
    so the import says its file was never read (`unread_from_row` 1) and errors.csv lists its rows as unprocessed.
    False when the import already had a file or is not cancelled."""
    rows = db.run(
        """UPDATE lead_imports SET object_version = :v, object_size = :s, updated_at = now()
           WHERE id = CAST(:id AS uuid) AND status = 'cancelled' AND object_version IS NULL RETURNING id""",
        v=version, s=size, id=import_id,
    )
    return bool(rows)


def claim_split(db: Database, import_id: str, lease_seconds: int) -> dict[str, Any] | None:
    """Take the split lease (queued -> splitting, or a splitting import whose lease expired); None when the
    import is not ours to split now. The guard is the transition table: splitting is reached from queued only,
    and a splitting import stays splitting."""
    if not _valid_id(import_id):
        return None
    with db.transaction() as conn:
        rows = conn.run(
            """UPDATE lead_imports
               SET status = 'splitting', started_at = COALESCE(started_at, now()), updated_at = now(),
                   split_lease_until = now() + make_interval(secs => :lease), split_attempt = split_attempt + 1
               WHERE id = CAST(:id AS uuid) AND status = ANY(CAST(:sources AS text[])) AND NOT split_done
                 AND (split_lease_until IS NULL OR split_lease_until < now())
               RETURNING id::text AS id, company_id, owner_type, owner_id, options, upload_key, object_version,
                         object_size, header, split_offset, split_next_row, split_next_chunk, split_attempt""",
            id=import_id, lease=lease_seconds, sources=sources_of(ImportStatus.SPLITTING) + ["splitting"],
        )
        return _first(conn, rows)


def release_split(db: Database, import_id: str, attempt: int) -> None:
    """Give the split lease back (a crashed or continued split may be resumed at once), if it is still ours."""
    db.run("UPDATE lead_imports SET split_lease_until = NULL WHERE id = CAST(:id AS uuid) AND split_attempt = :a",
           id=import_id, a=attempt)


def save_header(db: Database, import_id: str, attempt: int, header: dict[str, Any],
                warnings: dict[str, int]) -> None:
    """The file's header was read: the split starts after it (only for the attempt that holds the lease)."""
    db.run(
        """UPDATE lead_imports SET header = CAST(:h AS jsonb), file_encoding = :enc, file_delimiter = :d,
                  split_offset = :o, split_next_row = 1, split_next_chunk = 0,
                  warnings = jsonb_add_counts(warnings, CAST(:w AS jsonb)), updated_at = now()
           WHERE id = CAST(:id AS uuid) AND status = 'splitting' AND split_attempt = :a""",
        h=json.dumps(header), enc=header["encoding"], d=header["delimiter"], o=header["data_offset"],
        w=json.dumps(warnings), id=import_id, a=attempt,
    )


def save_preview(db: Database, import_id: str, preview: dict[str, Any], header: dict[str, Any]) -> bool:
    """splitting -> awaiting_confirmation, with the preview the user confirms."""
    with db.transaction() as conn:
        return bool(_move(conn, import_id, ImportStatus.AWAITING_CONFIRMATION,
                          set_sql=", preview = CAST(:p AS jsonb), header = CAST(:h AS jsonb), file_encoding = :enc,"
                                  " file_delimiter = :d, split_lease_until = NULL",
                          p=json.dumps(preview), h=json.dumps(header), enc=header["encoding"], d=header["delimiter"]))


def replace_preview(db: Database, company_id: int, import_id: str, preview: dict[str, Any],
                    header: dict[str, Any]) -> bool:
    """A new preview (another column mapping) of an import still awaiting confirmation; False when it no longer is."""
    rows = db.run(
        """UPDATE lead_imports SET preview = CAST(:p AS jsonb), header = CAST(:h AS jsonb), updated_at = now()
           WHERE id = CAST(:id AS uuid) AND company_id = :c AND status = 'awaiting_confirmation' RETURNING id""",
        p=json.dumps(preview), h=json.dumps(header), id=import_id, c=company_id,
    )
    return bool(rows)


SUPERSEDED = "superseded"  # checkpoint/finish of a split attempt whose lease another attempt took


def checkpoint(db: Database, import_id: str, attempt: int, offset: int, next_row: int, next_chunk: int,
               lease_seconds: int) -> str:
    """Record the split's progress and renew its lease; returns the import's status. A split goes on only while
    it is `splitting` and the lease is still its own (else SUPERSEDED): when the import was cancelled meanwhile,
    the import is the rows sent so far (its totals are fixed here); when it failed, only where the split got to is
    recorded (the chunks just sent are listed by the workers; the part never read starts after them)."""
    rows = db.run(
        """UPDATE lead_imports SET split_offset = :o, split_next_row = :r, split_next_chunk = :c,
                  split_lease_until = CASE WHEN status = 'failed' THEN NULL
                                           ELSE now() + make_interval(secs => :lease) END, updated_at = now(),
                  total_rows = CASE WHEN status = 'cancelled' THEN :r - 1 ELSE total_rows END,
                  chunk_count = CASE WHEN status = 'cancelled' THEN :c ELSE chunk_count END,
                  split_done = (status = 'cancelled')
           WHERE id = CAST(:id AS uuid) AND status IN ('splitting', 'cancelled', 'failed') AND NOT split_done
             AND split_attempt = :a
           RETURNING status""",
        o=offset, r=next_row, c=next_chunk, lease=lease_seconds, id=import_id, a=attempt,
    )
    if rows:
        return str(rows[0][0])
    found = db.run("SELECT status, split_attempt FROM lead_imports WHERE id = CAST(:id AS uuid)", id=import_id)
    if not found:
        return "unknown"
    return SUPERSEDED if found[0][0] == ImportStatus.SPLITTING and found[0][1] != attempt else str(found[0][0])


def finish_split(db: Database, import_id: str, attempt: int, offset: int, total_rows: int, chunk_count: int) -> str:
    """Every row is queued: splitting -> processing (or completed when the workers already did every chunk).
    A cancelled or failed import keeps its status; an attempt that lost its lease changes nothing (SUPERSEDED).
    Returns the status after."""
    with db.transaction() as conn:
        done = conn.run("SELECT status, chunks_done, split_attempt FROM lead_imports WHERE id = CAST(:id AS uuid)"
                        " FOR UPDATE", id=import_id)
        if not done:
            return "unknown"
        status, chunks_done = str(done[0][0]), int(done[0][1])
        if int(done[0][2]) != attempt:
            return SUPERSEDED if status == ImportStatus.SPLITTING else status
        progress = ", ".join(("split_offset = :o", "split_next_row = :n + 1", "split_next_chunk = :c",
                              "total_rows = :n", "chunk_count = :c", "split_done = true", "split_lease_until = NULL"))
        target = ImportStatus.COMPLETED if chunks_done >= chunk_count else ImportStatus.PROCESSING
        moved = _move(conn, import_id, target, set_sql=", " + progress, returning="status",
                      o=offset, n=total_rows, c=chunk_count)
        if moved:
            return str(moved[0][0])
        if status == ImportStatus.CANCELLED:
            # The split finished in the same moment as the cancel: its totals are the whole file.
            conn.run(f"UPDATE lead_imports SET {progress}, updated_at = now()"  # noqa: S608 - constant
                     " WHERE id = CAST(:id AS uuid) AND NOT split_done", o=offset, n=total_rows, c=chunk_count,
                     id=import_id)
        return status


def confirm_start(db: Database, company_id: int, import_id: str, options: dict[str, Any],
                  header: dict[str, Any]) -> bool:
    """The user confirmed the preview: awaiting_confirmation -> queued with the final mapping."""
    with db.transaction() as conn:
        return bool(_move(conn, import_id, ImportStatus.QUEUED,
                          set_sql=", options = CAST(:o AS jsonb), header = CAST(:h AS jsonb)",
                          where_sql=" AND company_id = :c", o=json.dumps(options), h=json.dumps(header),
                          c=company_id))


def set_max_concurrency(db: Database, company_id: int, import_id: str, value: int | None) -> bool:
    """Change the import's throughput cap while it is not final; False when it is (or is not the company's)."""
    rows = db.run(
        "UPDATE lead_imports SET max_concurrency = CAST(:v AS integer), updated_at = now()"
        " WHERE id = CAST(:i AS uuid) AND company_id = :c AND status <> ALL(CAST(:final AS text[])) RETURNING 1",
        v=value, i=import_id, c=company_id, final="{" + ",".join(_FINAL) + "}",
    )
    return bool(rows)


def cancel(db: Database, company_id: int, import_id: str) -> bool:
    """-> cancelled. Rows the splitter never read are not part of the import."""
    with db.transaction() as conn:
        return bool(_move(conn, import_id, ImportStatus.CANCELLED,
                          set_sql=", total_rows = COALESCE(total_rows, GREATEST(split_next_row - 1, 0)),"
                                  " chunk_count = COALESCE(chunk_count, split_next_chunk)",
                          where_sql=" AND company_id = :c", c=company_id))


def fail(db: Database, import_id: str, error: str) -> bool:
    """The whole file (or what is left of it) is rejected: -> failed with a sentence for the user.
    False when the import was already final."""
    if not _valid_id(import_id):
        return False
    with db.transaction() as conn:
        return fail_in(conn, import_id, error)


def fail_in(conn: pg8000.native.Connection, import_id: str, error: str) -> bool:
    """`fail` inside the caller's transaction (with the rows and counters that go with the failure)."""
    return bool(_move(conn, import_id, ImportStatus.FAILED, set_sql=", error = :error, split_lease_until = NULL",
                      error=error))


def mark_stuck(db: Database, stuck_after_minutes: int) -> list[str]:
    """Active imports with no progress (no checkpoint, no chunk) for the given minutes -> failed."""
    watched = sorted(set(_ACTIVE) & set(sources_of(ImportStatus.FAILED)))
    rows = db.run(
        """UPDATE lead_imports
           SET status = 'failed', finished_at = now(), updated_at = now(), split_lease_until = NULL,
               error = format('The import stopped making progress (nothing happened for %s minutes while it was %s). '
                              'Rows already imported stay; download the errors to see which rows were processed.',
                              CAST(:m AS int), status)
           WHERE status = ANY(CAST(:watched AS text[])) AND updated_at < now() - make_interval(mins => :m)
           RETURNING id::text""",
        m=stuck_after_minutes, watched=watched,
    )
    return [r[0] for r in rows]


def splits_to_resume(db: Database, queued_idle_seconds: int) -> list[str]:
    """Imports whose split is not running although it should: splitting with a lapsed lease (its splitter died,
    and no retry came after the lease lapsed), or queued without progress for a while (a lost start or
    continuation). The sweep hands each to the splitter again."""
    rows = db.run(
        """SELECT id::text FROM lead_imports
           WHERE NOT split_done
             AND ((status = 'splitting' AND (split_lease_until < now()
                                             -- released (a crash, a continuation) and nobody took it since
                                             OR (split_lease_until IS NULL
                                                 AND updated_at < now() - make_interval(secs => :idle))))
                  OR (status = 'queued' AND (split_lease_until IS NULL OR split_lease_until < now())
                      AND updated_at < now() - make_interval(secs => :idle)))
           ORDER BY updated_at LIMIT 100""",
        idle=queued_idle_seconds,
    )
    return [r[0] for r in rows]


def mark_tokens_checked(db: Database, import_id: str) -> None:
    db.run("UPDATE lead_imports SET tokens_checked_at = now() WHERE id = CAST(:i AS uuid)", i=import_id)


def completed_unchecked(db: Database, limit: int) -> list[str]:
    """Completed imports whose leads' tokens were not checked in Redis yet, oldest first."""
    rows = db.run("SELECT id::text FROM lead_imports WHERE status = 'completed' AND tokens_checked_at IS NULL"
                  " AND NOT COALESCE((options->>'dry_run')::boolean, false) ORDER BY finished_at LIMIT :n", n=limit)
    return [r[0] for r in rows]


# ---- counters ----------------------------------------------------------------------------------

def add_chunk_counters(conn: pg8000.native.Connection, import_id: str, *, chunks: int, processed: int, created: int,
                       updated: int, rejected: int, unprocessed: int, rejections: dict[str, int],
                       warnings: dict[str, int]) -> str:
    """Move the import's counters (in the chunk's transaction) and complete it after its last chunk.
    Returns the status after."""
    rows = conn.run(
        """UPDATE lead_imports SET
               chunks_done = chunks_done + :chunks,
               processed_rows = processed_rows + :processed,
               created_leads = created_leads + :created,
               updated_leads = updated_leads + :updated,
               rejected_rows = rejected_rows + :rejected,
               unprocessed_rows = unprocessed_rows + :unprocessed,
               rejections = jsonb_add_counts(rejections, CAST(:rej AS jsonb)),
               warnings = jsonb_add_counts(warnings, CAST(:warn AS jsonb)),
               updated_at = now()
           WHERE id = CAST(:i AS uuid)
           RETURNING status, split_done, chunks_done, chunk_count""",
        chunks=chunks, processed=processed, created=created, updated=updated, rejected=rejected,
        unprocessed=unprocessed,
        rej=json.dumps(rejections), warn=json.dumps(warnings), i=import_id,
    )
    status, split_done, done, count = rows[0]
    if split_done and count is not None and done >= count:
        moved = _move(conn, import_id, ImportStatus.COMPLETED, where_sql=" AND status = 'processing'",
                      returning="status")
        if moved:
            return str(moved[0][0])
    return str(status)


def lock_for_undo(conn: pg8000.native.Connection, company_id: int, import_id: str) -> str | None:
    """Lock the import row for an undo; its status, or None when it is not this company's."""
    rows = conn.run("SELECT status FROM lead_imports WHERE id = CAST(:i AS uuid) AND company_id = :c FOR UPDATE",
                    i=import_id, c=company_id)
    return str(rows[0][0]) if rows else None


def add_undone(conn: pg8000.native.Connection, import_id: str, count: int) -> None:
    conn.run("UPDATE lead_imports SET undone_leads = COALESCE(undone_leads, 0) + :n, updated_at = now()"
             " WHERE id = CAST(:i AS uuid)", n=count, i=import_id)
