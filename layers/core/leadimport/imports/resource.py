"""The import resource (../shared/contract.md): one pydantic model for the API's answers and its OpenAPI document.

The routes return these models; Powertools validates every answer against them and documents them,
so the schemathesis run checks the responses against the very same schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from leadimport.imports.status import FINAL, ImportStatus
from leadimport.reasons import Reason, RowWarning


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OwnerRef(_Out):
    type: Literal["schedule", "offer"]
    id: str


class FileInfo(_Out):
    encoding: str | None
    delimiter: str | None
    size_bytes: int | None


class ImportResource(_Out):
    id: str
    name: str
    company_id: str
    owner: OwnerRef
    status: ImportStatus
    source: Literal["api", "drop", "cli"]
    dry_run: bool
    total_rows: int = Field(ge=0, description=(
        "Rows in the file; while it is split, and for an import that stopped before its file was read to the end "
        "(see unread_from_row), the rows read (the rows the counts add up to)"))
    processed_rows: int = Field(ge=0)
    created_leads: int = Field(ge=0)
    updated_leads: int = Field(ge=0, description="Rows that refreshed the owner's live lead for their caller_id")
    rejected_rows: int = Field(ge=0)
    unprocessed_rows: int = Field(ge=0)
    rejections: dict[str, int] = Field(description="Rejected rows by reason code")
    warnings: dict[str, int] = Field(description="Rows with a warning, by warning code")
    progress: float = Field(ge=0, le=1, description=(
        "Share of the file's rows done (processed or unprocessed). While the file is split its row count is "
        "estimated from the bytes read so far (see estimated_total_rows)"))
    estimated_total_rows: int | None = Field(default=None, ge=0, description=(
        "Rows in the file: total_rows once it is split; while it is split, the rows read so far scaled by the "
        "file's size over the bytes read; null before the first checkpoint. For an import stopped before its file "
        "was read to the end, the same estimate of the whole file's rows (null when none was read)"))
    file: FileInfo
    error: str | None = Field(description="Why the whole file was rejected (status failed)")
    undone_leads: int | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    rate_rows_per_second: float | None = None
    eta_seconds: float | None = None
    max_concurrency: int | None = Field(default=None, description=(
        "At most this many of the import's chunks are written at the same time (null: no cap but the stack's)"))
    counts_final: bool = Field(default=False, description=(
        "The counts will not change any more: a final status, and for a cancelled or failed import every chunk sent "
        "has been counted (its queued chunks are counted unprocessed as they are skipped, after the status "
        "changed) and no splitter is still reading the file"))
    unread_from_row: int | None = Field(default=None, description=(
        "The import stopped (failed or cancelled) before its file was read to the end: rows from this number on "
        "were never read. The errors CSV lists them as unprocessed, ready to import again, when that part of the "
        "file is at most 20 MB; a larger rest is imported again from the file, from this row."))


class PresignedPost(_Out):
    url: str
    fields: dict[str, str]


class UploadInstructions(_Out):
    post: PresignedPost
    put_url: str | None = Field(description="A PUT URL for exactly `upload_size` bytes, when the request gave it")
    content_type: str
    max_bytes: int
    expires_in: int


class CreatedImport(ImportResource):
    upload: UploadInstructions


class ImportPage(_Out):
    items: list[ImportResource]
    next_cursor: str | None


class RejectedRow(_Out):
    row: int = Field(ge=1, description="1-based data row number (the header is row 0)")
    reason: Reason
    message: str
    values: dict[str, str]


class RejectedRowPage(_Out):
    items: list[RejectedRow]
    next_cursor: str | None


class RowWarningItem(_Out):
    row: int = Field(ge=1, description="1-based data row number (the header is row 0)")
    code: RowWarning
    column: str | None = Field(description="The file's column the warning is about; null when it is about the row")
    message: str


class RowWarningPage(_Out):
    items: list[RowWarningItem]
    next_cursor: str | None


class PreviewRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    row: int
    outcome: Literal["accepted", "rejected"]
    values: dict[str, str]


class PreviewTotals(_Out):
    """What the import would do with the whole file, or with its first `sample_limit` rows when it has more (then
    `whole_file` is false and `estimated_file_rows` estimates the file's rows from the bytes read)."""

    rows: int = Field(ge=0, description="Rows read and run through the rules and the plan")
    whole_file: bool = Field(description="True when `rows` is every row of the file; false: the first rows only")
    sample_limit: int = Field(ge=1, description="At most this many rows are previewed")
    estimated_file_rows: int | None = Field(ge=0, description=(
        "The file's rows: `rows` for a whole file, else estimated from the bytes read (null when unknown)"))
    created: int = Field(ge=0, description="Rows that would create a lead")
    updated: int = Field(ge=0, description="Rows that would refresh the owner's live lead for their caller_id")
    rejected: int = Field(ge=0, description="Rows that would be rejected")
    rejections: dict[str, int] = Field(description="Rejected rows by reason code (duplicate_lead included)")
    existing_leads: dict[str, int] = Field(description=(
        "Rows whose caller_id has a live lead on the owner, by what happens to it: update, skip, expire, move"))
    warnings: dict[str, int] = Field(description="Rows that would go in with a warning, by code")


class ImportPreview(_Out):
    import_: ImportResource = Field(alias="import")
    encoding: str
    delimiter: str
    header: list[str]
    proposed_mapping: dict[str, str | None]
    column_mapping: dict[str, str | None]
    rows: list[PreviewRow] = Field(description=(
        "The first 20 rows, then the first 20 rejected rows after them, each with its outcome"))
    totals: PreviewTotals | None = Field(default=None, description=(
        "Outcome totals over the file or its first rows (null for a preview made before totals existed)"))

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def estimated_total_rows(row: dict[str, Any]) -> int | None:
    """The file's rows: known once it is split; before, the rows read so far times the file's size over the bytes
    read (the split checkpoint records both). None before the first checkpoint with rows. An import that ended
    (cancelled, failed) before its file was read to the end counts only the rows read in `total_rows`: the file's
    rows are then this estimate again (None when no row was read), never the rows read presented as the file's."""
    if row["total_rows"] is not None and unread_from_row(row) is None:
        return int(row["total_rows"])
    offset, size = row["split_offset"], row["object_size"]
    rows_read = max(row["split_next_row"] - 1, 0) if offset else 0
    if not (rows_read and offset and size):
        return None
    return max(rows_read, round(rows_read * size / offset))


def to_resource(row: dict[str, Any]) -> ImportResource:
    """The import resource of a lead_imports row."""
    total = row["total_rows"]
    done = row["processed_rows"] + row["unprocessed_rows"]
    status = ImportStatus(row["status"])
    estimate = estimated_total_rows(row)
    if status is ImportStatus.COMPLETED:
        progress = 1.0
    elif total:
        progress = min(round(done / total, 4), 1.0)
    elif estimate:  # still split: never 1.0 before the file's last row is known
        progress = min(round(done / estimate, 4), 0.99)
    else:
        progress = 0.0
    rate = eta = None
    if status in (ImportStatus.SPLITTING, ImportStatus.PROCESSING) and row["started_at"] and row["processed_rows"]:
        elapsed = max((datetime.now(UTC) - row["started_at"]).total_seconds(), 0.001)
        rate = round(row["processed_rows"] / elapsed, 1)
        if estimate and rate:
            eta = round(max(estimate - done, 0) / rate, 1)
    return ImportResource(
        id=row["id"], name=row["name"], company_id=str(row["company_id"]),
        owner=OwnerRef(type=row["owner_type"], id=str(row["owner_id"])), status=status, source=row["source"],
        dry_run=bool((row.get("options") or {}).get("dry_run")),
        total_rows=total if total is not None else (row["split_next_row"] - 1 if row["split_offset"] else 0),
        processed_rows=row["processed_rows"], created_leads=row["created_leads"], updated_leads=row["updated_leads"],
        rejected_rows=row["rejected_rows"],
        unprocessed_rows=row["unprocessed_rows"], rejections=dict(row["rejections"] or {}),
        warnings=dict(row["warnings"] or {}), progress=progress, estimated_total_rows=estimate,
        file=FileInfo(encoding=row["file_encoding"], delimiter=row["file_delimiter"], size_bytes=row["object_size"]),
        error=row["error"], undone_leads=row["undone_leads"], created_at=_iso(row["created_at"]),
        started_at=_iso(row["started_at"]), finished_at=_iso(row["finished_at"]), rate_rows_per_second=rate,
        eta_seconds=eta, max_concurrency=row.get("max_concurrency"), unread_from_row=unread_from_row(row),
        counts_final=counts_final(row),
    )


def counts_final(row: dict[str, Any]) -> bool:
    """Final status, and for a stopped import: every chunk the split sent counted, and no split attempt still holding
    its lease (it would send and record more before it sees the status; a dead one's lease lapses)."""
    status = ImportStatus(row["status"])
    if status not in FINAL:
        return False
    if status is ImportStatus.COMPLETED:
        return True
    lease = row.get("split_lease_until")
    splitting = not row.get("split_done") and lease is not None and lease > datetime.now(UTC)
    return not splitting and int(row.get("chunks_done") or 0) >= int(row.get("chunk_count") or 0)


def unread_from_row(row: dict[str, Any]) -> int | None:
    """The first row never read of an import that ended (failed, cancelled) while its file was split, or 1 for one
    cancelled after its upload and before its split began; None when the file was read to the end, never uploaded,
    or rejected as a whole (a failed import with no split: its error says why)."""
    if row["status"] not in (ImportStatus.FAILED, ImportStatus.CANCELLED):
        return None  # (a cancel's last checkpoint marks the split done at the rows sent: the rest is still unread)
    if row["split_offset"] is None and row["object_size"] and row["status"] == ImportStatus.CANCELLED:
        return 1
    if row["split_offset"] is None or row["object_size"] is None or row["split_offset"] >= row["object_size"]:
        return None
    return int(row["split_next_row"])


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None
