"""Each row's warnings (lead_import_warnings, migration 0009): written with the chunk, read page by page by the API."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pg8000.native

from leadimport.rules.pipeline import LeadCandidate


def insert_row_warnings(conn: pg8000.native.Connection, import_id: str, rows: Iterable[LeadCandidate]) -> None:
    """The warnings of the rows that went in, in the chunk's transaction. Most rows have none, and then this is one
    pass over the rows and no statement; a retried chunk writes nothing twice (the key, DO NOTHING)."""
    notes = [{"r": c.row_no, "c": n.code, "col": n.column, "m": n.message}
             for c in rows if c.warnings for n in c.warning_notes()]
    if not notes:
        return
    conn.run(
        """INSERT INTO lead_import_warnings (import_id, row_no, code, "column", message)
           SELECT CAST(:i AS uuid), r, c, col, m FROM json_to_recordset(CAST(:rows AS json)) AS t(r int, c text, col text, m text)
           ON CONFLICT DO NOTHING""",
        i=import_id, rows=json.dumps(notes, ensure_ascii=False),
    )


def row_warnings_page(conn: Any, import_id: str, *, code: str | None, after: tuple[int, str, str],
                      limit: int) -> list[list[Any]]:
    """(row, code, column, message) after the key `after` (row, code, column), in that order, at most `limit`."""
    return list(conn.run(
        """SELECT row_no, code, "column", message FROM lead_import_warnings
           WHERE import_id = CAST(:i AS uuid) AND (row_no, code, "column") > (:r, :c, :col)
             AND (CAST(:code AS text) IS NULL OR code = :code)
           ORDER BY row_no, code, "column" LIMIT :limit""",
        i=import_id, r=after[0], c=after[1], col=after[2], code=code, limit=limit,
    ) or [])
