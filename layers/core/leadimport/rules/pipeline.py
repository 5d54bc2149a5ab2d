"""The pure row rules, in order: mapping and defaults, phone, dedicated columns, optional validations.

`RowRules.apply` turns one row of a chunk into a `LeadCandidate` or a `RowRejection`; it never
raises for bad data. Scrubbing against the database happens later (rules/scrub.py decides, the
store supplies the facts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import phonenumbers

from leadimport.lead_columns import DEDICATED_COLUMNS
from leadimport.options import ImportOptions
from leadimport.reasons import WARNING_MESSAGES, Reason, RowWarning, WarningNote
from leadimport.rules.columns import (
    clean_email,
    clean_expires_in,
    clean_lead_priority,
    clean_remote_ip,
    is_valid_email,
)
from leadimport.rules.phone import PhoneNormalizer

RESERVED_COLUMNS = DEDICATED_COLUMNS  # dedicated lead columns: never tokens

MAX_SUB_ID = 255


@dataclass(slots=True)
class LeadCandidate:
    row_no: int
    phone: str
    region: str | None
    time_zone: str | None
    email: str | None
    expires_in_seconds: int | None
    remote_ip: str | None
    lead_priority: int | None
    sub_id: str | None
    tokens: dict[str, str]
    row: list[str]  # the row's values as read, in the file's column order (`values` names them)
    source_columns: Sequence[str]  # the file's columns
    warnings: list[str] = field(default_factory=list)  # codes, once each (the import counts rows by code)
    traffic_source_id: int | None = None  # the row's own, or the import's default
    buyer_ids: tuple[int, ...] = ()  # the row's own, or the import's default
    notes: list[WarningNote] = field(default_factory=list)  # the column and sentence of a warning that has them

    @property
    def values(self) -> dict[str, str]:
        """The row as it was in the file (source column -> value), for a rejection: built only for the few rows
        the chunk plan rejects (it cost ~3 us for every row when built up front)."""
        return source_values(self.source_columns, self.row)

    def warning_notes(self) -> list[WarningNote]:
        """Every warning of the row with its column ("" when none) and a sentence: what is listed per row."""
        if not self.warnings:
            return []
        out = list(self.notes)
        noted = {n.code for n in self.notes}
        out.extend(WarningNote(code, "", WARNING_MESSAGES.get(code, code)) for code in self.warnings if code not in noted)
        return out


def source_values(source_columns: Sequence[str], values: list[str]) -> dict[str, str]:
    """A row's values by the file's column names; values past the header as `_extra_1`, `_extra_2`, ..."""
    out = dict(zip(source_columns, values, strict=False))
    for extra, value in enumerate(values[len(source_columns):], start=1):
        key = f"_extra_{extra}"
        while key in out:  # a header of the file may be named so: never overwrite its value
            key = "_" + key
        out[key] = value
    return out


class ReaderNote(Protocol):
    """A warning the reader attached to a row (csv_io's WarningNote, or the chunk message's ReaderWarning)."""

    @property
    def code(self) -> str: ...
    @property
    def column(self) -> str: ...
    @property
    def message(self) -> str: ...


# The lead column a rule's warning is about (its column in the file is what the row lists).
_WARNING_COLUMN: dict[str, str] = {RowWarning.PHONE_EXTENSION: "caller_id", RowWarning.PHONE_POSSIBLE_ONLY: "caller_id",
                   RowWarning.UNKNOWN_COUNTRY: "country", RowWarning.EMAIL_DROPPED: "email",
                   RowWarning.EXPIRES_IN_DROPPED: "expires_in", RowWarning.REMOTE_IP_DROPPED: "remote_ip",
                   RowWarning.LEAD_PRIORITY_DROPPED: "lead_priority"}


@dataclass(frozen=True, slots=True)
class CompanyRefs:
    """The company's traffic sources and buyers, by id and by lower-cased name: a row may name its own."""

    traffic_sources: dict[str, int] = field(default_factory=dict)  # "12" and "facebook ads" -> 12
    buyers: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def keyed(rows: list[tuple[int, str]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for id_, name in rows:
            out.setdefault(name.strip().casefold(), id_)
        for id_, _ in rows:
            out[str(id_)] = id_
        return out


NO_REFS = CompanyRefs()
TRAFFIC_SOURCE_COLUMNS = ("traffic_source", "traffic_source_id")
BUYER_COLUMNS = ("buyers", "buyer_ids", "buyer")


@dataclass(slots=True)
class RowRejection:
    row_no: int
    reason: str
    message: str
    values: dict[str, str]


class RowRules:
    """The row rules of one import, prepared once per chunk (column positions, normalizer)."""

    def __init__(self, options: ImportOptions, source_columns: list[str], columns: list[str | None],
                 refs: CompanyRefs = NO_REFS):
        self.options = options
        self.refs = refs
        self.source_columns = source_columns
        self.columns = columns
        self.normalizer = PhoneNormalizer(options.default_country, options.phone_validation)
        self._kept = [(i, name) for i, name in enumerate(columns) if name is not None]
        self._skipped = {source_columns[i] for i, name in enumerate(columns) if name is None and i < len(source_columns)}
        self._index = {name: i for i, name in self._kept}
        self._token_columns = [(i, name) for i, name in self._kept if name not in RESERVED_COLUMNS]
        d = options.defaults
        self._default_traffic_source = d.traffic_source_id
        self._default_buyers = tuple(d.buyer_ids)
        self._default_priority = d.lead_priority
        self._default_sub_id = d.sub_id
        self._additional = dict(options.additional_data)
        # Whether a row can name its own traffic source / buyers at all (a column or additional data of that
        # name): most files have neither, and the look-up per row is then skipped.
        named = {name for _, name in self._token_columns} | set(self._additional)
        self._rows_name_traffic_source = not named.isdisjoint(TRAFFIC_SOURCE_COLUMNS)
        self._rows_name_buyers = not named.isdisjoint(BUYER_COLUMNS)
        v = options.validations
        self._validations = v
        self._allowed_regions = set(v.allowed_countries)
        self._validates = bool(v.require_email or v.valid_email or v.required_tokens or v.allowed_countries
                               or v.mobile_only)
        self._has_email = "email" in self._index
        self._has_expires_in = "expires_in" in self._index
        self._has_remote_ip = "remote_ip" in self._index

    def _get(self, values: list[str], name: str) -> str:
        i = self._index.get(name)
        return values[i].strip() if i is not None and i < len(values) else ""

    def source_values(self, values: list[str]) -> dict[str, str]:
        return source_values(self.source_columns, values)

    def reject(self, row_no: int, values: list[str], reason: str, message: str) -> RowRejection:
        return RowRejection(row_no, reason, message, self.source_values(values))

    def apply(self, row_no: int, values: list[str], fixed: Sequence[ReaderNote] = ()) -> LeadCandidate | RowRejection:
        """`fixed`: what the reader fixed in the row (a NUL removed, a long value left out); kept as the row's
        warnings unless the column is one the import skips."""
        undo_formula_guard(values)
        get = self._get
        # 2. Phone
        phone = self.normalizer.normalize(get(values, "caller_id"), get(values, "country") or None)
        if phone.e164 is None:
            return self.reject(row_no, values, phone.reason or Reason.INVALID_PHONE, phone.message or "Invalid phone.")
        warnings: list[str] = list(phone.warnings) if phone.warnings else []

        # 1. Tokens (every kept column but the dedicated ones), additional data, defaults
        tokens: dict[str, str] = dict(self._additional) if self._additional else {}
        for i, name in self._token_columns:
            if i < len(values):
                value = values[i].strip()
                if value:
                    tokens[name] = value  # a row's own value wins over additional data
        if phone.extension:
            tokens["extension"] = phone.extension

        raw_priority = tokens.get("lead_priority")
        lead_priority = clean_lead_priority(raw_priority)
        if lead_priority is None:
            if raw_priority:
                warnings.append(RowWarning.LEAD_PRIORITY_DROPPED)
            lead_priority = self._default_priority
            if lead_priority is not None:
                tokens.setdefault("lead_priority", str(lead_priority))
        sub_id = (tokens.get("sub_id") or "")[:MAX_SUB_ID] or self._default_sub_id
        if sub_id and "sub_id" not in tokens:
            tokens["sub_id"] = sub_id

        traffic_source_id = (self._traffic_source(tokens, warnings) if self._rows_name_traffic_source
                             else self._default_traffic_source)
        buyer_ids = self._buyers(tokens, warnings) if self._rows_name_buyers else self._default_buyers

        # 3. Dedicated columns: a bad value is dropped with a warning, the row goes in (a column the file does
        # not have is not looked at)
        raw_email = get(values, "email") if self._has_email else ""
        email, w = clean_email(raw_email) if raw_email else (None, None)
        if w:
            warnings.append(w)
        expires_in, w = clean_expires_in(get(values, "expires_in")) if self._has_expires_in else (None, None)
        if w:
            warnings.append(w)
        remote_ip, w = clean_remote_ip(get(values, "remote_ip")) if self._has_remote_ip else (None, None)
        if w:
            warnings.append(w)

        # Optional validations
        if self._validates:
            failed = self._failed_validation(raw_email, email, tokens, phone.region, phone.e164)
            if failed:
                return self.reject(row_no, values, Reason.FAILED_VALIDATION, failed)

        notes: list[WarningNote] = []
        if fixed:
            notes = [WarningNote(n.code, n.column, n.message) for n in fixed if n.column not in self._skipped]
            warnings[:0] = list(dict.fromkeys(n.code for n in notes))
        if warnings:
            notes.extend(self._notes(warnings, tokens))
        return LeadCandidate(
            row_no=row_no, phone=phone.e164, region=phone.region, time_zone=phone.time_zone, email=email,
            expires_in_seconds=expires_in, remote_ip=remote_ip, lead_priority=lead_priority, sub_id=sub_id or None,
            tokens=tokens, row=values, source_columns=self.source_columns, warnings=warnings,
            traffic_source_id=traffic_source_id, buyer_ids=buyer_ids, notes=notes,
        )

    def _notes(self, warnings: list[str], tokens: dict[str, str]) -> list[WarningNote]:
        """The file's column and the sentence of each rule warning (rare: only rows with a warning get here)."""
        out = []
        for code in warnings:
            target = _WARNING_COLUMN.get(code)
            if code == RowWarning.TRAFFIC_SOURCE_DROPPED:
                target = next((c for c in TRAFFIC_SOURCE_COLUMNS if tokens.get(c)), None)
            elif code == RowWarning.BUYERS_DROPPED:
                target = next((c for c in BUYER_COLUMNS if tokens.get(c)), None)
            if target is None or code in (RowWarning.NUL_REMOVED, RowWarning.VALUE_TOO_LONG_DROPPED):
                continue
            i = self._index.get(target)
            column = self.source_columns[i] if i is not None and i < len(self.source_columns) else ""
            out.append(WarningNote(code, column, WARNING_MESSAGES.get(code, code)))
        return out

    def _traffic_source(self, tokens: dict[str, str], warnings: list[str]) -> int | None:
        """The row's own traffic source (an id or a name of the company's), else the import's default."""
        raw = next((tokens[c] for c in TRAFFIC_SOURCE_COLUMNS if tokens.get(c)), None)
        if raw is None:
            return self._default_traffic_source
        found = self.refs.traffic_sources.get(raw.strip().casefold())
        if found is None:
            warnings.append(RowWarning.TRAFFIC_SOURCE_DROPPED)
            return self._default_traffic_source
        return found

    def _buyers(self, tokens: dict[str, str], warnings: list[str]) -> tuple[int, ...]:
        """The row's own buyers (ids or names of the company's, separated by , ; or |), else the default."""
        raw = next((tokens[c] for c in BUYER_COLUMNS if tokens.get(c)), None)
        if raw is None:
            return self._default_buyers
        found: list[int] = []
        unknown = False
        for part in raw.replace(";", ",").replace("|", ",").split(","):
            if not part.strip():
                continue
            buyer = self.refs.buyers.get(part.strip().casefold())
            if buyer is None:
                unknown = True
            elif buyer not in found:
                found.append(buyer)
        if unknown:
            warnings.append(RowWarning.BUYERS_DROPPED)
        return tuple(found) if found else self._default_buyers

    def _failed_validation(self, raw_email: str, email: str | None, tokens: dict[str, str],
                           region: str | None, e164: str) -> str | None:
        v = self._validations
        if v.require_email and not raw_email:
            return "Email is required by this import, and the row has none."
        if v.valid_email and raw_email and (email is None or not is_valid_email(email)):
            return f"Email {raw_email!r} is not a valid email address (this import requires valid emails)."
        for name in v.required_tokens:
            if not tokens.get(name):
                return f"Column {name!r} is required by this import, and the row has no value for it."
        if self._allowed_regions and region not in self._allowed_regions:
            allowed = ", ".join(sorted(self._allowed_regions))
            return f"The number's country ({region or 'unknown'}) is not one this import accepts ({allowed})."
        if v.mobile_only:
            number_type = phonenumbers.number_type(phonenumbers.parse(e164))
            if number_type not in (phonenumbers.PhoneNumberType.MOBILE,
                                   phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
                return "The number is not a mobile number (this import accepts mobile numbers only)."
        return None


_GUARDED = frozenset("=+-@\t\r")


def undo_formula_guard(values: list[str]) -> None:
    """Undo the error CSV's spreadsheet safety, in place: a value the export prefixed with ' (because it starts
    with = + - @ TAB or CR) gets its own text back, so a fixed error CSV imports as it is ("'+1 951..." is the
    phone "+1 951...")."""
    if "'" not in "".join(values):  # nearly every row: no value can start with the guard
        return
    for i, value in enumerate(values):
        if value[:1] == "'" and value[1:2] in _GUARDED and len(value) > 1:
            values[i] = value[1:]


__all__ = ["NO_REFS", "RESERVED_COLUMNS", "CompanyRefs", "LeadCandidate", "RowRejection", "RowRules", "RowWarning",
           "source_values", "undo_formula_guard"]
