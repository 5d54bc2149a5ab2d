"""Use cases behind the import API: create (with a presigned upload), read, list, errors, start, cancel.

Every read and write is scoped by the caller's company; an import of another company is
`ImportNotFoundError`, exactly like an import that does not exist (never "forbidden", which
would confirm it exists).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from leadimport.csv_io import (
    CsvHeader,
    FileRejectedError,
    iter_rows,
    mapped_phone_column,
    read_header,
    resolve_columns,
)
from leadimport.csv_io.mapping import ERROR_CSV_COLUMNS, bookkeeping_columns
from leadimport.csv_io.saved_header import header_from_json, header_to_json
from leadimport.imports import repository as import_repo
from leadimport.imports.resource import (
    CreatedImport,
    ImportPage,
    ImportPreview,
    ImportResource,
    PresignedPost,
    RejectedRow,
    RejectedRowPage,
    RowWarningItem,
    RowWarningPage,
    UploadInstructions,
    to_resource,
    unread_from_row,
)
from leadimport.imports.status import FINAL, ImportStatus
from leadimport.options import ImportOptions, ImportRequest, options_json
from leadimport.reasons import Reason
from leadimport.services.continuation import Continuation
from leadimport.services.import_options import check_import_options
from leadimport.store.aws import UploadStore
from leadimport.store.db import Database

if TYPE_CHECKING:
    from leadimport.store.tokens import TokenStore


class ImportNotFoundError(LookupError):
    pass


class InvalidRequestError(ValueError):
    """The request cannot be done as asked: `code` is stable, the message is for the user."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class ConflictError(InvalidRequestError):
    pass


logger = Logger(child=True)
# The part of a stopped import's file never read is listed in errors.csv when it is at most this big: read within
# the API's time (29 s) and disk. A larger rest is named by the import's `unread_from_row` (import the file again
# from that row).
UNREAD_LISTED_BYTES = 20 * 1024**2
UPLOAD_FILE_NAME = "upload.csv"
INLINE_CSV_LIMIT = 5_000_000  # bytes; Lambda's response limit is 6 MB
EXPORT_URL_SECONDS = 900


@dataclass(frozen=True)
class UploadConfig:
    upload_prefix: str
    max_upload_bytes: int
    presign_expires_seconds: int


def upload_key(prefix: str, company_id: int, import_id: str) -> str:
    return f"{prefix}{company_id}/{import_id}/{UPLOAD_FILE_NAME}"


class ImportsApi:
    def __init__(self, db: Database, uploads: UploadStore, config: UploadConfig, continuation: Continuation,
                 tokens: TokenStore | None = None):
        self.db = db
        self.uploads = uploads
        self.config = config
        self.continuation = continuation
        self.tokens = tokens  # created on first use: only undo needs Redis

    # ---- create -------------------------------------------------------------------------------

    def create(self, company_id: int, request: ImportRequest) -> CreatedImport:
        if request.upload_size is not None and request.upload_size > self.config.max_upload_bytes:
            raise InvalidRequestError("file_too_large", (
                f"The file is {request.upload_size / 1024**2:,.0f} MB, more than the "
                f"{self.config.max_upload_bytes / 1024**2:,.0f} MB an import accepts. Split it into smaller files "
                "and import each one."))
        options = ImportOptions.model_validate(options_json(request))
        owner_name = check_import_options(self.db, company_id, request.owner, options)
        import_id = import_repo.new_import_id()
        key = upload_key(self.config.upload_prefix, company_id, import_id)
        name = request.name or f"{owner_name} @ {datetime.now(UTC):%d/%m/%y}"
        with self.db.transaction() as conn:
            row = import_repo.insert_import(
                conn, import_id=import_id, company_id=company_id, name=name, owner_type=request.owner.type,
                owner_id=request.owner.id, options=options_json(options), status=ImportStatus.AWAITING_UPLOAD,
                source="api",
                upload_key=key, max_concurrency=request.max_concurrency,
            )
        assert row is not None
        upload = UploadInstructions(
            post=PresignedPost.model_validate(
                self.uploads.presigned_post(key, self.config.max_upload_bytes, self.config.presign_expires_seconds)),
            put_url=(self.uploads.presigned_put(key, self.config.presign_expires_seconds, request.upload_size)
                     if request.upload_size is not None else None),
            content_type="text/csv", max_bytes=self.config.max_upload_bytes,
            expires_in=self.config.presign_expires_seconds,
        )
        return CreatedImport(**dict(to_resource(row)), upload=upload)

    # ---- read ---------------------------------------------------------------------------------

    def get(self, company_id: int, import_id: str) -> ImportResource:
        return to_resource(self._row(company_id, import_id))

    def _row(self, company_id: int, import_id: str) -> dict[str, Any]:
        row = import_repo.get_import(self.db, company_id, import_id)
        if row is None:
            raise ImportNotFoundError(import_id)
        return row

    def list(self, company_id: int, *, status: str | None, limit: int, cursor: str | None) -> ImportPage:
        before = _list_cursor(cursor) if cursor else None
        rows = import_repo.list_imports(self.db, company_id, status=status, limit=limit + 1, before=before)
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = _encode_cursor([to_resource(last).created_at, last["id"]])
        return ImportPage(items=[to_resource(r) for r in page], next_cursor=next_cursor)

    def preview(self, company_id: int, import_id: str) -> ImportPreview:
        row = self._row(company_id, import_id)
        if row["preview"] is None:
            raise ConflictError("no_preview", "This import has no preview: it was not created with \"preview\": true, "
                                "or its file has not been read yet.")
        return ImportPreview.model_validate({"import": to_resource(row), **row["preview"]})

    def repreview(self, company_id: int, import_id: str, column_mapping: dict[str, str | None]) -> ImportPreview:
        """The preview again with another column mapping, computed from the uploaded file (the same rules, plan and
        sample as the first one); the mapping is the one `start` confirms unless it is given another."""
        from leadimport.services.preview import PreviewSource, build_preview

        row = self._row(company_id, import_id)
        if row["status"] != ImportStatus.AWAITING_CONFIRMATION or not row["header"]:
            raise ConflictError("not_awaiting_confirmation",
                                f"Only an import awaiting confirmation has a preview to change; this one is {row['status']}.")
        header = header_from_json(row["header"])
        source = PreviewSource(import_id=import_id, company_id=company_id, owner_type=row["owner_type"],
                               owner_id=row["owner_id"], upload_key=row["upload_key"],
                               object_version=row["object_version"], object_size=row["object_size"])
        try:
            preview = build_preview(self.db, self.uploads, source, header, ImportOptions.model_validate(row["options"]),
                                    column_mapping)
        except FileRejectedError as exc:
            raise InvalidRequestError(exc.code, exc.message) from exc
        mapped = list(preview["proposed_mapping"].values())
        if not import_repo.replace_preview(self.db, company_id, import_id, preview, header_to_json(header, mapped)):
            raise ConflictError("not_awaiting_confirmation", "The import was changed meanwhile; reload it.")
        return self.preview(company_id, import_id)

    def errors(self, company_id: int, import_id: str, *, reason: str | None, limit: int,
               cursor: str | None) -> RejectedRowPage:
        self._row(company_id, import_id)
        after = _row_cursor(cursor) if cursor else 0
        rows = self.db.run(
            """SELECT row_no, reason, message, "values" FROM lead_import_rejections
               WHERE import_id = CAST(:i AS uuid) AND row_no > :after
                 AND (CAST(:reason AS text) IS NULL OR reason = :reason)
               ORDER BY row_no LIMIT :limit""",
            i=import_id, after=after, reason=reason, limit=limit + 1,
        )
        items = [RejectedRow(row=r[0], reason=r[1], message=r[2], values=r[3]) for r in rows[:limit]]
        next_cursor = _encode_cursor([items[-1].row]) if len(rows) > limit else None
        return RejectedRowPage(items=items, next_cursor=next_cursor)

    def warnings(self, company_id: int, import_id: str, *, code: str | None, limit: int,
                 cursor: str | None) -> RowWarningPage:
        """The warnings of the rows that went in (what was fixed or left out), by row, paged like the errors."""
        from leadimport.store.row_warnings import row_warnings_page

        self._row(company_id, import_id)
        after = _warning_cursor(cursor) if cursor else (0, "", "")
        rows = row_warnings_page(self.db, import_id, code=code, after=after, limit=limit + 1)
        items = [RowWarningItem(row=r[0], code=r[1], column=r[2] or None, message=r[3]) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = _encode_cursor([last[0], last[1], last[2]])
        return RowWarningPage(items=items, next_cursor=next_cursor)

    def errors_csv_download(self, company_id: int, import_id: str) -> tuple[str | None, str | None]:
        """(csv text, None) when it fits in an API response, else (None, presigned URL of a copy in S3):
        a Lambda response cannot exceed 6 MB, and an import of 100k bad rows makes a larger file."""
        with tempfile.NamedTemporaryFile("w+", encoding="utf-8", newline="", suffix=".csv") as out:
            size = 0
            for part in self.errors_csv(company_id, import_id):
                out.write(part)
                size += len(part.encode("utf-8"))
            out.flush()
            if size <= INLINE_CSV_LIMIT:
                out.seek(0)
                return out.read(), None
            key = f"exports/{company_id}/{import_id}/errors-{uuid.uuid4().hex[:8]}.csv"
            self.uploads.put_file(key, out.name, "text/csv; charset=utf-8", f"import-{import_id}-errors.csv")
        return None, self.uploads.presigned_get(key, EXPORT_URL_SECONDS)

    def errors_csv(self, company_id: int, import_id: str) -> Iterator[str]:
        """The rejected rows with their original columns plus row, reason, message; formula-safe.
        Fields beyond the header (a row with too many fields) are kept, quoted in the message, so the
        CSV stays one column per header name and nothing of the row is lost."""
        row = self._row(company_id, import_id)
        first_unread = unread_from_row(row)
        if first_unread is not None and row["header"] is None:
            row = {**row, **self._header_of_unread_file(row)}  # cancelled before a line of it was read
        columns: list[str] = list((row["header"] or {}).get("columns") or [])
        # A file that was an error CSV already: its bookkeeping columns are written once, never twice.
        columns = columns[:len(columns) - bookkeeping_columns(columns)]
        buf = io.StringIO()
        buf.write("\ufeff")  # UTF-8 with BOM: spreadsheets show non-ASCII names as they are
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow([neutralize(c) for c in columns + list(ERROR_CSV_COLUMNS)])
        after = 0
        while True:
            rows = self.db.run(
                """SELECT row_no, reason, message, "values" FROM lead_import_rejections
                   WHERE import_id = CAST(:i AS uuid) AND row_no > :after ORDER BY row_no LIMIT 5000""",
                i=import_id, after=after,
            )
            if not rows:
                break
            for row_no, reason, message, values in rows:
                values = values or {}
                extra = [str(v) for k, v in values.items() if k not in columns]
                if extra:
                    message = f"{message} Fields beyond the header: {' | '.join(extra)}"
                writer.writerow([neutralize(str(values.get(c, ""))) for c in columns]
                                + [str(row_no), reason, neutralize(message)])
                after = row_no
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
        if (first_unread is not None and row["split_offset"] is not None
                and int(row["object_size"]) - int(row["split_offset"]) <= UNREAD_LISTED_BYTES):
            yield from self._unread_rows_csv(row, first_unread, columns, writer, buf)
        yield buf.getvalue()

    def _header_of_unread_file(self, row: dict[str, Any]) -> dict[str, Any]:
        """The header and the offset after it of a file never read (the import was cancelled before its split), as
        the splitter would have read them; nothing when the file is gone or unreadable (the CSV is then empty)."""
        options = ImportOptions.model_validate(row["options"])
        try:
            with self.uploads.open(row["upload_key"], 0, row["object_version"]) as stream:
                header = read_header(stream, delimiter=options.delimiter, encoding=options.encoding)
            mapped = resolve_columns(header.columns, options.column_mapping).names
        except Exception:  # noqa: BLE001 - expired, deleted or not a CSV: there is nothing to list
            logger.warning("the header of a file never read could not be read", extra={"import_id": row["id"]},
                           exc_info=True)
            return {}
        return {"header": header_to_json(header, mapped), "split_offset": header.data_offset}

    def _unread_rows_csv(self, row: dict[str, Any], first_unread: int, columns: Sequence[str], writer: Any,
                         buf: io.StringIO) -> Iterator[str]:
        """The part of the file an ended import never read, read now from its upload (same reader, same row
        numbers) and listed as unprocessed: the errors CSV then holds every row the import did not take."""
        why = ("the import was cancelled" if row["status"] == ImportStatus.CANCELLED
               else "the import failed (see its error)")
        message = f"Not imported: {why} before this part of the file was read."
        header = header_from_json(row["header"])
        mapped = (row["header"] or {}).get("mapped") or []
        try:
            yield from self._unread_rows(row, first_unread, columns, writer, buf, header, message,
                                         mapped_phone_column(mapped))
        except Exception:  # noqa: BLE001 - the file is gone (expired) or unreadable: the rest of the CSV stands
            logger.warning("the part of the file never read could not be listed", extra={"import_id": row["id"]},
                           exc_info=True)

    def _unread_rows(self, row: dict[str, Any], first_unread: int, columns: Sequence[str], writer: Any,
                     buf: io.StringIO, header: CsvHeader, message: str, phone_column: int | None) -> Iterator[str]:
        with self.uploads.open(row["upload_key"], int(row["split_offset"]), row["object_version"]) as stream:
            # the splitter's reader, with its phone column (it tells a quote left open): the same rows and numbers
            for n, read in enumerate(iter_rows(stream, header, start_row=first_unread, phone_column=phone_column,
                                               start_offset=int(row["split_offset"])), start=1):
                values = read.values  # an error CSV's own bookkeeping columns sit between columns and extras
                extra = values[len(header.columns):]
                text = f"{message} Fields beyond the header: {' | '.join(extra)}" if extra else message
                writer.writerow([neutralize(v) for v in values[:len(columns)]]
                                + [""] * max(len(columns) - len(values), 0)
                                + [str(read.row_no), Reason.UNPROCESSED, neutralize(text)])
                if n % 5000 == 0:
                    yield buf.getvalue()
                    buf.seek(0)
                    buf.truncate()

    # ---- change -------------------------------------------------------------------------------

    def start(self, company_id: int, import_id: str, column_mapping: dict[str, str | None] | None) -> ImportResource:
        row = self._row(company_id, import_id)
        if row["status"] != ImportStatus.AWAITING_CONFIRMATION:
            raise ConflictError("not_awaiting_confirmation",
                                f"Only an import awaiting confirmation can be started; this one is {row['status']}.")
        options = dict(row["options"])
        header = dict(row["header"] or {})
        if column_mapping is None and row["preview"]:
            column_mapping = row["preview"].get("column_mapping")  # the mapping the user last previewed
        if column_mapping is not None:
            options["column_mapping"] = column_mapping
        try:
            header["mapped"] = resolve_columns(header.get("columns") or [], options.get("column_mapping")).names
        except FileRejectedError as exc:
            raise InvalidRequestError(exc.code, exc.message) from exc
        header["confirmed"] = True
        if not import_repo.confirm_start(self.db, company_id, import_id, options, header):
            raise ConflictError("not_awaiting_confirmation", "The import was changed meanwhile; reload it.")
        self.continuation(import_id)
        return self.get(company_id, import_id)

    def undo(self, company_id: int, import_id: str) -> ImportResource:
        """Put back what the import did: its leads expire (runs ended, tokens dropped); the leads it expired,
        moved or refreshed come back as they were (runs and tokens too) unless something newer replaced them;
        contacts get back the flags it changed. Running it again changes nothing more."""
        row = self._row(company_id, import_id)
        if row["status"] not in (ImportStatus.COMPLETED, ImportStatus.CANCELLED):
            raise ConflictError("not_finished", f"Only a finished import can be undone; this one is {row['status']}.")
        if (row["options"] or {}).get("dry_run"):
            raise ConflictError("dry_run", "A dry run created nothing to undo.")
        from leadimport.store.leads import undo_import  # Redis only when an undo needs it

        with self.db.transaction() as conn:
            import_repo.lock_for_undo(conn, company_id, import_id)
            restored = undo_import(conn, company_id, import_id)
            import_repo.add_undone(conn, import_id, restored.expired_created)
            # Inside the transaction: if Redis is down the undo rolls back and can simply be asked again.
            tokens = self._tokens()
            tokens.remove(restored.removed)
            tokens.stamp(restored.stamps)
        return self.get(company_id, import_id)

    def _tokens(self) -> TokenStore:
        if self.tokens is None:
            from leadimport.store.tokens import shared_token_store  # Redis only when an undo needs it

            self.tokens = shared_token_store()
        return self.tokens

    def change(self, company_id: int, import_id: str, max_concurrency: int | None) -> ImportResource:
        """PATCH: the throughput cap, read by the workers for every chunk (takes effect on the next chunks)."""
        row = self._row(company_id, import_id)
        if row["status"] in FINAL or not import_repo.set_max_concurrency(self.db, company_id, import_id,
                                                                          max_concurrency):
            raise ConflictError("already_finished", f"The import is already {row['status']}: nothing left to cap.")
        return self.get(company_id, import_id)

    def cancel(self, company_id: int, import_id: str) -> ImportResource:
        row = self._row(company_id, import_id)
        if row["status"] in FINAL:
            raise ConflictError("already_finished", f"The import is already {row['status']}.")
        if not import_repo.cancel(self.db, company_id, import_id):
            raise ConflictError("already_finished", "The import finished meanwhile; reload it.")
        return self.get(company_id, import_id)


def neutralize(value: str) -> str:
    """Spreadsheets run cells that start with = + - @ (or TAB/CR) as formulas: prefix a quote."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


def _encode_cursor(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


BAD_CURSOR = "The page cursor is not valid; start again from the first page."


def _list_cursor(cursor: str) -> tuple[str, str]:
    """(created_at, id) of the last import of the previous page, both checked before they reach SQL."""
    parts = _decode_cursor(cursor)
    try:
        created_at, import_id = parts
        datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
        return str(created_at), str(uuid.UUID(str(import_id)))
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidRequestError("bad_cursor", BAD_CURSOR) from exc


def _row_cursor(cursor: str) -> int:
    """The last row number of the previous page of errors."""
    parts = _decode_cursor(cursor)
    row = parts[0]
    if type(row) is not int or not 0 <= row <= 2**31 - 1:
        raise InvalidRequestError("bad_cursor", BAD_CURSOR)
    return row


def _warning_cursor(cursor: str) -> tuple[int, str, str]:
    """(row, code, column) of the last warning of the previous page."""
    parts = _decode_cursor(cursor)
    if (len(parts) != 3 or type(parts[0]) is not int or not 0 <= parts[0] <= 2**31 - 1
            or not isinstance(parts[1], str) or not isinstance(parts[2], str)):
        raise InvalidRequestError("bad_cursor", BAD_CURSOR)
    return parts[0], parts[1], parts[2]


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(parts, list) or not parts:
            raise ValueError
        return parts
    except (ValueError, TypeError) as exc:
        raise InvalidRequestError("bad_cursor", BAD_CURSOR) from exc
