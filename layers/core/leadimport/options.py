"""The import's options: the wizard's Import Details, one validator for every way in.

The API body, a dropped file's metadata and the CLI's `--options` file all go through here:
types, unknown keys, limits (every string as long as a CSV value at most, a cap on every list and
on the whole document) and contradictions, each refused with a sentence the user understands.
Checks that need the database (every referenced id belongs to the company) are made by
`leadimport.services.import_options` with the ids `referenced_ids` lists.
"""

from __future__ import annotations

import difflib
import json
import typing
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from leadimport.csv_io.reader import CsvLimits
from leadimport.lead_columns import DEDICATED_COLUMNS
from leadimport.rules.phone import region_for_country

OwnerType = Literal["schedule", "offer"]
MAX_ID = 2**63 - 1  # ids are PostgreSQL bigints
Id = Annotated[int, Field(gt=0, le=MAX_ID, strict=True)]

# Limits: one tenant's options cannot fill the shared Redis and Aurora (additional_data is stamped on every lead).
MAX_TEXT_CHARS = CsvLimits().max_field_chars  # every string (keys included): as long as a CSV value at most
MAX_COLUMNS = CsvLimits().max_columns  # column_mapping entries: a file has at most this many columns
MAX_ADDITIONAL_DATA = 100
MAX_LIST = 100  # dispositions, required tokens, buyers
MAX_OPTIONS_BYTES = 64 * 1024  # the whole options document, as JSON


class InvalidOptionsError(ValueError):
    """The options cannot be used: `code` is stable, `message` is the sentence for the user."""

    def __init__(self, code: str, message: str, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors  # each {field, message}: every problem found, at its option (dotted path)


def _check_strings(value: Any, where: str = "") -> None:
    """Every string of the options, keys included: no NUL (PostgreSQL text cannot hold it), and no longer than a
    CSV value may be."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where or 'a value'} contains a NUL character, which is not allowed")
        if len(value) > MAX_TEXT_CHARS:
            raise ValueError(f"{where or 'a value'} is {len(value):,} characters long; the limit is "
                             f"{MAX_TEXT_CHARS:,}, as for a value in the file")
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k, f"{where}.{str(k)[:40]}" if where else str(k)[:40])
            _check_strings(v, f"{where}.{str(k)[:40]}" if where else str(k)[:40])
    elif isinstance(value, list | tuple):
        for item in value:
            _check_strings(item, where)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _strings_within_limits(cls, data: Any) -> Any:
        _check_strings(data)
        return data


class Owner(_Strict):
    type: OwnerType
    id: Id


class ScrubOptions(_Strict):
    scope: Literal["none", "company", "offer"] = "none"
    existing: bool = False
    dialed: bool = False
    connected: bool = False
    converted: bool = False
    opted_out: bool = False
    blocked: bool = False
    dispositions: list[str] = Field(default_factory=list, max_length=MAX_LIST)

    @model_validator(mode="after")
    def _scope_needed(self) -> ScrubOptions:
        if self.scope == "none" and (self.existing or self.dialed or self.connected or self.converted
                                     or self.dispositions):
            raise ValueError("scrub options need a scope: set scrub.scope to \"company\" or \"offer\"")
        return self


class LeadManagementOptions(_Strict):
    expire_existing: bool = False
    # The owner already has a live lead for the row's caller_id (and Expire Existing / Move are not chosen):
    # "update" refreshes it with the row's values (counted in updated_leads), "skip" keeps it as it is and
    # records the row as duplicate_lead.
    existing_leads: Literal["update", "skip"] = "update"
    manage_schedule: Literal["nothing", "stop", "start", "restart"] = "nothing"
    opt: Literal["opt_out", "opt_in"] | None = None
    block: Literal["block", "unblock"] | None = None
    move_to_schedule_id: Id | None = None
    add_to_schedule_id: Id | None = None
    copy_to_this_schedule_from: Owner | None = None
    hours_until_expiration: float | None = Field(default=None, gt=0, le=24 * 3650)
    max_contact_attempts: int | None = Field(default=None, ge=0, le=1000)
    schedule_leads: bool = True

    @field_validator("opt", "block", mode="before")
    @classmethod
    def _one_choice(cls, v: object) -> object:
        if isinstance(v, list | tuple):
            raise ValueError("choose one value, not a list: Opt-Out and Opt-In (or Block and UnBlock) "
                             "cannot both be applied")
        return v


class DefaultAttributes(_Strict):
    traffic_source_id: Id | None = None
    buyer_ids: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    lead_priority: int | None = Field(default=None, ge=0, le=1000)
    sub_id: str | None = Field(default=None, max_length=255)


class Validations(_Strict):
    require_email: bool = False
    valid_email: bool = False
    required_tokens: list[str] = Field(default_factory=list, max_length=MAX_LIST)
    allowed_countries: list[str] = Field(default_factory=list, max_length=250)
    mobile_only: bool = False

    @field_validator("allowed_countries")
    @classmethod
    def _countries(cls, v: list[str]) -> list[str]:
        out = []
        for c in v:
            region = region_for_country(c)
            if region is None:
                raise ValueError(f"unknown country {c!r} in validations.allowed_countries (use ISO codes like US, GB)")
            out.append(region)
        return out


class ImportOptions(_Strict):
    """Everything an import carries besides its file. Every key is optional."""

    default_country: str = "US"
    preview: bool = False
    dry_run: bool = False
    column_mapping: dict[str, str | None] = Field(default_factory=dict, max_length=MAX_COLUMNS)
    delimiter: Literal[",", ";", "\t", "|"] | None = None
    encoding: Literal["utf-8", "cp1252"] | None = None
    phone_validation: Literal["valid", "possible"] = "valid"
    duplicates: Literal["first", "last"] = "first"
    scrub: ScrubOptions = Field(default_factory=ScrubOptions)
    lead_management: LeadManagementOptions = Field(default_factory=LeadManagementOptions)
    defaults: DefaultAttributes = Field(default_factory=DefaultAttributes)
    additional_data: dict[str, str] = Field(default_factory=dict, max_length=MAX_ADDITIONAL_DATA)
    validations: Validations = Field(default_factory=Validations)

    @model_validator(mode="before")
    @classmethod
    def _document_within_limit(cls, data: Any) -> Any:
        try:
            size = len(json.dumps(data, ensure_ascii=False, default=str).encode("utf-8"))
        except (TypeError, ValueError, RecursionError):
            return data  # not JSON-shaped: the field validators say what is wrong
        if size > MAX_OPTIONS_BYTES:
            raise ValueError(f"the options are {size / 1024:,.0f} KB; the limit is {MAX_OPTIONS_BYTES // 1024} KB")
        return data

    @field_validator("default_country")
    @classmethod
    def _country(cls, v: str) -> str:
        region = region_for_country(v)
        if region is None:
            raise ValueError(f"unknown default_country {v!r} (use an ISO code such as US, GB, AU)")
        return region

    @field_validator("additional_data")
    @classmethod
    def _additional(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not key.strip() or key.strip().lower() in DEDICATED_COLUMNS:
                raise ValueError(f"additional_data key {key!r} is empty or reserved")
        return v


class ImportRequest(ImportOptions):
    """Body of POST /imports: the options plus the owner and a name."""

    name: str | None = Field(default=None, max_length=200)
    owner: Owner
    # The file's size in bytes, when the client knows it: the answer then has a presigned PUT URL signed for
    # exactly that size (scripts and the CLI stream large files with it). Not an option: not stored.
    upload_size: int | None = Field(default=None, gt=0, strict=True)
    # The import's throughput cap: at most this many of its chunks written at once (protects the database from
    # one big import). Not an option: changeable while it runs (PATCH /imports/{id}).
    max_concurrency: int | None = Field(default=None, ge=1, le=1000, strict=True)


class ImportChange(BaseModel):
    """Body of PATCH /imports/{id}: what may change while an import runs."""

    model_config = ConfigDict(extra="forbid")
    max_concurrency: int | None = Field(ge=1, le=1000, strict=True, description=(
        "At most this many of the import's chunks are written at the same time; null: no cap but the stack's"))


def options_json(options: ImportOptions) -> dict[str, object]:
    """The options as stored on the import (only ImportOptions' fields)."""
    return ImportOptions.model_validate(options.model_dump(include=set(ImportOptions.model_fields))).model_dump(
        mode="json"
    )


def contradictions(owner: Owner, options: ImportOptions) -> list[tuple[str, str]]:
    """Every contradiction, as (the option it is shown at, a sentence)."""
    lm = options.lead_management
    out: list[tuple[str, str]] = []
    if lm.move_to_schedule_id is not None and (lm.expire_existing or lm.manage_schedule != "nothing"):
        out.append(("lead_management.move_to_schedule_id",
                    "\"Move To Another Schedule\" cannot be combined with \"Expire Existing Leads\" or "
                    "\"Manage Schedule\": each decides the fate of the existing lead."))
    for schedule_id, label, field in ((lm.add_to_schedule_id, "Add To Schedule", "add_to_schedule_id"),
                                      (lm.move_to_schedule_id, "Move To Another Schedule", "move_to_schedule_id")):
        if schedule_id is not None and owner.type == "schedule" and schedule_id == owner.id:
            out.append((f"lead_management.{field}", f"\"{label}\" names the schedule the import already targets."))
    source = lm.copy_to_this_schedule_from
    if source is not None:
        if owner.type != "schedule":
            out.append(("lead_management.copy_to_this_schedule_from",
                        "\"Copy To This Schedule\" needs an import into a schedule."))
        elif (source.type, source.id) == (owner.type, owner.id):
            out.append(("lead_management.copy_to_this_schedule_from",
                        "\"Copy To This Schedule\" names the schedule the import targets."))
    if lm.manage_schedule != "nothing" and owner.type != "schedule":
        out.append(("lead_management.manage_schedule",
                    "\"Manage Schedule\" applies to a schedule import; this import targets an offer."))
    if lm.manage_schedule != "nothing" and lm.expire_existing:
        out.append(("lead_management.manage_schedule",
                    "\"Expire Existing Leads\" and \"Manage Schedule\" cannot be combined: the existing lead "
                    "expires, so there is no schedule run left to manage."))
    return out


def referenced_ids(owner: Owner, options: ImportOptions) -> dict[str, list[int]]:
    """Every id the import refers to, by kind (schedule, offer, buyer, traffic_source): each must be the
    company's own."""
    refs: dict[str, list[int]] = {"schedule": [], "offer": [], "buyer": list(options.defaults.buyer_ids),
                                  "traffic_source": []}
    refs[owner.type].append(owner.id)
    lm = options.lead_management
    refs["schedule"].extend(i for i in (lm.add_to_schedule_id, lm.move_to_schedule_id) if i is not None)
    if lm.copy_to_this_schedule_from is not None:
        refs[lm.copy_to_this_schedule_from.type].append(lm.copy_to_this_schedule_from.id)
    if options.defaults.traffic_source_id is not None:
        refs["traffic_source"].append(options.defaults.traffic_source_id)
    return refs


def _fields_at(path: Sequence[Any]) -> list[str]:
    """The option names a JSON object at `path` (inside an import request) may hold; [] when it is not an object."""
    model: type[BaseModel] | None = ImportRequest
    for name in path:
        field = model.model_fields.get(str(name)) if model is not None else None
        if field is None:
            return []
        candidates = [field.annotation, *typing.get_args(field.annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields) if model is not None else []


def _sentence(error: Mapping[str, Any], path: Sequence[Any]) -> str:
    message = str(error.get("msg", "not valid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix):]
    if error.get("type") == "extra_forbidden" and path:
        known = _fields_at(path[:-1])
        close = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.6)
        message = "unknown option" + (f" (did you mean {'.'.join(map(str, [*path[:-1], close[0]]))}?)" if close else "")
    elif error.get("type") == "missing":
        message = "required"
    return message


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Pydantic's errors as {field, message} for people: no "Value error, " prefix, the field as a dotted path,
    "unknown option; did you mean lead_management?" for a misspelt option name."""
    out = []
    for e in errors:
        path = [p for p in e.get("loc", ()) if p != "body"]
        out.append({"field": ".".join(str(p) for p in path), "message": _sentence(e, path)})
    return out


def first_error_sentence(errors: Sequence[Mapping[str, Any]]) -> str:
    """The sentence the API answers (and a dropped file's failed import carries) for invalid options: every error,
    each with its field, so a user fixes them all at once."""
    described = describe_errors(errors) or [{"field": "", "message": "invalid request"}]
    parts = [f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in described]
    return "; ".join(parts)


def parse_options(raw: str | bytes | Mapping[str, Any]) -> ImportOptions:
    """Options from a dropped file's metadata (JSON text) or a CLI file; InvalidOptionsError with the API's
    sentence when they cannot be used."""
    data: Any = raw
    if isinstance(raw, str | bytes):
        if len(raw) > MAX_OPTIONS_BYTES:
            raise InvalidOptionsError("invalid_options", f"the options are larger than {MAX_OPTIONS_BYTES // 1024} KB")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise InvalidOptionsError("invalid_options", "the options are not valid JSON") from exc
    try:
        return ImportOptions.model_validate(data)
    except ValidationError as exc:
        raise InvalidOptionsError("invalid_options", first_error_sentence(exc.errors())) from exc
