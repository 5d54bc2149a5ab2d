"""Stable codes for row outcomes. Extend, never rename: the UI and users' scripts key on them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    """Why a row was rejected (contract reason codes, plus our documented extensions)."""

    MISSING_PHONE = "missing_phone"
    INVALID_PHONE = "invalid_phone"
    DUPLICATE_IN_FILE = "duplicate_in_file"
    BLACKLISTED = "blacklisted"
    SCRUBBED_EXISTING = "scrubbed_existing"
    SCRUBBED_DIALED = "scrubbed_dialed"
    SCRUBBED_CONNECTED = "scrubbed_connected"
    SCRUBBED_CONVERTED = "scrubbed_converted"
    SCRUBBED_OPTED_OUT = "scrubbed_opted_out"
    SCRUBBED_DISPOSITION = "scrubbed_disposition"
    MALFORMED_ROW = "malformed_row"
    INVALID_ENCODING = "invalid_encoding"
    VALUE_TOO_LONG = "value_too_long"
    FAILED_VALIDATION = "failed_validation"
    # Extensions (documented in the README):
    SCRUBBED_BLOCKED = "scrubbed_blocked"  # contact is blocked and the import excludes blocked contacts
    DUPLICATE_LEAD = "duplicate_lead"  # a live lead for this caller_id already exists on this owner
    UNPROCESSED = "unprocessed"  # the import was cancelled before this row's chunk ran


class RowWarning(StrEnum):
    """Something about a row was fixed or dropped, but the row went in."""

    ENCODING_FALLBACK = "encoding_fallback"  # file read as Windows-1252 (counted once per file)
    UNNAMED_COLUMNS_IGNORED = "unnamed_columns_ignored"  # the header ends with unnamed columns (once per file)
    PHONE_EXTENSION = "phone_extension"  # extension split off into the `extension` token
    PHONE_POSSIBLE_ONLY = "phone_possible_only"  # accepted as "possible", not "valid"
    EMAIL_DROPPED = "email_dropped"
    EXPIRES_IN_DROPPED = "expires_in_dropped"
    REMOTE_IP_DROPPED = "remote_ip_dropped"
    UNKNOWN_COUNTRY = "unknown_country"  # row's country column not understood; default country used
    LEAD_PRIORITY_DROPPED = "lead_priority_dropped"  # not an integer 0..1000: the default priority applies
    TRAFFIC_SOURCE_DROPPED = "traffic_source_dropped"  # not one of the company's traffic sources: the default
    BUYERS_DROPPED = "buyers_dropped"  # a buyer that is not the company's: dropped, the others kept
    NOT_ENROLLED_OPTED_OUT = "not_enrolled_opted_out"  # lead created for inbound matching, no schedule run
    NOT_ENROLLED_BLOCKED = "not_enrolled_blocked"  # lead created for inbound matching, no schedule run
    SCHEDULE_STOPPED = "schedule_stopped"  # Manage Schedule stopped the run of the lead this row refreshed
    SCHEDULE_STARTED = "schedule_started"  # Manage Schedule started it (if it was not running)
    SCHEDULE_RESTARTED = "schedule_restarted"  # Manage Schedule restarted it at the first action
    NUL_REMOVED = "nul_removed"  # NUL characters (byte 0) removed from a value
    VALUE_TOO_LONG_DROPPED = "value_too_long_dropped"  # a value over the field limit left out (not the phone's)


# What a warning means, for the per-row list (GET /imports/{id}/errors?kind=warning). A warning that names a value
# (a NUL removed, a value left out) carries its own sentence instead.
WARNING_MESSAGES: dict[str, str] = {
    RowWarning.PHONE_EXTENSION: "The phone number's extension was moved to the extension token.",
    RowWarning.PHONE_POSSIBLE_ONLY: "The phone number is possible but not known to be valid; it was accepted.",
    RowWarning.EMAIL_DROPPED: "The email is not a valid address; it was left out and the lead imported without it.",
    RowWarning.EXPIRES_IN_DROPPED: "expires_in is not a number of hours; it was left out.",
    RowWarning.REMOTE_IP_DROPPED: "remote_ip is not an IPv4 or IPv6 address; it was left out.",
    RowWarning.UNKNOWN_COUNTRY: "The country is not one we know; the import's default country was used.",
    RowWarning.LEAD_PRIORITY_DROPPED: "lead_priority is not a whole number from 0 to 1000; the default applies.",
    RowWarning.TRAFFIC_SOURCE_DROPPED: "The traffic source is not one of your company's; the default applies.",
    RowWarning.BUYERS_DROPPED: "A buyer is not one of your company's; it was left out.",
    RowWarning.NOT_ENROLLED_OPTED_OUT: "The contact opted out: the lead was created for inbound calls only.",
    RowWarning.NOT_ENROLLED_BLOCKED: "The contact is blocked: the lead was created for inbound calls only.",
    RowWarning.SCHEDULE_STOPPED: "Manage Schedule stopped the run of the lead this row refreshed.",
    RowWarning.SCHEDULE_STARTED: "Manage Schedule started the run of the lead this row refreshed.",
    RowWarning.SCHEDULE_RESTARTED: "Manage Schedule restarted the run of the lead this row refreshed.",
    RowWarning.NUL_REMOVED: "NUL characters were removed from the value.",
    RowWarning.VALUE_TOO_LONG_DROPPED: "The value is longer than the field limit; it was left out.",
}


@dataclass(frozen=True, slots=True)
class WarningNote:
    """One warning of one row, with the file's column it is about ("" when none) and a sentence."""

    code: str
    column: str
    message: str


# Each code in words, for people (the page's tables, the CLI's summary). Every code has its words: a test checks.
WORDS: dict[str, str] = {
    Reason.MISSING_PHONE: "no phone number (caller_id is empty)",
    Reason.INVALID_PHONE: "not a valid phone number",
    Reason.DUPLICATE_IN_FILE: "the same phone number earlier in the file",
    Reason.BLACKLISTED: "the phone number is blacklisted",
    Reason.SCRUBBED_EXISTING: "scrubbed: a lead with this phone already exists",
    Reason.SCRUBBED_DIALED: "scrubbed: this phone was already dialed",
    Reason.SCRUBBED_CONNECTED: "scrubbed: a call with this phone already connected",
    Reason.SCRUBBED_CONVERTED: "scrubbed: this phone already converted",
    Reason.SCRUBBED_OPTED_OUT: "scrubbed: the contact opted out",
    Reason.SCRUBBED_DISPOSITION: "scrubbed: a call with this phone had an excluded disposition",
    Reason.MALFORMED_ROW: "the row could not be read as CSV (quotes or columns)",
    Reason.INVALID_ENCODING: "the row has characters that are not valid text in the file's encoding",
    Reason.VALUE_TOO_LONG: "a value is longer than allowed",
    Reason.FAILED_VALIDATION: "failed a validation the import asked for",
    Reason.SCRUBBED_BLOCKED: "scrubbed: the contact is blocked",
    Reason.DUPLICATE_LEAD: "a live lead for this phone already exists on this schedule or offer",
    Reason.UNPROCESSED: "not processed: the import stopped (cancelled or failed) first",
    RowWarning.ENCODING_FALLBACK: "the file was read as Windows-1252, not UTF-8",
    RowWarning.UNNAMED_COLUMNS_IGNORED: "columns without a name were ignored",
    RowWarning.PHONE_EXTENSION: "an extension was split off into the extension token",
    RowWarning.PHONE_POSSIBLE_ONLY: "the phone number is possible but not known to be valid",
    RowWarning.EMAIL_DROPPED: "the email was not valid and was left out",
    RowWarning.EXPIRES_IN_DROPPED: "expires_in was not a number of hours and was left out",
    RowWarning.REMOTE_IP_DROPPED: "remote_ip was not an IP address and was left out",
    RowWarning.UNKNOWN_COUNTRY: "the country was not understood: the default country applied",
    RowWarning.LEAD_PRIORITY_DROPPED: "lead_priority was not 0 to 1000: the default applied",
    RowWarning.TRAFFIC_SOURCE_DROPPED: "the traffic source is not one of yours: the default applied",
    RowWarning.BUYERS_DROPPED: "a buyer that is not one of yours was left out",
    RowWarning.NOT_ENROLLED_OPTED_OUT: "the contact opted out: the lead takes inbound calls but gets no schedule run",
    RowWarning.NOT_ENROLLED_BLOCKED: "the contact is blocked: the lead takes inbound calls but gets no schedule run",
    RowWarning.SCHEDULE_STOPPED: "Manage Schedule stopped the existing lead's run",
    RowWarning.SCHEDULE_STARTED: "Manage Schedule started the existing lead's run",
    RowWarning.SCHEDULE_RESTARTED: "Manage Schedule restarted the existing lead's run at the first action",
    RowWarning.NUL_REMOVED: "NUL characters (byte 0) were removed from a value",
    RowWarning.VALUE_TOO_LONG_DROPPED: "a value over the field limit was left out (the lead was kept)",
}
