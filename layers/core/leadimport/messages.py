"""The chunk message: what the splitter sends to SQS and the worker reads. Written down once, here.

Format (JSON), version 1:

    {"v": 1,
     "import_id": "uuid", "chunk_no": 0, "first_row": 1,
     "source_columns": ["Phone", "Email", "Notes"],   # the file's header
     "columns": ["caller_id", "email", null],          # the mapping, resolved: target per source column, null = skipped
     "rows": [[1, ["+1 951 876 1336", "a@b.co", "x"]], ...],          # [row_no, values in source order]
     "rejected": [[7, "malformed_row", "Row has 2 fields ...", ["a", "b"]], ...],  # rows the reader rejected
     "warned": [[3, "nul_removed", "Notes", "1 NUL character ..."], ...]}  # what the reader fixed in a row
                                                                         # (only when there is something)

Rows are in row-number order; `rows` and `rejected` together cover first_row .. first_row+count-1
except blank lines, which are not numbered. A chunk's content is a pure function of the file and
the mapping, so a re-sent chunk (splitter retry) is identical and the worker's done-marker on
(import_id, chunk_no) makes the second delivery a no-op.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

import orjson

SCHEMA_VERSION = 1
# SQS's limit of a message (256 KiB; 1 MiB since 2025 where enabled: 256 KiB holds everywhere).
MESSAGE_MAX_BYTES = 262_144


class UnreadableMessageError(ValueError):
    """A message the worker cannot read (bad JSON, unknown version): retried, then dead-lettered."""


@dataclass(frozen=True, slots=True)
class ReaderRejection:
    row_no: int
    reason: str
    message: str
    values: list[str]


@dataclass(frozen=True, slots=True)
class ReaderWarning:
    row_no: int
    code: str
    column: str  # the file's column
    message: str


@dataclass(frozen=True)
class ChunkMessage:
    import_id: str
    chunk_no: int
    first_row: int
    source_columns: list[str]
    columns: list[str | None]
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    rejected: list[ReaderRejection] = field(default_factory=list)
    warned: list[ReaderWarning] = field(default_factory=list)

    def warnings_of(self, row_no: int) -> list[ReaderWarning]:
        """What the reader fixed in this row (most rows: nothing)."""
        return self._warned_by_row.get(row_no, []) if self.warned else []

    @functools.cached_property
    def _warned_by_row(self) -> dict[int, list[ReaderWarning]]:
        out: dict[int, list[ReaderWarning]] = {}
        for w in self.warned:
            out.setdefault(w.row_no, []).append(w)
        return out

    @property
    def row_count(self) -> int:
        return len(self.rows) + len(self.rejected)

    @property
    def row_numbers(self) -> list[int]:
        return sorted([r[0] for r in self.rows] + [r.row_no for r in self.rejected])

    def to_json(self) -> str:
        data = self._as_dict()
        try:
            return orjson.dumps(data).decode()  # the splitter's hot path: 3-5x faster than json
        except TypeError:  # a lone surrogate (a value the reader could not decode), which only json writes
            return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    def _as_dict(self) -> dict[str, Any]:
        return (
            {
                "v": SCHEMA_VERSION,
                "import_id": self.import_id,
                "chunk_no": self.chunk_no,
                "first_row": self.first_row,
                "source_columns": self.source_columns,
                "columns": self.columns,
                "rows": [[n, v] for n, v in self.rows],
                "rejected": [[r.row_no, r.reason, r.message, r.values] for r in self.rejected],
                **({"warned": [[w.row_no, w.code, w.column, w.message] for w in self.warned]} if self.warned else {}),
            }
        )

    @staticmethod
    def frame_bytes(import_id: str, source_columns: list[str], columns: list[str | None]) -> int:
        """The bytes of a chunk message but its rows (the header's names twice, the keys, the numbers): what the
        rows may take is MESSAGE_MAX_BYTES less this."""
        empty = ChunkMessage(import_id, 10**12, 10**12, source_columns, columns).to_json()
        return len(empty.encode("utf-8", "surrogatepass")) + len(',"warned":[]') + 64  # + slack

    @classmethod
    def from_json(cls, body: str) -> ChunkMessage:
        try:
            data: Any = orjson.loads(body)  # the worker's hot path: about twice as fast as json
        except orjson.JSONDecodeError:
            try:
                data = json.loads(body)  # what orjson refuses and json reads (a lone surrogate in a rejected value)
            except (TypeError, ValueError) as exc:
                raise UnreadableMessageError(f"chunk message is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise UnreadableMessageError("chunk message is not a JSON object")
        if data.get("v") != SCHEMA_VERSION:
            raise UnreadableMessageError(f"unknown chunk message version {data.get('v')!r} (this worker reads {SCHEMA_VERSION})")
        try:
            return cls(
                import_id=str(data["import_id"]),
                chunk_no=int(data["chunk_no"]),
                first_row=int(data["first_row"]),
                source_columns=[str(c) for c in data["source_columns"]],
                columns=[None if c is None else str(c) for c in data["columns"]],
                rows=[(int(n), [str(x) for x in v]) for n, v in data["rows"]],
                rejected=[ReaderRejection(int(n), str(r), str(m), [str(x) for x in v]) for n, r, m, v in data["rejected"]],
                warned=[ReaderWarning(int(n), str(c), str(col), str(m)) for n, c, col, m in data.get("warned") or []],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UnreadableMessageError(f"chunk message is missing or has a bad field: {exc}") from exc


def peek_import_id(body: str) -> tuple[str | None, int | None]:
    """Best effort for an unreadable message: which import and chunk it was for (for the import's error)."""
    try:
        data = json.loads(body)
        return str(data.get("import_id")) if data.get("import_id") else None, (
            int(data["chunk_no"]) if "chunk_no" in data else None
        )
    except Exception:  # noqa: BLE001 - this is the "cannot read it" path
        return None, None
