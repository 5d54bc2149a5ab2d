"""Rules for the dedicated lead columns (email, expires_in, remote_ip, lead_priority). Pure: no I/O.

A bad value in one of these columns never rejects the row: the value is dropped and the caller
records the returned RowWarning. An empty value, or one of the usual placeholders (``NULL``, ``N/A``,
``NA``, ``none``, ``-``), is simply "no value": (None, None), no warning. No function raises, whatever
the string.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Final

from leadimport.reasons import RowWarning

__all__ = [
    "MAX_EXPIRES_IN_HOURS",
    "MAX_LEAD_PRIORITY",
    "clean_email",
    "clean_expires_in",
    "clean_lead_priority",
    "clean_remote_ip",
    "is_valid_email",
]


_PLACEHOLDERS: Final = frozenset({"null", "n/a", "na", "none", "-"})


def _blank(raw: str | None) -> str | None:
    """The stripped value, or None when it is empty or a placeholder."""
    if raw is None:
        return None
    value = raw.strip()
    if not value or value.casefold() in _PLACEHOLDERS:
        return None
    return value


# --------------------------------------------------------------------------------------------------
# Email
# --------------------------------------------------------------------------------------------------

MAX_EMAIL_LENGTH: Final = 254
MAX_EMAIL_LOCAL_LENGTH: Final = 64
_EMAIL_FORBIDDEN: Final = frozenset('<>()[]\\,;:"')
# The same forbidden set, whitespace and ASCII control characters, for the common ASCII case in one C call.
_EMAIL_ASCII_BAD: Final = re.compile(r'[<>()\[\]\\,;:"\s\x00-\x1f\x7f]')


# The common shape, accepted at once (a subset of what the rules below accept: dot-separated atoms of
# letters, digits and _%+- before the @, LDH labels after it, an alphabetic top-level label).
_EMAIL_COMMON: Final = re.compile(
    r"[A-Za-z0-9_%+-]{1,64}(?:\.[A-Za-z0-9_%+-]{1,64})*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


def is_valid_email(value: str) -> bool:
    """A pragmatic email check, not RFC 5322.

    One ``@``; a local part of 1-64 characters without leading, trailing or doubled dots; a domain
    with at least one dot, non-empty labels of at most 63 characters that do not start or end with
    ``-``, and a top-level label of 2+ characters that is not all digits; no whitespace, control
    characters or ``<>()[]\\,;:"`` (so no quoted local parts or IP-literal domains); 254 characters
    at most. Non-ASCII letters are allowed (internationalized addresses).
    """
    if not value or len(value) > MAX_EMAIL_LENGTH:
        return False
    if _EMAIL_COMMON.fullmatch(value) is not None and value.index("@") <= MAX_EMAIL_LOCAL_LENGTH:
        return True
    return _is_valid_email_by_rules(value)


def _is_valid_email_by_rules(value: str) -> bool:
    if not value or len(value) > MAX_EMAIL_LENGTH or value.count("@") != 1:
        return False
    if value.isascii():
        if _EMAIL_ASCII_BAD.search(value):
            return False
    else:
        for c in value:
            if c in _EMAIL_FORBIDDEN or c.isspace() or not c.isprintable():
                return False
    local, _, domain = value.partition("@")
    if not local or len(local) > MAX_EMAIL_LOCAL_LENGTH:
        return False
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return False
    labels = domain.split(".")
    if len(labels) < 2:
        return False
    for label in labels:
        if not label or len(label) > 63 or label.startswith("-") or label.endswith("-"):
            return False
    tld = labels[-1]
    return len(tld) >= 2 and not tld.isdigit()


def clean_email(raw: str | None) -> tuple[str | None, str | None]:
    """(email, warning): trimmed, domain lowercased (the local part keeps its case).

    Empty or placeholder -> (None, None); malformed -> (None, RowWarning.EMAIL_DROPPED).
    """
    value = _blank(raw)
    if value is None:
        return None, None
    local, at, domain = value.rpartition("@")
    if not at:
        return None, RowWarning.EMAIL_DROPPED
    email = f"{local}@{domain.lower()}"
    if not is_valid_email(email):
        return None, RowWarning.EMAIL_DROPPED
    return email, None


# --------------------------------------------------------------------------------------------------
# expires_in
# --------------------------------------------------------------------------------------------------

MAX_EXPIRES_IN_HOURS: Final = 24 * 3650  # ten years, as the import option hours_until_expiration
_HOURS_RE: Final = re.compile(r"(?:[0-9]{1,12}(?:\.[0-9]{0,20})?|\.[0-9]{1,20})")
_SECONDS_PER_HOUR: Final = Decimal(3600)


def clean_expires_in(raw: str | None) -> tuple[int | None, str | None]:
    """(seconds, warning) for an ``expires_in`` value given in HOURS.

    A plain decimal number of hours >= 0 (``"48"`` -> 172800, ``"1.5"`` -> 5400), converted exactly
    (no float) and rounded to the nearest second. Empty or placeholder -> (None, None). Anything else
    -> (None, RowWarning.EXPIRES_IN_DROPPED): signs, exponents, ``nan``/``inf``, thousands
    separators, units (``48h``), non-ASCII digits, and more than ten years (MAX_EXPIRES_IN_HOURS).
    """
    value = _blank(raw)
    if value is None:
        return None, None
    if _HOURS_RE.fullmatch(value) is None:
        return None, RowWarning.EXPIRES_IN_DROPPED
    hours = Decimal(value)
    if hours > MAX_EXPIRES_IN_HOURS:
        return None, RowWarning.EXPIRES_IN_DROPPED
    seconds = (hours * _SECONDS_PER_HOUR).to_integral_value(rounding=ROUND_HALF_UP)
    return int(seconds), None


# --------------------------------------------------------------------------------------------------
# remote_ip
# --------------------------------------------------------------------------------------------------

_MAX_IP_LENGTH: Final = 64
# Dotted-quad IPv4 without leading zeros: already in the form ipaddress would return (fast path).
_IPV4: Final = re.compile(r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])")


def clean_remote_ip(raw: str | None) -> tuple[str | None, str | None]:
    """(address, warning): an IPv4 or IPv6 address in its compressed form (``2001:db8::1``).

    An IPv4-mapped IPv6 address (``::ffff:1.2.3.4``) is returned as the IPv4 address. Scoped IPv6
    addresses (``fe80::1%eth0``) are dropped: a scope means nothing outside the host, and PostgreSQL's
    ``inet`` rejects it. Empty or placeholder -> (None, None); invalid -> (None, REMOTE_IP_DROPPED).
    """
    value = _blank(raw)
    if value is None:
        return None, None
    if _IPV4.fullmatch(value) is not None:
        return value, None
    if len(value) > _MAX_IP_LENGTH or "%" in value:
        return None, RowWarning.REMOTE_IP_DROPPED
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None, RowWarning.REMOTE_IP_DROPPED
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.compressed, None
    return address.compressed, None


# --------------------------------------------------------------------------------------------------
# lead_priority
# --------------------------------------------------------------------------------------------------

MAX_LEAD_PRIORITY: Final = 1000
_PRIORITY_RE: Final = re.compile(r"([0-9]{1,4})(?:\.0+)?")


def clean_lead_priority(raw: str | None) -> int | None:
    """The lead priority, an integer 0..1000 (lower is called sooner), or None.

    ASCII digits only, surrounding spaces ignored; a spreadsheet's ``.0`` tail is accepted (``"5.0"``
    -> 5). Anything else -> None (the caller keeps the value as a token).
    """
    if raw is None:
        return None
    if raw.isdigit() and raw.isascii() and len(raw) <= 4:  # "5", "250": nearly every value given
        priority = int(raw)
        return priority if priority <= MAX_LEAD_PRIORITY else None
    match = _PRIORITY_RE.fullmatch(raw.strip())
    if match is None:
        return None
    priority = int(match.group(1))
    return priority if priority <= MAX_LEAD_PRIORITY else None
