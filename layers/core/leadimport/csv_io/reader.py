"""Streaming CSV reader with exact byte offsets.

Offsets must be exact: a later invocation resumes at a ``CsvRow.end_offset`` with an S3 ``Range``
request and must neither lose nor repeat a row. ``io.TextIOWrapper`` reads ahead (offsets are lost)
and ``codecs.getreader`` is slow, so the bytes are decoded here:

* The stream is read in blocks cut after their last ``b"\\n"`` (lines end with ``b"\\n"`` only; a
  ``b"\\r\\n"`` stays inside its line; Unicode line separators are data). Reads are aligned to
  absolute multiples of ``_BLOCK`` so that where blocks are cut does not depend on where reading
  started.
* Each block is decoded in one go to a string with one character per byte: ASCII, a single-byte
  encoding such as cp1252, or, for UTF-8 text with non-ASCII bytes, Latin-1 (the csv syntax is ASCII
  and UTF-8 multi-byte sequences never contain ASCII bytes, so the records are the same; the fields
  of those rows are then decoded as UTF-8, and a field that does not decode marks its row
  ``invalid_encoding``).
* ``csv.reader`` reads the lines of an ``io.StringIO`` of the block. It pulls exactly the lines of
  one record and never reads ahead, so after each record ``block offset + StringIO.tell()`` is the
  record's end offset. No Python code runs per line; per row there is one ``tell()``, a few
  comparisons and the CsvRow.

Memory does not grow with the file size: blocks are 64 KiB, a field is capped by
``csv.field_size_limit``, and a line or record longer than ``CsvLimits.record_bytes_cap`` is cut off
and rejected.

A quote left open (a stray ``"``) would make csv read the lines after it as one value: a record that
spans lines is a quote left open when a line after its first reads as a row of its own (two fields
or more, a phone number in the phone column), when it spans more than ``CsvLimits.max_value_lines``
lines, or when it runs to the end of the file or past the field limit. The row whose line opened it
is rejected (malformed_row) and reading goes on with the next line. Forgiven with a row warning: NUL
bytes (removed; a file is binary only when they are more than 5% of its first 8 KiB) and a value over the field limit in a column other than the phone's (left out).

Whole-file rejection codes (``FileRejectedError.code``): empty_file, not_text, utf16,
too_many_columns, duplicate_columns, empty_header, malformed_header (header quote never closed,
header longer than the sniffed bytes, carriage-return-only line ends); and, raised by the callers
or by mapping.py: no_data_rows, missing_caller_id, unknown_mapping_column.
"""

from __future__ import annotations

import _csv
import codecs
import csv
import functools
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from leadimport.reasons import Reason, RowWarning, WarningNote

__all__ = [
    "DELIMITERS",
    "CsvHeader",
    "CsvLimits",
    "CsvRow",
    "FileRejectedError",
    "iter_rows",
    "no_data_rows_error",
    "open_csv",
    "read_header",
]

DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")

_UTF8_BOM = b"\xef\xbb\xbf"
_NUL_SCAN_BYTES = 8192
# NUL bytes making more than this share of the first 8 KiB make the file binary (a text export has none, or a few a
# broken export left; other control characters are data, as in any text).
_BINARY_SHARE = 0.05
_SNIFF_SAMPLE_LINES = 30
# Completes "..., which cannot be imported: " and similar.
_SAVE_AS_CSV = (
    'open it in Excel, choose File > Save As (or Save a Copy), pick the type "CSV UTF-8 (Comma '
    'delimited) (*.csv)", and upload the new .csv file'
)


class FileRejectedError(Exception):
    """The whole file is rejected.

    ``message`` is one sentence a non-technical user understands, saying what is wrong and how to
    fix it; ``code`` is a stable machine-readable code (see the module docs for the list).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message)  # both in args, so the error pickles
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"FileRejectedError({self.code!r}, {self.message!r})"


def no_data_rows_error() -> FileRejectedError:
    """The error the caller raises when a file has a header but no data rows."""
    return FileRejectedError(
        "no_data_rows",
        "The file has a header line with the column names but no rows of data below it: "
        "add the leads under the header and upload the file again.",
    )


@dataclass(frozen=True)
class CsvLimits:
    max_columns: int = 500
    max_field_chars: int = 10_000  # a longer field -> row rejected Reason.VALUE_TOO_LONG
    sniff_bytes: int = 1 << 20  # the first MiB decides the encoding (and the delimiter)
    max_value_lines: int = 50  # a quoted value running across more lines is a quote left open

    @property
    def field_size_limit(self) -> int:
        """What ``csv.field_size_limit`` is set to: bounds the memory a stray quote can take."""
        return max(1 << 20, 4 * self.max_field_chars)

    @property
    def record_bytes_cap(self) -> int:
        """A record (or line) at least this long is cut off and rejected (VALUE_TOO_LONG)."""
        # Every field at its limit, fully quoted with every character a doubled quote, 4 bytes/char.
        return max(self.field_size_limit, self.max_columns * (2 * self.max_field_chars + 3)) * 4


@dataclass(frozen=True)
class CsvHeader:
    columns: list[str]  # header names, whitespace-trimmed (BOM removed), original case
    delimiter: str  # one of , ; \t |  (or what the caller forced)
    encoding: str  # "utf-8" or "cp1252" (a UTF-8 BOM is just skipped)
    data_offset: int  # byte offset of the first data record (just after the header record)
    warnings: list[str] = field(default_factory=list)  # e.g. [RowWarning.ENCODING_FALLBACK]


@dataclass(frozen=True, slots=True)
class CsvRow:
    row_no: int  # 1-based data row number; blank lines are skipped and not numbered
    values: list[str]  # len(header.columns) values when reason is None; best-effort otherwise
    end_offset: int  # byte offset just after this record (resume point)
    reason: str | None = None  # Reason.MALFORMED_ROW / INVALID_ENCODING / VALUE_TOO_LONG
    message: str | None = None  # a sentence for the user
    warnings: tuple[WarningNote, ...] = ()  # what was fixed in the row (NUL removed, a long value left out)


class _RowBuilder:
    """Same slot layout as CsvRow, without the frozen ``__setattr__``.

    A frozen dataclass's ``__init__`` calls ``object.__setattr__`` once per field (~1 us per row,
    more than parsing the row); building this and then switching ``__class__`` to CsvRow gives a
    genuine, immutable CsvRow for a third of that. Checked at import below.
    """

    __slots__ = ("row_no", "values", "end_offset", "reason", "message", "warnings")

    def __init__(
        self, row_no: int, values: list[str], end_offset: int, reason: str | None, message: str | None,
        warnings: tuple[WarningNote, ...],
    ) -> None:
        self.row_no = row_no
        self.values = values
        self.end_offset = end_offset
        self.reason = reason
        self.message = message
        self.warnings = warnings


def _make_row(
    row_no: int, values: list[str], end_offset: int, reason: str | None = None, message: str | None = None,
    warnings: tuple[WarningNote, ...] = (),
) -> CsvRow:
    row: Any = _RowBuilder(row_no, values, end_offset, reason, message, warnings)
    row.__class__ = CsvRow
    return cast(CsvRow, row)


assert CsvRow.__slots__ == _RowBuilder.__slots__  # type: ignore[attr-defined]
assert _make_row(1, ["a"], 2, "r", "m") == CsvRow(1, ["a"], 2, "r", "m")


# --------------------------------------------------------------------------------------------------
# header


def read_header(
    stream: BinaryIO,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    limits: CsvLimits = CsvLimits(),  # noqa: B008 - frozen, safe as a default
) -> CsvHeader:
    """Read and check the header of a CSV file.

    ``stream`` is a readable binary stream positioned at byte 0. Up to ``limits.sniff_bytes`` are
    read to decide the encoding and the delimiter. If the stream is seekable it is left positioned
    at ``data_offset`` (ready for :func:`iter_rows`); a non-seekable stream has been read past the
    header, so either use :func:`open_csv` or open the object again at ``data_offset``.

    Raises :class:`FileRejectedError` when the file cannot be imported at all.
    """
    header, _rest = _read_header(stream, delimiter, encoding, limits)
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        stream.seek(header.data_offset)
    return header


def open_csv(
    stream: BinaryIO,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    limits: CsvLimits = CsvLimits(),  # noqa: B008
    phone_column: int | None = None,
) -> tuple[CsvHeader, Iterator[CsvRow]]:
    """``read_header`` then ``iter_rows`` on the same stream, reusing the bytes already read."""
    header, rest = _read_header(stream, delimiter, encoding, limits)
    rows = _iter_rows(stream, header, 1, header.data_offset, limits, rest, phone_column)
    return header, rows


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes, fewer only at the end of the stream (raw streams may return less)."""
    data = stream.read(size)
    if data is None:  # non-blocking raw stream with nothing ready: treat as a short read
        data = b""
    if len(data) >= size or not data:
        return bytes(data)
    parts = [data]
    got = len(data)
    while got < size:
        more = stream.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _looks_like_utf16(sample: bytes) -> bool:
    even = sample[0::2]
    odd = sample[1::2]
    if not even or not odd:
        return False
    zero_even = even.count(0) / len(even)
    zero_odd = odd.count(0) / len(odd)
    return max(zero_even, zero_odd) > 0.3 and min(zero_even, zero_odd) < 0.05


def _utf16_error() -> FileRejectedError:
    return FileRejectedError(
        "utf16",
        f'The file is saved as UTF-16 ("Unicode Text"), which cannot be imported: {_SAVE_AS_CSV}.',
    )


def _check_binary(buf: bytes) -> None:
    """Reject files that are clearly not a text CSV."""
    if buf.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _utf16_error()
    if buf.startswith(b"PK\x03\x04"):
        raise FileRejectedError(
            "not_text",
            "The file looks like an Excel workbook (.xlsx) or a zip archive, not a CSV file: "
            f"{_SAVE_AS_CSV} (a zip archive: unzip it and upload the .csv file inside).",
        )
    if buf.startswith(b"\x1f\x8b"):
        raise FileRejectedError(
            "not_text",
            "The file is compressed (gzip), not a plain CSV file: decompress it and upload the .csv file.",
        )
    if buf.startswith(b"%PDF"):
        raise FileRejectedError(
            "not_text",
            "The file is a PDF document, not a CSV file: export the leads from the original "
            "spreadsheet as CSV UTF-8 and upload that file.",
        )
    if buf.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileRejectedError(
            "not_text",
            f"The file looks like an old Excel workbook (.xls), not a CSV file: {_SAVE_AS_CSV}.",
        )
    sample = buf[:_NUL_SCAN_BYTES]
    if 0 in sample and _looks_like_utf16(sample):
        raise _utf16_error()
    # Binary by proportion, not by one byte: a few NULs in a text export are removed row by row (warning nul_removed).
    if sample.count(0) > len(sample) * _BINARY_SHARE:
        raise FileRejectedError(
            "not_text",
            "The file contains binary data, not text, so it is not a CSV file: export the leads "
            "from your spreadsheet as CSV UTF-8 and upload that file.",
        )


def _normalize_encoding(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError as exc:
        raise ValueError(f"unknown encoding {encoding!r}") from exc
    if name == "utf-8-sig":
        name = "utf-8"
    _check_encoding(name)
    return name


def _count_outside_quotes(line: str, delimiters: Iterable[str]) -> dict[str, int]:
    counts = dict.fromkeys(delimiters, 0)
    in_quotes = False
    for ch in line:
        if ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch in counts:
            counts[ch] += 1
    return counts


def _fits(record: list[str], width: int) -> bool:
    n = len(record)
    return n == width or (n > width and not any(record[width:]))


def _detect_delimiter(first_line: str, sample: list[str], sample_complete: bool) -> str:
    """Pick the delimiter from the header line, preferring one consistent with the sample rows."""
    counts = _count_outside_quotes(first_line, DELIMITERS)
    candidates = [d for d in DELIMITERS if counts[d] > 0]
    if not candidates:
        return ","
    if len(candidates) == 1 or not sample:
        return max(candidates, key=lambda d: counts[d])  # max keeps the first of equal counts

    def score(d: str) -> tuple[int, int]:
        records = [r for r in csv.reader(sample, delimiter=d) if r]
        if records and not sample_complete:
            records.pop()  # may be cut in the middle of a quoted value
        if not records:
            return (0, counts[d])
        width = len(next(csv.reader([first_line], delimiter=d)))
        return (sum(1 for r in records if _fits(r, width)), counts[d])

    best = candidates[0]
    best_score = score(best)
    for d in candidates[1:]:
        s = score(d)
        if s > best_score:
            best, best_score = d, s
    return best


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        return raw.decode(encoding, "replace")


def _read_header(
    stream: BinaryIO, delimiter: str | None, encoding: str | None, limits: CsvLimits
) -> tuple[CsvHeader, bytes]:
    """Read the header; return it and the bytes read past ``data_offset`` (for open_csv)."""
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise ValueError(f"delimiter must be one character other than a quote or newline: {delimiter!r}")
    sniff = max(limits.sniff_bytes, 1024)
    buf = _read_exactly(stream, sniff)
    at_eof = len(buf) < sniff
    _check_binary(buf)
    bom = len(_UTF8_BOM) if buf.startswith(_UTF8_BOM) else 0
    body = buf[bom:]
    if not body.strip():
        raise FileRejectedError(
            "empty_file",
            "The file is empty: it needs a first line with the column names (one of them caller_id) "
            "and a row for each lead below it.",
        )

    warnings: list[str] = []
    if encoding is not None:
        enc = _normalize_encoding(encoding)
    else:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(body, final=at_eof)
            enc = "utf-8"
        except UnicodeDecodeError:
            enc = "cp1252"
            warnings.append(RowWarning.ENCODING_FALLBACK)

    # Complete lines of the buffer (the last one only if the buffer holds the end of the file).
    lines: list[bytes] = io.BytesIO(body).readlines()
    if lines and not at_eof and not lines[-1].endswith(b"\n"):
        lines.pop()
    offset = bom
    i = 0
    while i < len(lines) and not lines[i].strip():  # blank lines before the header
        offset += len(lines[i])
        i += 1
    if i == len(lines):
        first = body[offset - bom :]
        if b"\r" in first.rstrip(b"\r\n"):
            raise FileRejectedError(
                "malformed_header",
                "The file ends its lines with carriage returns only (an old Mac format), which cannot "
                f"be read: {_SAVE_AS_CSV}.",
            )
        raise FileRejectedError(
            "malformed_header",
            "The first line of the file is longer than "
            f"{sniff:,} bytes, so it is not a line of column names: check that this is a CSV file "
            "with the column names on the first line.",
        )
    header_lines = [_decode(raw, enc) for raw in lines[i:]]
    sample_end = min(len(header_lines), 1 + _SNIFF_SAMPLE_LINES)
    delim = delimiter or _detect_delimiter(
        header_lines[0], header_lines[1:sample_end], at_eof and sample_end == len(header_lines)
    )

    consumed = 0

    def counted() -> Iterator[str]:
        nonlocal consumed
        for text in header_lines:
            consumed += 1
            yield text

    try:
        record = next(csv.reader(counted(), delimiter=delim), [])
        if consumed > 1:  # a quoted newline in a name, or a quote that is never closed
            next(csv.reader(header_lines[:consumed], delimiter=delim, strict=True))
    except csv.Error as exc:
        if "new-line" in str(exc):
            raise FileRejectedError(
                "malformed_header",
                "The file ends its lines with carriage returns only (an old Mac format), which cannot "
                f"be read: {_SAVE_AS_CSV}.",
            ) from None
        raise FileRejectedError(
            "malformed_header",
            'The first line (the column names) has a quote (") that is never closed: remove the quote '
            "or close it, then upload the file again.",
        ) from None
    data_offset = offset + sum(len(raw) for raw in lines[i : i + consumed])

    if record:
        record[0] = record[0].lstrip("\ufeff")
    columns = [_clean_name(name) for name in record]
    if columns and not columns[-1] and any(columns):
        # A trailing delimiter on every line (many spreadsheet and CRM exports): unnamed columns at the end
        # are not part of the file. A row with a value there still gets an outcome (more fields than columns).
        while columns and not columns[-1]:
            columns.pop()
        warnings = [*warnings, RowWarning.UNNAMED_COLUMNS_IGNORED]
    _check_columns(columns, limits)
    header = CsvHeader(
        columns=columns, delimiter=delim, encoding=enc, data_offset=data_offset, warnings=warnings
    )
    return header, buf[data_offset:]


def _clean_name(name: str) -> str:
    """Trim a header name; also unquote it when the quotes were not at the start of the field
    (``caller_id, "First Name"``: csv keeps those quotes because of the space before them)."""
    name = name.replace("\x00", "").strip()
    if len(name) >= 2 and name[0] == '"' and name[-1] == '"':
        name = name[1:-1].replace('""', '"').strip()
    return name


def _check_columns(columns: list[str], limits: CsvLimits) -> None:
    if len(columns) > limits.max_columns:
        raise FileRejectedError(
            "too_many_columns",
            f"The file has {len(columns):,} columns, more than the {limits.max_columns:,} allowed: "
            "delete the columns you do not need and upload the file again.",
        )
    for index, name in enumerate(columns):
        if not name:
            raise FileRejectedError(
                "empty_header",
                f"Column {index + 1} has no name in the first line of the file: give every column a "
                "name (or delete columns that are empty) and upload the file again.",
            )
    seen: dict[str, str] = {}
    duplicates: list[str] = []
    for name in columns:
        key = name.casefold()
        if key in seen:
            if seen[key] not in duplicates:
                duplicates.append(seen[key])
        else:
            seen[key] = name
    if duplicates:
        names = ", ".join(f'"{d}"' for d in duplicates)
        plural = "s" if len(duplicates) > 1 else ""
        raise FileRejectedError(
            "duplicate_columns",
            f"The column name{plural} {names} appear{'' if plural else 's'} more than once in the first "
            "line (names are compared ignoring upper/lower case): give every column a different name "
            "and upload the file again.",
        )


# --------------------------------------------------------------------------------------------------
# rows


_BLOCK = 1 << 16  # reads are aligned to absolute multiples of this (resume-independent cut points)
_TOO_LONG_CSV = "field larger than field limit"


def iter_rows(
    stream: BinaryIO,
    header: CsvHeader,
    *,
    start_row: int = 1,
    start_offset: int | None = None,
    limits: CsvLimits = CsvLimits(),  # noqa: B008
    phone_column: int | None = None,
) -> Iterator[CsvRow]:
    """Yield the data rows of the file, streaming.

    ``stream``'s first byte is at ``start_offset`` (default ``header.data_offset``), which must be a
    record boundary: ``header.data_offset`` or a ``CsvRow.end_offset``. Row numbers continue from
    ``start_row``; reported offsets are absolute. Rows that cannot be imported come with a
    ``reason`` and a ``message``; blank lines (and rows whose fields are all empty) are skipped and
    not numbered.

    ``phone_column`` is the index of the column the phone is read from (default: the one named caller_id, else
    the first): a value over the field limit there rejects the row (elsewhere it is left out with a warning), and a
    quote left open is recognized by the lines it swallows that have a phone there.

    Sets the process-wide ``csv.field_size_limit`` to ``limits.field_size_limit``.
    """
    if start_row < 1:
        raise ValueError("start_row is 1-based")
    _check_encoding(header.encoding)
    offset = header.data_offset if start_offset is None else start_offset
    return _iter_rows(stream, header, start_row, offset, limits, b"", phone_column)


def _taker(stream: BinaryIO, prefix: bytes) -> Callable[[int], bytes]:
    """``take(n)``: the next n bytes (fewer only at the end), from ``prefix`` first, then the stream."""
    done = 0

    def take(size: int) -> bytes:
        nonlocal done
        if done < len(prefix):
            piece = prefix[done : done + size]
            done += len(piece)
            if len(piece) < size:
                piece += _read_exactly(stream, size - len(piece))
            return piece
        return _read_exactly(stream, size)

    return take


def _iter_rows(
    stream: BinaryIO, header: CsvHeader, start_row: int, start_offset: int, limits: CsvLimits, prefix: bytes,
    phone_column: int | None = None,
) -> Iterator[CsvRow]:
    """The row loop.

    Bytes are read in blocks cut after their last newline. A block is decoded in one go into a
    string with one character per byte (ASCII; a single-byte encoding; or, for UTF-8 with non-ASCII
    bytes, Latin-1, the fields being decoded as UTF-8 afterwards, per row), and csv.reader reads its
    lines from an io.StringIO: no Python code runs per line, and after each record the byte offset
    is the block's offset plus the StringIO's position.

    A quote left open: csv cannot tell a quoted value that runs across lines from a stray quote that swallows the
    rows after it, so every record that spans lines (``reader.line_num`` moved by more than one: one comparison per
    row) is looked at (:func:`_runaway_quote`). When the quote was left open, the row whose line opened it is
    rejected, and a new csv.reader starts at the next line, from the text of the blocks kept since the record began
    (``kept``); the offsets stay exact, so a resumed split reads the same rows.
    """
    columns = header.columns
    ncols = len(columns)
    delimiter = header.delimiter
    encoding = header.encoding
    single_byte = encoding != "utf-8"
    max_field = limits.max_field_chars
    max_lines = limits.max_value_lines
    field_limit = limits.field_size_limit
    cap = limits.record_bytes_cap
    phone = _phone_index(columns) if phone_column is None else phone_column
    csv.field_size_limit(field_limit)
    take = _taker(stream, prefix)

    # State shared with blocks() (closure cells are the cheapest shared variables).
    base = start_offset  # offset of the current block's first byte
    text_io = _NO_BLOCK  # the current block (_NO_BLOCK, whose tell() is 0, while no block is read)
    last = start_offset  # end of the previous record = start of the current one
    block_flags = 0  # 1: fields need decoding (and may not decode), 2: a NUL byte, in the current block
    flags = 0  # the flags of the blocks the current record touches, | 4 when it hit the byte cap, | 8 at the end
    kept: list[tuple[int, str, int]] = []  # (offset, text, flags) of the blocks since the current record began

    def blocks() -> Iterator[Iterable[str]]:
        nonlocal base, text_io, block_flags, flags
        read_end = start_offset
        carry: list[bytes] = []  # an incomplete line, waiting for its newline
        carry_len = 0
        carry_start = start_offset
        pending = b""  # bytes after a skipped line, processed as if just read
        while True:
            if pending:
                data = pending
                pending = b""
            else:
                data = take(_BLOCK - read_end % _BLOCK)
                read_end += len(data)
            if data:
                cut = data.rfind(b"\n") + 1
                if not cut:
                    carry.append(data)
                    carry_len += len(data)
                    if carry_len < cap:
                        continue
                    # A line of `cap` bytes and still no newline: skip to its end and reject it.
                    carry = []
                    while True:
                        data = take(_BLOCK - read_end % _BLOCK)
                        read_end += len(data)
                        newline = data.find(b"\n")
                        if newline >= 0 or not data:
                            break
                    pending = data[newline + 1 :] if newline >= 0 else b""
                    carry_start = read_end - len(pending)
                    carry_len = 0
                    text_io = _NO_BLOCK
                    base = carry_start
                    flags |= 4
                    kept.clear()
                    yield _poison(field_limit)
                    continue
                if carry:
                    carry.append(data[:cut])
                    block = b"".join(carry)
                else:
                    block = data[:cut] if cut < len(data) else data
                rest = data[cut:]
            elif carry:
                block = b"".join(carry)
                rest = b""
            else:
                flags |= 8
                return
            block_start = carry_start
            carry = [rest] if rest else []
            carry_len = len(rest)
            carry_start = block_start + len(block)
            if block_start - last >= cap:  # the current record has grown past the cap: cut it here
                text_io = _NO_BLOCK
                base = block_start
                flags |= 4
                kept.clear()
                yield _poison(field_limit)
            if single_byte:
                try:
                    text = block.decode(encoding)
                    bf = 0
                except UnicodeDecodeError:
                    text = block.decode("latin-1")
                    bf = 1
            elif block.isascii():
                text = block.decode("ascii")
                bf = 0
            else:
                text = block.decode("latin-1")
                bf = 1
            if 0 in block:  # int membership: a memchr
                bf |= 2
            block_flags = bf
            flags |= bf
            base = block_start
            while kept and kept[0][0] + len(kept[0][1]) <= last:
                del kept[0]
            kept.append((block_start, text, bf))
            text_io = io.StringIO(text, newline="\n")
            yield text_io
            if not data:
                flags |= 8
                return

    def record_text(start: int, stop: int) -> str | None:
        """The text of [start, stop) from the kept blocks; None when they do not reach back to start."""
        if not kept or kept[0][0] > start:
            return None
        current, text, _ = kept[-1]
        if start >= current:  # the usual case: the record is in the current block
            return text[start - current : stop - current]
        first = kept[0][0]
        return "".join(t for _, t, _ in kept)[start - first : stop - first]

    def restart_at(offset: int) -> _csv.Reader:
        """A new csv.reader from `offset` (a line start in the kept blocks): the rest of the current block, then
        the blocks not read yet."""
        nonlocal base, text_io, block_flags, flags
        first = kept[0][0]
        text = "".join(t for _, t, _ in kept)[offset - first :]
        bf = 0
        for _, _, f in kept:
            bf |= f
        kept[:] = [(offset, text, bf)]
        base = offset
        text_io = first_io = io.StringIO(text, newline="\n")
        block_flags = flags = bf

        def rest() -> Iterator[Iterable[str]]:
            nonlocal flags
            yield first_io
            for block in source:  # noqa: UP028 - `yield from` would close source when this reader is replaced
                yield block
            flags |= 8  # blocks() may have ended already: the end is still the end

        return csv.reader(itertools.chain.from_iterable(rest()), delimiter=delimiter)

    source = blocks()
    reader = csv.reader(itertools.chain.from_iterable(source), delimiter=delimiter)
    row_no = start_row - 1
    lines = 0  # reader.line_num after the previous record
    new = object.__new__
    builder = _RowBuilder
    row_class = CsvRow
    row: Any
    while True:
        try:
            for values in reader:
                end = base + text_io.tell()
                line_num = reader.line_num
                if (flags or line_num - lines != 1 or len(values) != ncols or end - last > max_field
                        or not (values[0] or any(values))):
                    if (flags == 1 and line_num - lines == 1 and len(values) == ncols and end - last <= max_field
                            and (values[0] or any(values))):
                        # A one-line record of a block read as Latin-1 (it has non-ASCII bytes), with nothing else
                        # to check: its fields decoded here, as _check_row would (a row in five has a name like
                        # José in a realistic file); a field that does not decode takes the checks below.
                        try:
                            decoded = [v if v.isascii() else v.encode("latin-1").decode(encoding) for v in values]
                        except UnicodeError:
                            pass
                        else:
                            lines = line_num
                            row_no += 1
                            last = end
                            flags = block_flags  # as after the checks below
                            yield _make_row(row_no, decoded, end)
                            continue
                    spans = line_num - lines
                    lines = line_num
                    if spans > 1 or flags & 8:
                        text = record_text(last, end)
                        if text is not None:
                            found = _runaway_quote(text, spans, bool(flags & 8), columns, delimiter,
                                                   phone, max_lines)
                            if found is None and not (flags or len(values) != ncols or end - last > max_field):
                                # A value across lines, and nothing else to check: the fast path's row.
                                row_no += 1
                                last = end
                                yield _make_row(row_no, values, end)
                                continue
                            if found is not None:
                                row_no += 1
                                reopen = last + text.index("\n") + 1 if "\n" in text else end
                                yield _opening_row(row_no, text, reopen, found, columns, delimiter, max_field,
                                                   encoding)
                                last = reopen
                                if reopen < end:
                                    reader = restart_at(reopen)
                                    lines = 0
                                    break
                                flags = block_flags
                                continue
                    checked = _check_row(values, row_no + 1, end, flags, columns, max_field, encoding, phone)
                    flags = block_flags
                    last = end
                    if checked is not None:
                        row_no += 1
                        yield checked
                    continue
                lines = line_num
                row_no += 1
                last = end
                # Inline slot stores: cheaper than calling an __init__ (see _RowBuilder).
                row = new(builder)
                row.row_no = row_no
                row.values = values
                row.end_offset = end
                row.reason = None
                row.message = None
                row.warnings = ()
                row.__class__ = row_class
                yield row
            else:
                return
        except csv.Error as exc:
            row_no += 1
            end = base + text_io.tell()
            lines = reader.line_num
            if flags & 4:
                reason: str = Reason.VALUE_TOO_LONG
                message = f"Row is longer than {cap:,} bytes, far more than any lead needs."
                values = []
            else:
                too_long = _TOO_LONG_CSV in str(exc)
                text = record_text(last, end) if too_long else None
                if text is not None and "\n" in text.rstrip("\r\n"):
                    # A value past the field limit that runs across lines: a quote left open.
                    reopen = last + text.index("\n") + 1
                    yield _opening_row(row_no, text, reopen, _OPEN_TOO_LONG, columns, delimiter, max_field,
                                       encoding)
                    last = reopen
                    reader = restart_at(reopen)
                    lines = 0
                    continue
                if too_long:
                    reason = Reason.VALUE_TOO_LONG
                    message = (
                        f'Row has a value longer than {field_limit:,} characters: usually a quote (") '
                        "opens a value and is never closed, and swallows the rows after it; remove "
                        "the quote or close it."
                    )
                else:
                    reason, message = _csv_error_message(str(exc))
                values = _raw_text(text_io, base, last, end, encoding, max_field)
            flags = block_flags
            last = end
            yield _make_row(row_no, values, end, reason, message)


_NO_BLOCK = io.StringIO()
_OPEN_ROWS = "rows"  # the lines after it look like rows of their own
_OPEN_LINES = "lines"  # it runs across more lines than a value may
_OPEN_END = "end"  # it runs to the end of the file
_OPEN_TOO_LONG = "too_long"  # it runs past the field limit
_PHONE_FIRST = re.compile(r"\n[\x00\s\"']*[+0-9().\-]")  # a line after the first that starts like a phone
_PHONE_LIKE = re.compile(r"\s*'?\+?[0-9 ().\-]{7,30}\s*")


def _phone_index(columns: list[str]) -> int:
    for index, name in enumerate(columns):
        if name.casefold() == "caller_id":
            return index
    return 0


def _read_line(line: str, delimiter: str) -> list[str]:
    """The fields of one line read on its own (a carriage return outside quotes ends a field instead of failing)."""
    try:
        return next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        return next(csv.reader([line.replace("\r", "")], delimiter=delimiter), [])


def _looks_like_row(line: str, ncols: int, delimiter: str, phone: int) -> bool:
    """A line that read on its own is a row: two fields or more (when the header has two or more columns) and a
    phone number where the phone column is. (A line of a note or an address has no phone number as its first or
    phone field, or no delimiter at all.)"""
    if ncols > 1 and delimiter not in line:
        return False
    line = line.rstrip("\r").replace("\x00", "")  # NULs are removed from values (warning nul_removed)
    if not line:
        return False
    fields = _read_line(line, delimiter)
    if len(fields) < min(2, ncols) or phone >= len(fields):
        return False
    value = fields[phone]
    return _PHONE_LIKE.fullmatch(value) is not None and 7 <= sum(ch.isdigit() for ch in value) <= 15


def _runaway_quote(text: str, spans: int, at_end: bool, columns: list[str], delimiter: str,
                   phone: int, max_lines: int) -> str | None:
    """Why the record `text` (spanning `spans` lines, read up to the end of the file when `at_end`) is a quote left
    open rather than a value with line breaks; None when it is a legitimate record.

    csv cannot say: a quote opened and never closed makes the lines after it one value, until the next quote or
    the end of the file. It is a quote left open when the record runs to the end of the file inside quotes, when it
    spans more than `max_lines` lines, or when one of the lines after its first reads as a row of its own."""
    ncols = len(columns)
    # With the phone first (the usual file), a line can read as a row only if it starts like a phone number: one
    # regex search over the record skips reading every line of an address or a note on its own.
    if phone != 0 or _PHONE_FIRST.search(text) is not None:
        for line in text.split("\n")[1:]:
            if _looks_like_row(line, ncols, delimiter, phone):
                return _OPEN_ROWS
    if at_end:
        return _OPEN_END
    if spans > max_lines:
        return _OPEN_LINES
    return None


def _opening_row(row_no: int, text: str, end: int, why: str, columns: list[str], delimiter: str, max_field: int,
                 encoding: str) -> CsvRow:
    """The row whose line opened a quote that is never closed: rejected, its values as its line reads alone."""
    line = text.split("\n", 1)[0].rstrip("\r")
    if encoding == "utf-8" and not line.isascii():
        try:
            line = line.encode("latin-1").decode("utf-8", "replace")
        except UnicodeEncodeError:
            pass
    values = _read_line(line, delimiter)
    index = max(len(values) - 1, 0)  # the open value is the last one of its line
    where = f'column "{columns[index]}"' if index < len(columns) else f"field {index + 1}"
    after = {
        _OPEN_ROWS: "the lines after it look like rows of their own",
        _OPEN_LINES: "it would run across more lines than a value may",
        _OPEN_END: "it would run to the end of the file",
        _OPEN_TOO_LONG: "it would run past the field limit",
    }[why]
    message = (
        f'The quote (") that opens the value in {where} on the line of row {row_no:,} is never closed: {after}. '
        "This row was not imported, and reading went on with the next line: close the quote (or remove it) and "
        "import the row again."
    )
    return _make_row(row_no, [v.replace("\x00", "")[:max_field] for v in values], end, Reason.MALFORMED_ROW,
                     message)


def _poison(field_limit: int) -> list[str]:
    """A "line" that makes csv raise "field larger than field limit", whatever its state."""
    return ["x" * (field_limit + 1)]


def _raw_text(
    text_io: io.StringIO, base: int, start: int, end: int, encoding: str, max_field: int
) -> list[str]:
    """Best-effort text of a record csv could not parse (the part in the current block)."""
    if text_io is _NO_BLOCK:
        return []
    text = text_io.getvalue()[max(start - base, 0) : end - base]
    if encoding == "utf-8" and not text.isascii():
        text = text.encode("latin-1").decode("utf-8", "replace")
    return [text.rstrip("\r\n").replace("\x00", "")[:max_field]]


def _csv_error_message(error: str) -> tuple[str, str]:
    if "new-line" in error:
        return (
            Reason.MALFORMED_ROW,
            "Row has a line break (carriage return) inside a value that is not in quotes.",
        )
    return Reason.MALFORMED_ROW, f"Row could not be read as CSV ({error})."


def _truncate(values: list[str], max_field: int) -> list[str]:
    return [v if len(v) <= max_field else v[:max_field] for v in values]


def _column_name(columns: list[str], index: int) -> str:
    return columns[index] if index < len(columns) else f"field {index + 1}"


def _check_row(
    values: list[str],
    row_no: int,
    end: int,
    flags: int,
    columns: list[str],
    max_field: int,
    encoding: str,
    phone: int = 0,
) -> CsvRow | None:
    """Check a record that failed the fast test; None for a blank record (skipped, not numbered)."""
    if not any(values):  # [] for an empty line, or only empty fields (",,,"): nothing to import
        return None
    ncols = len(columns)
    if flags & 1:  # the block was decoded as Latin-1: decode the fields
        invalid = False
        for index, value in enumerate(values):
            if not value.isascii():
                try:
                    raw = value.encode("latin-1")
                except UnicodeEncodeError:
                    # A record spanning blocks: this part came from a block that decoded cleanly in a
                    # single-byte encoding (cp1252 quotes, say), so it is text already.
                    continue
                try:
                    values[index] = raw.decode(encoding)
                except UnicodeDecodeError:
                    invalid = True
                    values[index] = raw.decode(encoding, "replace")
        if invalid:
            return _make_row(
                row_no,
                _truncate([v.replace("\x00", "") for v in values], max_field),
                end,
                Reason.INVALID_ENCODING,
                f"Row contains bytes that are not valid {_encoding_label(encoding)} text (the file mixes "
                "encodings); save the file as CSV UTF-8 and upload it again.",
            )
    warnings: list[WarningNote] = []
    if flags & 2:
        # NUL bytes (a broken export, or a field padded with them): removed, the row goes in with a warning.
        for index, value in enumerate(values):
            if "\x00" in value:
                values[index] = value.replace("\x00", "")
                if index < ncols:
                    count = value.count("\x00")
                    warnings.append(WarningNote(
                        RowWarning.NUL_REMOVED, columns[index],
                        f"{count:,} NUL character{'s' if count != 1 else ''} (byte 0) removed from the value.",
                    ))
        if not any(values):
            return None
    n = len(values)
    if n != ncols:
        if n > ncols and not any(values[ncols:]):
            values = values[:ncols]
        elif n < ncols and not any("\n" in v or "\r" in v for v in values):
            # Spreadsheets drop a row's trailing empty fields: the missing ones are empty. (Not a record that
            # runs across lines: that is a quote left open swallowing rows, and stays malformed.)
            values = values + [""] * (ncols - n)
        else:
            return _make_row(
                row_no,
                _truncate(values, max_field),
                end,
                Reason.MALFORMED_ROW,
                f"Row has {n} field{'s' if n != 1 else ''} but the header has {ncols} "
                f"column{'s' if ncols != 1 else ''}.",
            )
    for index, value in enumerate(values):
        if len(value) > max_field:
            if index == phone:
                return _make_row(
                    row_no,
                    _truncate(values, max_field),
                    end,
                    Reason.VALUE_TOO_LONG,
                    f'The value in column "{columns[index]}" is {len(value):,} characters long; '
                    f"the limit is {max_field:,}.",
                )
            # Any other value over the limit is left out (not cut: a cut value reads as complete), the lead kept.
            values[index] = ""
            warnings.append(WarningNote(
                RowWarning.VALUE_TOO_LONG_DROPPED, columns[index],
                f"The value is {len(value):,} characters long, over the {max_field:,} limit: it was left out.",
            ))
    return _make_row(row_no, values, end, warnings=tuple(warnings))


def _encoding_label(encoding: str) -> str:
    return {"utf-8": "UTF-8", "cp1252": "Windows-1252"}.get(encoding, encoding)


@functools.lru_cache(maxsize=32)
def _is_single_byte(encoding: str) -> bool:
    """Every byte decodes to exactly one character, and ASCII bytes to themselves."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    for b in range(256):
        decoder.reset()
        text = decoder.decode(bytes([b]))
        if len(text) != 1 or (b < 128 and text != chr(b)):
            return False
    return True


def _check_encoding(encoding: str) -> None:
    if encoding != "utf-8" and not _is_single_byte(encoding):
        raise ValueError(
            f"unsupported encoding {encoding!r}: use utf-8 or a single-byte encoding such as cp1252"
        )
