"""Column mapping: rename or skip header columns, normalize reserved names, require caller_id."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from leadimport.csv_io.reader import FileRejectedError
from leadimport.lead_columns import RECOGNIZED_COLUMNS

__all__ = ["ERROR_CSV_COLUMNS", "RESERVED_COLUMNS", "ResolvedColumns", "apply", "bookkeeping_columns",
           "mapped_phone_column", "resolve_columns"]

# Names with a meaning to the importer: matched ignoring case, always stored in lower case.
RESERVED_COLUMNS = RECOGNIZED_COLUMNS

# Likely phone columns, compared after lower-casing and dropping separators; best first.
_PHONE_NAMES: tuple[str, ...] = (
    "callerid",
    "phone",
    "phonenumber",
    "phone1",
    "phoneno",
    "mobile",
    "mobilenumber",
    "mobilephone",
    "cell",
    "cellphone",
    "cellnumber",
    "telephone",
    "telephonenumber",
    "tel",
    "number",
)
_SEPARATORS = re.compile(r"[\s_\-.#/]+")


@dataclass(frozen=True)
class ResolvedColumns:
    names: list[str | None]  # per source column index: the target name, or None when skipped
    source: list[str]  # original header names
    kept: tuple[tuple[int, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kept = tuple((i, name) for i, name in enumerate(self.names) if name is not None)
        object.__setattr__(self, "kept", kept)


def _key(name: str) -> str:
    return name.strip().casefold()


def _target(name: str) -> str:
    name = name.strip()
    lowered = name.lower()
    return lowered if lowered in RESERVED_COLUMNS else name


def _phone_rank(name: str) -> int | None:
    squashed = _SEPARATORS.sub("", name.casefold())
    try:
        return _PHONE_NAMES.index(squashed)
    except ValueError:
        return None


def _listing(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


ERROR_CSV_COLUMNS = ("row", "reason", "message")
"""The bookkeeping columns the error CSV adds after the file's own columns (GET /imports/{id}/errors.csv)."""


def bookkeeping_columns(header_columns: list[str]) -> int:
    """How many of the header's last columns are an error CSV's bookkeeping (row, reason, message): 3 or 0.
    Only the trio, last and in that order, counts: a file's own "message" column elsewhere stays a token."""
    tail = [_key(c) for c in header_columns[-len(ERROR_CSV_COLUMNS):]]
    return len(ERROR_CSV_COLUMNS) if len(header_columns) > 3 and tail == list(ERROR_CSV_COLUMNS) else 0


def resolve_columns(
    header_columns: list[str], column_mapping: dict[str, str | None] | None
) -> ResolvedColumns:
    """Apply the import's column mapping to the header.

    ``column_mapping`` maps a header name (matched ignoring case and surrounding spaces) to a new
    name, or to None to skip that column; unmapped columns keep their names. Reserved names
    (caller_id, email, expires_in, remote_ip, country) are matched ignoring case and stored in
    lower case. Raises :class:`FileRejectedError` for an unknown mapping key, two columns with the
    same name after mapping, or no caller_id column.
    """
    source = list(header_columns)
    by_key: dict[str, int] = {}
    for position, header_name in enumerate(source):
        by_key.setdefault(_key(header_name), position)

    renames: dict[int, str | None] = {}
    for key, target in (column_mapping or {}).items():
        index = by_key.get(_key(key))
        if index is None:
            raise FileRejectedError(
                "unknown_mapping_column",
                f'The column mapping mentions a column "{key}" that is not in the file; the file\'s '
                f"columns are {_listing(source)}: fix the column mapping or the file's first line.",
            )
        new: str | None = None
        if target is not None and target.strip():
            new = _target(target)
        if index in renames and renames[index] != new:
            raise FileRejectedError(
                "duplicate_columns",
                f'The column mapping mentions the column "{source[index]}" twice with different '
                "targets: keep only one entry for it.",
            )
        renames[index] = new

    names: list[str | None] = [renames[i] if i in renames else _target(name) for i, name in enumerate(source)]
    # An error CSV uploaded again: its bookkeeping columns (the last three) are not the leads' data.
    for i in range(len(source) - bookkeeping_columns(source), len(source)):
        if i not in renames:
            names[i] = None

    seen: dict[str, int] = {}
    for position, target_name in enumerate(names):
        if target_name is None:
            continue
        folded = target_name.casefold()
        if folded in seen:
            first = seen[folded]
            raise FileRejectedError(
                "duplicate_columns",
                f'The columns "{source[first]}" and "{source[position]}" would both be named '
                f'"{target_name}" after the column mapping: rename or skip one of them.',
            )
        seen[folded] = position

    if "caller_id" not in seen:
        raise FileRejectedError("missing_caller_id", _missing_caller_id_message(source, names))
    return ResolvedColumns(names=names, source=source)


def mapped_phone_column(names: Sequence[str | None]) -> int | None:
    """Index of the column mapped to caller_id (resolved names, one per file column): the reader's phone column."""
    return names.index("caller_id") if "caller_id" in names else None


def likely_phone_column(source: list[str]) -> int | None:
    """Index of the header column that most looks like the phone (phone_number, Telephone, ...), if any."""
    best: tuple[int, int] | None = None  # (rank, index)
    for index, name in enumerate(source):
        rank = _phone_rank(name)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, index)
    return best[1] if best else None


def propose_mapping(header_columns: list[str], column_mapping: dict[str, str | None] | None) -> dict[str, str | None]:
    """The preview's proposed mapping: the import's own, plus the likely phone column as caller_id when
    the file has no caller_id column."""
    proposal = dict(column_mapping or {})
    targets = {_key(str(v)) for v in proposal.values() if v}
    if "caller_id" in targets or any(_key(c) == "caller_id" and c not in proposal for c in header_columns):
        return proposal
    index = likely_phone_column(header_columns)
    if index is not None:
        proposal[header_columns[index]] = "caller_id"
    return proposal


def _missing_caller_id_message(source: list[str], names: list[str | None]) -> str:
    index = likely_phone_column(source)
    if index is not None:
        original = source[index]
        current = names[index]
        mapping = json.dumps({original: "caller_id"}, ensure_ascii=False)
        how = "rename it to caller_id, or map it" if current is not None and current == original else "map it"
        return (
            f'The file has no caller_id column. Your column "{original}" looks like the phone: '
            f"{how} in the import's column mapping ({mapping})."
        )
    return (
        "The file has no caller_id column: name the column that holds the phone numbers caller_id "
        '(or map it in the import\'s column mapping, for example {"Phone": "caller_id"}); '
        f"the file's columns are {_listing(source)}."
    )


def apply(resolved: ResolvedColumns, values: list[str]) -> dict[str, str]:
    """The row as a dict of the kept columns, keyed by their target names."""
    return {name: values[index] for index, name in resolved.kept}
