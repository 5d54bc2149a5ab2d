"""The lead_imports repository: create, read (always by company), and move an import through its states.

Queries interpolate only `_COLUMNS`, a constant column list (hence the `noqa: S608`); every value
is a bound parameter.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pg8000.native

from leadimport.store.db import Database, as_dicts

ACTIVE = ("queued", "splitting", "processing")
FINAL = ("completed", "failed", "cancelled")

_COLUMNS = """
    id::text AS id, company_id, name, owner_type, owner_id, options, status, error, source, upload_key,
    object_version, object_size, file_encoding, file_delimiter, header, preview, split_offset, split_next_row,
    split_next_chunk, split_lease_until, split_done, total_rows, chunk_count, chunks_done, processed_rows,
    created_leads, rejected_rows, unprocessed_rows, undone_leads, rejections, warnings, created_at, started_at,
    finished_at, updated_at
"""


def new_import_id() -> str:
    return str(uuid.uuid4())


def insert_import(conn: pg8000.native.Connection, *, import_id: str, company_id: int, name: str, owner_type: str,
                  owner_id: int, options: dict[str, Any], status: str, source: str, upload_key: str,
                  object_version: str | None = None) -> dict[str, Any] | None:
    """Insert; returns None when a drop import for this object version exists already (duplicate event)."""
    rows = conn.run(
        f"""INSERT INTO lead_imports (id, company_id, name, owner_type, owner_id, options, status, source, upload_key,
                                      object_version)
            VALUES (CAST(:id AS uuid), :company_id, :name, :owner_type, :owner_id, CAST(:options AS jsonb), :status,
                    :source, :upload_key, :object_version)
            ON CONFLICT DO NOTHING
            RETURNING {_COLUMNS}""",  # noqa: S608
        id=import_id, company_id=company_id, name=name, owner_type=owner_type, owner_id=owner_id,
        options=json.dumps(options), status=status, source=source, upload_key=upload_key,
        object_version=object_version,
    )
    found = as_dicts(conn, rows)
    return found[0] if found else None


def get_import(db: Database, company_id: int, import_id: str) -> dict[str, Any] | None:
    """An import of this company, or None (also for another company's import and for a malformed id)."""
    try:
        uuid.UUID(import_id)
    except ValueError:
        return None
    rows = db.rows(f"SELECT {_COLUMNS} FROM lead_imports WHERE id = CAST(:id AS uuid) AND company_id = :c",  # noqa: S608
                   id=import_id, c=company_id)
    return rows[0] if rows else None


def get_import_unscoped(conn: pg8000.native.Connection, import_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    """For the pipeline (splitter, worker), which act on an import id they were handed by our own systems."""
    try:
        uuid.UUID(import_id)
    except ValueError:
        return None
    lock = " FOR UPDATE" if for_update else ""
    rows = conn.run(f"SELECT {_COLUMNS} FROM lead_imports WHERE id = CAST(:id AS uuid){lock}", id=import_id)  # noqa: S608
    found = as_dicts(conn, rows)
    return found[0] if found else None


def find_by_upload_key(conn: pg8000.native.Connection, key: str) -> dict[str, Any] | None:
    rows = conn.run(f"SELECT {_COLUMNS} FROM lead_imports WHERE upload_key = :k AND source <> 'drop'", k=key)  # noqa: S608
    found = as_dicts(conn, rows)
    return found[0] if found else None


def find_drop_import(conn: pg8000.native.Connection, key: str, version: str) -> dict[str, Any] | None:
    rows = conn.run(f"SELECT {_COLUMNS} FROM lead_imports WHERE upload_key = :k AND object_version = :v"  # noqa: S608
                    " AND source = 'drop'", k=key, v=version)
    found = as_dicts(conn, rows)
    return found[0] if found else None


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


def set_status(conn: pg8000.native.Connection, import_id: str, status: str, *, error: str | None = None,
               only_from: tuple[str, ...] | None = None) -> bool:
    rows = conn.run(
        """UPDATE lead_imports
           SET status = :status, error = COALESCE(:error, error), updated_at = now(),
               finished_at = CASE WHEN :status IN ('completed', 'failed', 'cancelled') THEN now() ELSE finished_at END
           WHERE id = CAST(:id AS uuid) AND (CAST(:from_ AS text[]) IS NULL OR status = ANY(CAST(:from_ AS text[])))
           RETURNING 1""",
        status=status, error=error, id=import_id, from_=list(only_from) if only_from else None,
    )
    return bool(rows)


def fail_import(db: Database, import_id: str, error: str) -> None:
    """The whole file is rejected: status failed with a sentence for the user."""
    with db.transaction() as conn:
        set_status(conn, import_id, "failed", error=error, only_from=("awaiting_upload", "awaiting_confirmation",
                                                                     "queued", "splitting", "processing"))
