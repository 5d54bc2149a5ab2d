"""Group rows into chunks bounded by a row count and an estimated JSON size."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TypeVar

from leadimport.csv_io.reader import CsvRow

__all__ = ["ROW_OVERHEAD_BYTES", "FIELD_OVERHEAD_BYTES", "chunk_rows", "estimate_row_bytes", "groups_within_limits"]

T = TypeVar("T")

ROW_OVERHEAD_BYTES = 16  # brackets, row number, separators
FIELD_OVERHEAD_BYTES = 6  # quotes, comma, and some slack for a key


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


def _extra_plain_bytes(texts: list[str]) -> int | None:
    """When no text has a character JSON escapes: the bytes the chunk message spends on them beyond one per
    character (the message is UTF-8: é is two bytes); None when some text needs escaping. One C-level scan for
    a whole chunk (UTF-8 never puts an ASCII byte inside a multi-byte character)."""
    joined = "".join(texts)
    if joined.isascii():
        raw = joined.encode("ascii")
    else:
        try:
            raw = joined.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: the per-row estimate
            return None
    if len(raw.translate(None, _ESCAPED_BYTES)) != len(raw):
        return None
    return len(raw) - len(joined)


def _message_bytes(row: CsvRow) -> int:
    """The bytes of the row's reason and message, and of its warnings, in the chunk message."""
    size = 0 if row.message is None else len(json.dumps(row.message)) + 32  # reason code and message
    for w in row.warnings:
        size += len(json.dumps([row.row_no, w.code, w.column, w.message], ensure_ascii=False).encode()) + 1
    return size


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
        row_size = per_row + per_field * len(values) + len(text)  # a lower bound of the estimate
        if row.message is not None or row.warnings:
            row_size += _message_bytes(row)
        if chunk and (len(chunk) >= max_rows or size + row_size > max_bytes):
            extra = _extra_plain_bytes(texts)
            if extra is not None and size + extra <= max_bytes:
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
        extra = _extra_plain_bytes(texts)
        if extra is not None and size + extra <= max_bytes:
            yield chunk
        else:
            yield from _exact_chunks(chunk, max_rows, max_bytes)
