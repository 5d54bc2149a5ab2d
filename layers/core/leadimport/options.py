"""The import's options: the wizard's Import Details, as the API, the CLI and the worker see them.

Unknown keys and contradictory values are rejected here, before any upload, with a sentence the
user understands. Checks that need the database (an id belongs to the company) are done by the
create-import service.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadimport.rules.phone import region_for_country

OwnerType = Literal["schedule", "offer"]
MAX_ID = 2**63 - 1  # ids are PostgreSQL bigints
Id = Annotated[int, Field(gt=0, le=MAX_ID)]


def _reject_nul(value: Any, where: str = "") -> None:
    """PostgreSQL text cannot hold NUL: refuse it in any string of the options, keys included."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where or 'a value'} contains a NUL character, which is not allowed")
    elif isinstance(value, dict):
        for k, v in value.items():
            _reject_nul(k, f"{where}.{k}" if where else str(k))
            _reject_nul(v, f"{where}.{k}" if where else str(k))
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_nul(item, where)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        _reject_nul(data)
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
    dispositions: list[str] = Field(default_factory=list, max_length=100)

    @property
    def any_history_rule(self) -> bool:
        return self.scope != "none" and (
            self.existing or self.dialed or self.connected or self.converted or bool(self.dispositions)
        )

    @model_validator(mode="after")
    def _scope_needed(self) -> ScrubOptions:
        if self.scope == "none" and (self.existing or self.dialed or self.connected or self.converted
                                     or self.dispositions):
            raise ValueError("scrub options need a scope: set scrub.scope to \"company\" or \"offer\"")
        return self


class LeadManagementOptions(_Strict):
    expire_existing: bool = False
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
    buyer_ids: list[Id] = Field(default_factory=list, max_length=100)
    lead_priority: int | None = Field(default=None, ge=0, le=1000)
    sub_id: str | None = Field(default=None, max_length=255)


class Validations(_Strict):
    require_email: bool = False
    valid_email: bool = False
    required_tokens: list[str] = Field(default_factory=list, max_length=100)
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
    column_mapping: dict[str, str | None] = Field(default_factory=dict, max_length=2000)
    delimiter: Literal[",", ";", "\t", "|"] | None = None
    encoding: Literal["utf-8", "cp1252"] | None = None
    phone_validation: Literal["valid", "possible"] = "valid"
    duplicates: Literal["first", "last"] = "first"
    scrub: ScrubOptions = Field(default_factory=ScrubOptions)
    lead_management: LeadManagementOptions = Field(default_factory=LeadManagementOptions)
    defaults: DefaultAttributes = Field(default_factory=DefaultAttributes)
    additional_data: dict[str, str] = Field(default_factory=dict, max_length=200)
    validations: Validations = Field(default_factory=Validations)

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
            if not key.strip() or key.strip().lower() in ("caller_id", "email", "expires_in", "remote_ip"):
                raise ValueError(f"additional_data key {key!r} is empty or reserved")
        return v


class ImportRequest(ImportOptions):
    """Body of POST /imports: the options plus the owner and a name."""

    name: str | None = Field(default=None, max_length=200)
    owner: Owner


def options_json(options: ImportOptions) -> dict[str, object]:
    """The options as stored on the import (only ImportOptions' fields)."""
    return ImportOptions.model_validate(options.model_dump(include=set(ImportOptions.model_fields))).model_dump(
        mode="json"
    )
