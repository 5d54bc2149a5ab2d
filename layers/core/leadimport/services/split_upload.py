"""Use case: a CSV landed in the upload bucket -> an import whose rows are chunked into SQS.

Two ways in (see README "Uploading"):
* `uploads/{company_id}/{import_id}/upload.csv`: the key handed out by POST /imports; the import exists.
* `drop/{company_id}/{schedule|offer}/{owner_id}/{any-name}.csv`: a file dropped by an integration; the
  splitter creates the import with default options, or with the JSON options in the object's
  `x-amz-meta-leadimport-options` metadata.

Exactly-once shape: the import records its object version; a duplicate event for it finds the
import already past `queued` (or its split lease held) and starts nothing. The split itself is
checkpointed (byte offset, next row, next chunk) after every batch of sent chunks; a retry or a
continuation resumes there and may re-send the chunks of the last unfinished batch, byte-identical,
which the worker's (import, chunk) done-marker absorbs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from leadimport.csv_io import (
    CsvHeader,
    CsvLimits,
    FileRejectedError,
    chunk_rows,
    fit_rows,
    iter_rows,
    mapped_phone_column,
    no_data_rows_error,
    propose_mapping,
    read_header,
    resolve_columns,
)
from leadimport.csv_io.saved_header import header_from_json, header_to_json
from leadimport.imports import repository as import_repo
from leadimport.imports.status import ImportStatus
from leadimport.messages import MESSAGE_MAX_BYTES, ChunkMessage, ReaderRejection, ReaderWarning
from leadimport.options import ImportOptions, InvalidOptionsError, Owner, options_json, parse_options
from leadimport.services.continuation import Continuation
from leadimport.services.import_options import check_import_options
from leadimport.services.preview import PreviewSource, build_preview
from leadimport.store.aws import ChunkQueue, UploadStore
from leadimport.store.companies import company_exists
from leadimport.store.db import Database

logger = Logger(child=True)

# Ids in a drop key: ASCII digits without a leading zero (str.isdigit() also takes '²' and other scripts' digits),
# at most 18 of them (a bigint).
_DROP_ID = re.compile(r"[1-9][0-9]{0,17}")
CHUNKS_PER_CHECKPOINT = 10  # chunks sent (one to a few send_message_batch calls) between checkpoints


# A chunk message carries the file's column names twice (source_columns, columns): past this much of SQS's 256 KiB
# for them, too little is left for rows, and the file is refused before any chunk is sent.
MAX_MESSAGE_FRAME_BYTES = 131_072


def rows_budget(import_id: str, source_columns: list[str], columns: list[str | None], max_bytes: int) -> int:
    """The bytes of rows a chunk message may carry (by chunk_rows' estimate): `max_bytes`, or what the rest of
    the message leaves of SQS's limit when the header is wide; FileRejectedError when the header alone would
    take more than MAX_MESSAGE_FRAME_BYTES of every message."""
    frame = ChunkMessage.frame_bytes(import_id, source_columns, columns)
    if frame > MAX_MESSAGE_FRAME_BYTES:
        names_kb = len("".join(source_columns).encode("utf-8", "surrogatepass")) // 1024
        raise FileRejectedError(
            "header_too_long",
            f"The column names in the first line of the file take {names_kb:,} KB; at most about "
            f"{MAX_MESSAGE_FRAME_BYTES // 2048:,} KB fit: shorten or remove columns and upload the file again.",
        )
    return min(max_bytes, MESSAGE_MAX_BYTES - frame)


@dataclass(frozen=True)
class SplitConfig:
    upload_prefix: str = "uploads/"
    drop_prefix: str = "drop/"
    # A dropped file no import can be made of (its key names no company we know) moves here, with the reason in
    # its metadata: out of drop/ (nothing waits on it) but kept for the operator until the lifecycle rule.
    rejected_prefix: str = "rejected/"
    max_upload_bytes: int = 2 * 1024**3
    chunk_rows: int = 2000
    # Rows' JSON a chunk (chunk_rows' estimate, near exact): 2,000 realistic rows take ~205 KB. The message stays
    # within SQS's 256 KiB: the rows get what the header leaves (rows_budget, which refuses a header too long),
    # and a row too big for a message of its own is rejected (fit_rows).
    chunk_max_bytes: int = 240_000
    time_margin_ms: int = 30_000
    # The split lease: renewed at every checkpoint (seconds apart); a splitter that died loses it this long after
    # its last checkpoint, and the next attempt (S3 retry, continuation, the sweep's nudge) resumes the split.
    lease_seconds: int = 60
    limits: CsvLimits = CsvLimits()


@dataclass(frozen=True)
class SplitOutcome:
    import_id: str | None
    status: str
    detail: str = ""


class Splitter:
    def __init__(self, db: Database, uploads: UploadStore, queue: ChunkQueue, continuation: Continuation,
                 config: SplitConfig, remaining_ms: Callable[[], int] = lambda: 10**9):
        self.db = db
        self.uploads = uploads
        self.queue = queue
        self.continuation = continuation
        self.config = config
        self.remaining_ms = remaining_ms

    # ---- entry points ---------------------------------------------------------------------------

    def object_created(self, key: str, version_id: str | None = None) -> SplitOutcome:
        """An S3 ObjectCreated event for `key` (already URL-decoded)."""
        if key.startswith(self.config.upload_prefix):
            return self._api_upload(key, version_id)
        if key.startswith(self.config.drop_prefix):
            return self._dropped_file(key, version_id)
        logger.warning("object outside the upload and drop prefixes ignored")
        return SplitOutcome(None, "ignored", "not an upload prefix")

    def resume(self, import_id: str) -> SplitOutcome:
        """A continuation (or POST /imports/{id}/start): split from the import's checkpoint."""
        return self._split(import_id)

    # ---- the two ways in ------------------------------------------------------------------------

    def _api_upload(self, key: str, version_id: str | None) -> SplitOutcome:
        found = import_repo.find_by_upload_key(self.db, key)
        if found is None:
            logger.warning("upload for an unknown import ignored", extra={"key_prefix": key.split("/")[:2]})
            return SplitOutcome(None, "ignored", "no import for this key")
        info = self.uploads.head(key, version_id)
        if info.size > self.config.max_upload_bytes:
            import_repo.fail(self.db, found["id"], self._too_big(info.size))
            self.uploads.delete(key)  # nothing of it will be read: it does not stay in the bucket
            return SplitOutcome(found["id"], "failed", "too big")
        claimed = import_repo.attach_upload(self.db, found["id"], info.version, info.size)
        if (not claimed and found.get("object_version") is None
                and import_repo.attach_upload_of_ended(self.db, found["id"], info.version, info.size)):
            # Cancelled before its upload's event came: nothing is split, but the file is the import's (its rows
            # are listed as never read).
            return SplitOutcome(found["id"], "cancelled", "cancelled before the file was read")
        if not claimed and found.get("object_version") not in (None, info.version):
            logger.warning("a second file uploaded for an import that already has one: ignored",
                           extra={"import_id": found["id"]})
            return SplitOutcome(found["id"], "ignored", "import already has a file")
        return self._split(found["id"])

    def _dropped_file(self, key: str, version_id: str | None) -> SplitOutcome:
        parts = key[len(self.config.drop_prefix):].split("/")
        if (len(parts) < 4 or not _DROP_ID.fullmatch(parts[0]) or parts[1] not in ("schedule", "offer")
                or not _DROP_ID.fullmatch(parts[2])):
            return self._reject_drop(key, version_id, (
                "The key does not name a company, an owner type and an owner id: files go to "
                f"{self.config.drop_prefix}{{company id}}/{{schedule|offer}}/{{owner id}}/{{file name}}.csv, ids in "
                "ASCII digits without leading zeros."))
        company_id, owner_type, owner_id = int(parts[0]), parts[1], int(parts[2])
        info = self.uploads.head(key, version_id)
        existing = import_repo.find_drop_import(self.db, key, info.version)
        if existing is not None:
            return self._split(existing["id"])  # duplicate event, or a retry: resumes only if unfinished

        if not company_exists(self.db, company_id):
            return self._reject_drop(key, version_id, f"No company has the id {company_id}.")
        error: str | None = None
        options = ImportOptions()
        try:
            # The same checks as POST /imports: the options model, then the owner and every id they name.
            raw_options = info.metadata.get("leadimport-options")
            if raw_options:
                options = parse_options(raw_options)
            check_import_options(self.db, company_id, Owner.model_validate({"type": owner_type, "id": owner_id}), options)
        except InvalidOptionsError as exc:
            error = f"The options attached to the file cannot be used: {exc.message}"
        if info.size > self.config.max_upload_bytes:
            error = self._too_big(info.size)
        with self.db.transaction() as conn:
            name = parts[-1] or "dropped file"
            created = import_repo.insert_import(
                conn, import_id=import_repo.new_import_id(), company_id=company_id, name=name[:200],
                owner_type=owner_type, owner_id=owner_id, options=options_json(options),
                status=ImportStatus.FAILED if error else ImportStatus.QUEUED, source="drop", upload_key=key,
                object_version=info.version, object_size=info.size, error=error,
            )
        if created is None:  # a concurrent duplicate event created it first
            existing = import_repo.find_drop_import(self.db, key, info.version)
            return self._split(existing["id"]) if existing else SplitOutcome(None, "ignored", "race")
        if error:
            return SplitOutcome(created["id"], "failed", error)
        return self._split(created["id"])

    def _reject_drop(self, key: str, version_id: str | None, reason: str) -> SplitOutcome:
        """No import can be recorded (no company to show it to): the object moves to the rejected prefix with
        the reason in its metadata, and the rejection is logged (the reason names no value of the file)."""
        new_key = self.config.rejected_prefix + key
        if not self.uploads.move(key, new_key, version_id, {"leadimport-rejection": reason[:1000]}):
            logger.info("dropped file already moved or deleted (a duplicate event)")
            return SplitOutcome(None, "rejected", reason)
        logger.error("dropped file rejected and moved", extra={"rejected_key": new_key, "reason": reason})
        return SplitOutcome(None, "rejected", reason)

    # ---- the split ------------------------------------------------------------------------------

    def _claim(self, import_id: str) -> dict[str, Any] | None:
        """Take the split lease; None when the import is not ours to split now."""
        return import_repo.claim_split(self.db, import_id, self.config.lease_seconds)

    def _release(self, job: dict[str, Any]) -> None:
        import_repo.release_split(self.db, job["id"], job["split_attempt"])

    def _split(self, import_id: str) -> SplitOutcome:
        job = self._claim(import_id)
        if job is None:
            return SplitOutcome(import_id, "skipped", "not splittable now (done, running elsewhere, or not queued)")
        try:
            return self._split_claimed(job)
        except FileRejectedError as exc:
            logger.info("file rejected", extra={"import_id": import_id, "code": exc.code})
            import_repo.fail(self.db, import_id, exc.message)
            return SplitOutcome(import_id, "failed", exc.message)
        except BaseException:
            self._release(job)  # a retry of this event may resume at once
            raise

    def _split_claimed(self, job: dict[str, Any]) -> SplitOutcome:
        import_id: str = job["id"]
        options = ImportOptions.model_validate(job["options"])
        limits = self.config.limits
        if job["split_offset"] is None:
            with self.uploads.open(job["upload_key"], 0, job["object_version"]) as stream:
                header = read_header(stream, delimiter=options.delimiter, encoding=options.encoding, limits=limits)
                if options.preview and not (job["header"] or {}).get("confirmed"):
                    # The preview proposes a mapping (e.g. "Phone Number" -> caller_id) instead of failing.
                    mapping = propose_mapping(header.columns, options.column_mapping)
                    resolved = resolve_columns(header.columns, mapping)
                    return self._preview(import_id, job, header, resolved.names, options, mapping)
                resolved = resolve_columns(header.columns, options.column_mapping)
            self._save_header(import_id, job["split_attempt"], header, resolved.names)
            offset, next_row, next_chunk = header.data_offset, 1, 0
        else:
            header = header_from_json(job["header"])
            resolved = resolve_columns(header.columns, options.column_mapping)
            offset, next_row, next_chunk = int(job["split_offset"]), int(job["split_next_row"]), int(job["split_next_chunk"])

        source_columns, columns = header.columns, resolved.names
        with self.uploads.open(job["upload_key"], offset, job["object_version"]) as stream:
            max_bytes = rows_budget(import_id, source_columns, columns, self.config.chunk_max_bytes)
            rows = fit_rows(iter_rows(stream, header, start_row=next_row, start_offset=offset, limits=limits,
                                      phone_column=mapped_phone_column(columns)), max_bytes, offset)
            pending: list[ChunkMessage] = []
            for group in chunk_rows(rows, max_rows=self.config.chunk_rows, max_bytes=max_bytes):
                message = ChunkMessage(
                    import_id=import_id, chunk_no=next_chunk, first_row=group[0].row_no,
                    source_columns=source_columns, columns=columns,
                    rows=[(r.row_no, r.values) for r in group if r.reason is None],
                    rejected=[ReaderRejection(r.row_no, r.reason, r.message or r.reason, r.values)
                              for r in group if r.reason is not None],
                    warned=[ReaderWarning(r.row_no, w.code, w.column, w.message)
                            for r in group if r.warnings for w in r.warnings],
                )
                pending.append(message)
                next_chunk += 1
                next_row = group[-1].row_no + 1
                offset = group[-1].end_offset
                if len(pending) == CHUNKS_PER_CHECKPOINT:
                    self.queue.send(pending)
                    pending = []
                    status = import_repo.checkpoint(self.db, import_id, job["split_attempt"], offset, next_row,
                                                    next_chunk, self.config.lease_seconds)
                    if status != ImportStatus.SPLITTING:
                        logger.info("split stopped: the import is no longer splitting",
                                    extra={"import_id": import_id, "import_status": status})
                        return SplitOutcome(import_id, status, f"import {status} while splitting")
                    if self.remaining_ms() < self.config.time_margin_ms:
                        self._release(job)
                        self.continuation(import_id)
                        logger.info("split continues in a new invocation",
                                    extra={"import_id": import_id, "next_row": next_row, "next_chunk": next_chunk})
                        return SplitOutcome(import_id, "continued", f"next row {next_row}")
            if pending:
                self.queue.send(pending)
        return self._finish(import_id, job["split_attempt"], offset, next_row - 1, next_chunk)

    def _preview(self, import_id: str, job: dict[str, Any], header: CsvHeader, columns: list[str | None],
                 options: ImportOptions, mapping: dict[str, str | None]) -> SplitOutcome:
        """Run the file (or a large sample of it) through the worker's row rules and chunk plan, against what the
        database knows now, then wait for the user (services/preview.py)."""
        source = PreviewSource(import_id=import_id, company_id=job["company_id"], owner_type=job["owner_type"],
                               owner_id=job["owner_id"], upload_key=job["upload_key"],
                               object_version=job["object_version"], object_size=job.get("object_size"))
        preview = build_preview(self.db, self.uploads, source, header, options, mapping, limits=self.config.limits)
        if not preview["totals"]["rows"]:
            raise no_data_rows_error()
        if not import_repo.save_preview(self.db, import_id, preview, header_to_json(header, columns)):
            return SplitOutcome(import_id, "skipped", "the import changed while its preview was read")
        return SplitOutcome(import_id, "awaiting_confirmation")

    def _save_header(self, import_id: str, attempt: int, header: CsvHeader, columns: list[str | None]) -> None:
        import_repo.save_header(self.db, import_id, attempt, header_to_json(header, columns),
                                {w: 1 for w in header.warnings})

    def _finish(self, import_id: str, attempt: int, offset: int, total_rows: int, chunk_count: int) -> SplitOutcome:
        if total_rows == 0:
            raise no_data_rows_error()
        status = import_repo.finish_split(self.db, import_id, attempt, offset, total_rows, chunk_count)
        logger.info("split finished", extra={"import_id": import_id, "total_rows": total_rows, "chunks": chunk_count,
                                             "import_status": status})
        return SplitOutcome(import_id, status, f"{total_rows} rows in {chunk_count} chunks")

    def _too_big(self, size: int) -> str:
        return (f"The file is {size / 1024**2:,.0f} MB, more than the {self.config.max_upload_bytes / 1024**2:,.0f} MB "
                "an import accepts. Split it into smaller files and import each one.")


__all__ = ["Continuation", "SplitConfig", "SplitOutcome", "Splitter"]
