"""Group rows into chunks bounded by a row count and an estimated JSON size."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TypeVar

from leadimport.csv_io.reader import CsvRow
from leadimport.reasons import Reason

__all__ = ["ROW_OVERHEAD_BYTES", "FIELD_OVERHEAD_BYTES", "chunk_rows", "estimate_row_bytes", "fit_rows",
           "groups_within_limits"]

T = TypeVar("T")

ROW_OVERHEAD_BYTES = 16  # `[n,[...]],`: brackets, separators and a row number of up to 10 digits
# A value's quotes and comma, as the chunk message writes them (orjson, or json with compact separators). It was
# 6 ("some slack"): the realistic file's 2,000 rows then estimated 253 KB for 191 KB of JSON, and chunks were cut
# by bytes at ~1,560 rows.
FIELD_OVERHEAD_BYTES = 3


def _plain(text: str) -> bool:
    """True when json.dumps(text) is just text in quotes: ASCII, no control chars, no quote or backslash."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def estimate_row_bytes(values: list[str]) -> int:
    """A conservative estimate of the size of one row's values in the chunk message (UTF-8 JSON, as orjson
    writes it: non-ASCII characters as they are, control characters, quotes and backslashes escaped).

    Plain ASCII fields count their length; any other field its JSON text's UTF-8 length without the quotes
    (FIELD_OVERHEAD_BYTES counts them); a field with a lone surrogate (only the json module writes one)
    counts it escaped as ASCII.
    """
    size = ROW_OVERHEAD_BYTES + FIELD_OVERHEAD_BYTES * len(values)
    joined = "".join(values)
    if _plain(joined):
        return size + len(joined)
    for value in values:
        if _plain(value):
            size += len(value)
            continue
        try:
            size += len(json.dumps(value, ensure_ascii=False).encode()) - 2
        except UnicodeEncodeError:
            size += len(json.dumps(value)) - 2
    return size


# Bytes json.dumps escapes in ASCII text: control characters, the quote and the backslash.
_ESCAPED_BYTES = bytes(range(0x20)) + b'"\\\x7f'


def _all_plain(texts: list[str]) -> bool:
    """True when no text has a character JSON escapes: one C-level scan for a whole chunk (UTF-8 never puts an
    ASCII byte inside a multi-byte character, so non-ASCII text is checked the same way)."""
    joined = "".join(texts)
    try:
        raw = joined.encode("ascii" if joined.isascii() else "utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the per-row estimate
        return False
    return len(raw.translate(None, _ESCAPED_BYTES)) == len(raw)


def _utf8_length(text: str) -> int:
    """The UTF-8 bytes of a text (its length when ASCII, nearly always); a lone surrogate counts three."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def _message_bytes(row: CsvRow) -> int:
    """The bytes of the row's reason and message, and of its warnings, in the chunk message."""
    size = 0 if row.message is None else len(json.dumps(row.message)) + 32  # reason code and message
    for w in row.warnings:
        size += len(json.dumps([row.row_no, w.code, w.column, w.message], ensure_ascii=False).encode()) + 1
    return size


def fit_rows(rows: Iterable[CsvRow], max_bytes: int, start_offset: int) -> Iterator[CsvRow]:
    """The rows as they are, but one too big for a chunk message of its own (its values' JSON over `max_bytes`:
    say 30 values of 9,999 characters, each under the field limit) is rejected instead, VALUE_TOO_LONG, with
    the first characters of each value: SQS would refuse its message and the split would stop there. The exact
    estimate is made only for a row whose record took more than about a ninth of `max_bytes` in the file
    (`raw_limit`, ~26 KB at the default) or that carries a message or warnings (rare: ~0.1 us a row in all)."""
    # A record of `raw` bytes makes at most 6 * raw bytes of JSON values, plus 3 a value (at most raw + 1 values,
    # or the header's 500 when the reader fills in a spreadsheet's dropped trailing fields) and the row's 16.
    raw_limit = (max_bytes - ROW_OVERHEAD_BYTES - FIELD_OVERHEAD_BYTES * 501) // (6 + FIELD_OVERHEAD_BYTES)
    previous = start_offset
    for row in rows:
        end = row.end_offset
        if end - previous > raw_limit or row.message is not None or row.warnings:
            size = estimate_row_bytes(row.values) + _message_bytes(row)
            if size > max_bytes:
                row = _too_big(row, size, max_bytes)
        previous = end
        yield row


def _too_big(row: CsvRow, size: int, max_bytes: int) -> CsvRow:
    """A row's rejection that fits a message: each value cut so that all of them take under half of `max_bytes`
    even if every character were escaped (a rejection's values are what errors.csv shows, best effort)."""
    keep = max(0, max_bytes // (12 * max(1, len(row.values))) - 2)
    values = [v[:keep] for v in row.values]
    if row.reason is not None:  # the reader rejected it already: its reason stands (its sentence kept short)
        return CsvRow(row.row_no, values, row.end_offset, row.reason, (row.message or "")[:1000] or None)
    return CsvRow(row.row_no, values, row.end_offset, Reason.VALUE_TOO_LONG,
                  f"The row's values take {size:,} bytes together, more than the {max_bytes:,} a row can take: "
                  "shorten them or spread them over more rows.")


def groups_within_limits(sized: Iterable[tuple[T, int]], max_items: int, max_bytes: int) -> Iterator[list[T]]:
    """Consecutive (item, size) pairs grouped: at most `max_items` items and `max_bytes` of size a group,
    order kept; an item bigger than `max_bytes` forms a group of its own. Rows into chunks here, chunk
    messages into SendMessageBatch calls in leadimport.store.aws."""
    group: list[T] = []
    size = 0
    for item, n in sized:
        if group and (len(group) >= max_items or size + n > max_bytes):
            yield group
            group = []
            size = 0
        group.append(item)
        size += n
    if group:
        yield group


def _exact_chunks(rows: list[CsvRow], max_rows: int, max_bytes: int) -> Iterator[list[CsvRow]]:
    sized = ((row, estimate_row_bytes(row.values) + _message_bytes(row)) for row in rows)
    return groups_within_limits(sized, max_rows, max_bytes)


def chunk_rows(
    rows: Iterable[CsvRow], *, max_rows: int = 500, max_bytes: int = 200_000
) -> Iterator[list[CsvRow]]:
    """Group consecutive rows into chunks of at most ``max_rows`` rows and about ``max_bytes`` of JSON.

    The size of a row is :func:`estimate_row_bytes` of its values (plus its message, if any).
    Order is preserved. A single row larger than ``max_bytes`` forms a chunk on its own.

    Rows are first grouped assuming their text needs no JSON escaping (length only, cheap); each
    group is then checked with one scan, and a group that has characters to escape is split
    again with the per-row estimate.
    """
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    chunk: list[CsvRow] = []
    texts: list[str] = []
    size = 0
    per_row = ROW_OVERHEAD_BYTES
    per_field = FIELD_OVERHEAD_BYTES
    for row in rows:
        values = row.values
        text = "".join(values)
        row_size = per_row + per_field * len(values) + _utf8_length(text)  # a lower bound of the estimate
        if row.message is not None or row.warnings:
            row_size += _message_bytes(row)
        if chunk and (len(chunk) >= max_rows or size + row_size > max_bytes):
            if _all_plain(texts):
                yield chunk
                chunk, texts, size = [], [], 0
            else:
                # Split with the exact estimate; the last, partial group carries on (with its exact size), so
                # chunk boundaries depend on the rows only, never on where a group had to be split again.
                groups = list(_exact_chunks(chunk, max_rows, max_bytes))
                yield from groups[:-1]
                chunk = groups[-1]
                texts = ["".join(r.values) for r in chunk]
                size = sum(estimate_row_bytes(r.values) + _message_bytes(r) for r in chunk)
                if len(chunk) >= max_rows or size + row_size > max_bytes:
                    yield chunk
                    chunk, texts, size = [], [], 0
        chunk.append(row)
        texts.append(text)
        size += row_size
    if chunk:
        if _all_plain(texts):
            yield chunk
        else:
            yield from _exact_chunks(chunk, max_rows, max_bytes)
