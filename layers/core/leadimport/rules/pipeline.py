"""The pure row rules, in order: mapping and defaults, phone, dedicated columns, optional validations.

`RowRules.apply` turns one row of a chunk into a `LeadCandidate` or a `RowRejection`; it never
raises for bad data. Scrubbing against the database happens later (rules/scrub.py decides, the
store supplies the facts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import phonenumbers

from leadimport.lead_columns import DEDICATED_COLUMNS
from leadimport.options import ImportOptions
from leadimport.reasons import Reason, RowWarning
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
    values: dict[str, str]  # the row as it was in the file (source column -> value), for a later rejection
    warnings: list[str] = field(default_factory=list)


@dataclass(slots=True)
class RowRejection:
    row_no: int
    reason: str
    message: str
    values: dict[str, str]


class RowRules:
    """The row rules of one import, prepared once per chunk (column positions, normalizer)."""

    def __init__(self, options: ImportOptions, source_columns: list[str], columns: list[str | None]):
        self.options = options
        self.source_columns = source_columns
        self.columns = columns
        self.normalizer = PhoneNormalizer(options.default_country, options.phone_validation)
        self._kept = [(i, name) for i, name in enumerate(columns) if name is not None]
        self._index = {name: i for i, name in self._kept}
        self._token_columns = [(i, name) for i, name in self._kept if name not in RESERVED_COLUMNS]
        d = options.defaults
        self._default_priority = d.lead_priority
        self._default_sub_id = d.sub_id
        self._additional = dict(options.additional_data)
        v = options.validations
        self._validations = v
        self._allowed_regions = set(v.allowed_countries)

    def _get(self, values: list[str], name: str) -> str:
        i = self._index.get(name)
        return values[i].strip() if i is not None and i < len(values) else ""

    def source_values(self, values: list[str]) -> dict[str, str]:
        out = dict(zip(self.source_columns, values, strict=False))
        for extra, value in enumerate(values[len(self.source_columns):], start=1):
            out[f"_extra_{extra}"] = value
        return out

    def reject(self, row_no: int, values: list[str], reason: str, message: str) -> RowRejection:
        return RowRejection(row_no, reason, message, self.source_values(values))

    def apply(self, row_no: int, values: list[str]) -> LeadCandidate | RowRejection:
        warnings: list[str] = []
        # 2. Phone
        phone = self.normalizer.normalize(self._get(values, "caller_id"), self._get(values, "country") or None)
        if phone.e164 is None:
            return self.reject(row_no, values, phone.reason or Reason.INVALID_PHONE, phone.message or "Invalid phone.")
        warnings.extend(phone.warnings)

        # 1. Tokens (every kept column but the dedicated ones), additional data, defaults
        tokens: dict[str, str] = {}
        for key, value in self._additional.items():
            tokens[key] = value
        for i, name in self._token_columns:
            if i < len(values):
                value = values[i].strip()
                if value:
                    tokens[name] = value  # a row's own value wins over additional data
        if phone.extension:
            tokens["extension"] = phone.extension

        lead_priority = clean_lead_priority(tokens.get("lead_priority"))
        if lead_priority is None:
            lead_priority = self._default_priority
            if lead_priority is not None:
                tokens.setdefault("lead_priority", str(lead_priority))
        sub_id = (tokens.get("sub_id") or "")[:MAX_SUB_ID] or self._default_sub_id
        if sub_id and "sub_id" not in tokens:
            tokens["sub_id"] = sub_id

        # 3. Dedicated columns: a bad value is dropped with a warning, the row goes in
        raw_email = self._get(values, "email")
        email, w = clean_email(raw_email)
        if w:
            warnings.append(w)
        expires_in, w = clean_expires_in(self._get(values, "expires_in"))
        if w:
            warnings.append(w)
        remote_ip, w = clean_remote_ip(self._get(values, "remote_ip"))
        if w:
            warnings.append(w)

        # Optional validations
        failed = self._failed_validation(raw_email, email, tokens, phone.region, phone.e164)
        if failed:
            return self.reject(row_no, values, Reason.FAILED_VALIDATION, failed)

        return LeadCandidate(
            row_no=row_no, phone=phone.e164, region=phone.region, time_zone=phone.time_zone, email=email,
            expires_in_seconds=expires_in, remote_ip=remote_ip, lead_priority=lead_priority, sub_id=sub_id or None,
            tokens=tokens, values=self.source_values(values), warnings=warnings,
        )

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


__all__ = ["RESERVED_COLUMNS", "LeadCandidate", "RowRejection", "RowRules", "RowWarning"]
