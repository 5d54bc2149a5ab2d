"""Phone number rules: clean a raw CSV phone value into E.164, region and time zone, or reject it.

Pure: no I/O. Built on `phonenumbers`, with a fast path (`PhoneNormalizer(fast_path=True)`, the
default) that gives exactly the answers of phonenumbers' public functions:

* North American numbers written as 10 or 11 digits (``+1``/``1`` optional) with ordinary separators
  are not parsed at all: the national number is classified directly;
* every number (after `phonenumbers.parse` for the others) is classified by `_Classifier`, a port of
  what `is_valid_number`, `region_code_for_number` and `phonenumbers.timezone.time_zones_for_number`
  do, with phonenumbers' own metadata patterns compiled once and time zones cached per prefix.

Tests compare the fast path with `fast_path=False` (phonenumbers' public functions) on hundreds of
thousands of numbers.

Decisions worth knowing:

* Anything that is not a digit, a separator (spaces, ``( ) - . /``, Unicode dashes), a leading ``+`` or
  a trailing extension (``x123``, ``ext 12``, ``ext. 12``, ``extension 12``, ``#12``) rejects the value:
  vanity letters (``1-800-FLOWERS``) are never converted, and non-ASCII digits (Arabic-Indic, full-width)
  are rejected rather than converted.
* Spreadsheet scientific notation (``1.95188E+10``) is rejected: digits were lost. A value that only
  carries a spreadsheet's ``.0`` tail (``9518761336.0``) lost nothing and is accepted without it.
* ``00`` and ``011`` international prefixes: the number is first read as written (so the region's own
  rules apply: ``011`` is the IDD from North America, ``0114 ...`` is Sheffield in the UK, ``0011`` is
  an IDD in Australia); if that does not give a valid number, the prefix is rewritten to ``+``.
* North American numbers need all 10 digits: a bare 7-digit number is rejected (phonenumbers would call
  ``310-1234`` a valid Canadian UAN).
* A number phonenumbers calls valid but longer than E.164's 15 digits (a few German ranges) is rejected.
* ``time_zone`` is the first zone phonenumbers gives for the number's prefix. For numbers without a
  geographic prefix (US toll-free, Caribbean, UK and Australian mobiles), phonenumbers falls back to the
  list of every zone of the country calling code, whose first entry is arbitrary (``America/Adak`` for
  all of +1, ``Australia/Adelaide`` for +61): then ``time_zone`` is None unless that list has one zone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, Literal, NamedTuple

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneMetadata,
    PhoneNumber,
    PhoneNumberFormat,
    PhoneNumberType,
    ValidationResult,
)
from phonenumbers.timezone import (
    UNKNOWN_TIMEZONE,
    time_zones_for_geographical_number,
    time_zones_for_number,
)
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from leadimport.reasons import Reason, RowWarning

__all__ = ["PhoneNormalizer", "PhoneResult", "region_for_country"]


class PhoneResult(NamedTuple):
    """The outcome of one phone value: accepted (``e164`` set, ``reason`` None) or rejected. A named tuple:
    immutable like a frozen dataclass, and made for every row at a third of its cost."""

    e164: str | None  # "+19518761336" when accepted
    region: str | None  # ISO 3166 region of the number ("US", "GB", "AU"); None for non-geographic (+800)
    time_zone: str | None  # IANA zone of the number; None when unknown (see module docstring)
    extension: str | None  # "123" when an extension was split off
    reason: str | None  # Reason.MISSING_PHONE / Reason.INVALID_PHONE when rejected
    message: str | None  # a sentence for the user when rejected
    warnings: tuple[str, ...]  # RowWarning codes (only on accepted results)

    @property
    def accepted(self) -> bool:
        return self.reason is None


# --------------------------------------------------------------------------------------------------
# Countries
# --------------------------------------------------------------------------------------------------

#: Values of a country column that mean "no value" (no UNKNOWN_COUNTRY warning). "NA" is here rather
#: than Namibia: in lead files it is far more often "not available".
_BLANK_COUNTRY: Final = frozenset({"", "null", "n/a", "na", "none", "nil", "-", "--", "unknown", "?"})

_COUNTRY_NAMES: Final[dict[str, str]] = {
    # United States
    "usa": "US", "united states": "US", "united states of america": "US", "america": "US",
    # United Kingdom
    "uk": "GB", "gbr": "GB", "united kingdom": "GB", "great britain": "GB", "britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "united kingdom of great britain and northern ireland": "GB",
    # The rest, alpha-3 then English names
    "aus": "AU", "australia": "AU",
    "can": "CA", "canada": "CA",
    "nzl": "NZ", "new zealand": "NZ",
    "irl": "IE", "ireland": "IE", "republic of ireland": "IE",
    "ind": "IN", "india": "IN",
    "phl": "PH", "philippines": "PH", "the philippines": "PH",
    "mex": "MX", "mexico": "MX",
    "deu": "DE", "germany": "DE",
    "fra": "FR", "france": "FR",
    "esp": "ES", "spain": "ES",
    "ita": "IT", "italy": "IT",
    "nld": "NL", "netherlands": "NL", "the netherlands": "NL", "holland": "NL",
    "bel": "BE", "belgium": "BE",
    "che": "CH", "switzerland": "CH",
    "aut": "AT", "austria": "AT",
    "swe": "SE", "sweden": "SE",
    "nor": "NO", "norway": "NO",
    "dnk": "DK", "denmark": "DK",
    "fin": "FI", "finland": "FI",
    "pol": "PL", "poland": "PL",
    "prt": "PT", "portugal": "PT",
    "bra": "BR", "brazil": "BR",
    "arg": "AR", "argentina": "AR",
    "col": "CO", "colombia": "CO",
    "chl": "CL", "chile": "CL",
    "per": "PE", "peru": "PE",
    "zaf": "ZA", "south africa": "ZA",
    "nga": "NG", "nigeria": "NG",
    "ken": "KE", "kenya": "KE",
    "isr": "IL", "israel": "IL",
    "are": "AE", "uae": "AE", "united arab emirates": "AE",
    "sau": "SA", "saudi arabia": "SA",
    "sgp": "SG", "singapore": "SG",
    "mys": "MY", "malaysia": "MY",
    "jpn": "JP", "japan": "JP",
    "chn": "CN", "china": "CN",
    "hkg": "HK", "hong kong": "HK",
    "kor": "KR", "south korea": "KR", "korea": "KR",
    "pri": "PR", "puerto rico": "PR",
    "jam": "JM", "jamaica": "JM",
    "dom": "DO", "dominican republic": "DO",
    "pak": "PK", "pakistan": "PK",
    "bgd": "BD", "bangladesh": "BD",
    "vnm": "VN", "vietnam": "VN", "viet nam": "VN",
    "tha": "TH", "thailand": "TH",
    "idn": "ID", "indonesia": "ID",
    "tur": "TR", "turkey": "TR", "turkiye": "TR",
    "grc": "GR", "greece": "GR",
}  # fmt: skip


def _country_key(value: str) -> str:
    return " ".join(value.replace(".", "").replace("_", " ").casefold().split())


def region_for_country(value: str | None) -> str | None:
    """The phonenumbers region ("US", "GB", ...) for a country column value; None for empty or unknown.

    Understands ISO 3166 alpha-2 codes phonenumbers supports (``phonenumbers.SUPPORTED_REGIONS``),
    ``UK``, common alpha-3 codes and English names (``USA``, ``United Kingdom``, ``England``,
    ``Australia``). Case, dots and spaces are ignored (``u.s.a.`` works).
    """
    if value is None:
        return None
    key = _country_key(value)
    if key in _BLANK_COUNTRY:
        return None
    found = _COUNTRY_NAMES.get(key)
    if found is not None:
        return found
    if len(key) == 2:
        code = key.upper()
        if code in phonenumbers.SUPPORTED_REGIONS:
            return code
    return None


def _country_is_blank(value: str | None) -> bool:
    return value is None or _country_key(value) in _BLANK_COUNTRY


# --------------------------------------------------------------------------------------------------
# Text rules
# --------------------------------------------------------------------------------------------------

_MISSING_TOKENS: Final = frozenset({"null", "n/a", "na", "none", "-"})
_MAX_RAW_LENGTH: Final = 100  # longer values are rejected before any regex runs

# Separators removed before reading digits: whitespace (incl. NBSP and other Unicode spaces, zero-width
# space, BOM), ( ) - . / and Unicode dashes.
_SEPARATORS: Final = (
    " \t\n\r\v\f\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
    "()-./"
    "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
)
_STRIP_CHARS: Final = _SEPARATORS[: _SEPARATORS.index("(")]  # whitespace only
_DELETE_SEPARATORS: Final = str.maketrans("", "", _SEPARATORS)

_COMPACT_RE: Final = re.compile(r"\+?[0-9]+")
_SIMPLE_RE: Final = re.compile(r"\+?[0-9]{10,11}")  # candidates for the top-level NANPA shortcut
_SCIENTIFIC_RE: Final = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]+")
_FLOAT_TAIL_RE: Final = re.compile(r"(\+?[0-9]{7,})\.0+")
_EXTENSION_RE: Final = re.compile(
    r"(?P<number>.*[0-9)])[\s,;]*(?:(?:extension|extn|ext)\s*[.:=]?|x|\#)\s*(?P<ext>[0-9]{1,10})",
    re.IGNORECASE | re.ASCII | re.DOTALL,
)
_E164_RE: Final = re.compile(r"\+[1-9][0-9]{6,14}")
_D2_9: Final = frozenset("23456789")


def _shown(text: str) -> str:
    """The user's value, made safe and short for a message."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 40 else text[:39] + "…"


# --------------------------------------------------------------------------------------------------
# The fast path
# --------------------------------------------------------------------------------------------------

_UNKNOWN: Final = PhoneNumberType.UNKNOWN
# The order phonenumbers' _number_type_helper tests the number types in (before fixed line / mobile).
_TYPE_ORDER: Final = (
    (PhoneNumberType.PREMIUM_RATE, "premium_rate"),
    (PhoneNumberType.TOLL_FREE, "toll_free"),
    (PhoneNumberType.SHARED_COST, "shared_cost"),
    (PhoneNumberType.VOIP, "voip"),
    (PhoneNumberType.PERSONAL_NUMBER, "personal_number"),
    (PhoneNumberType.PAGER, "pager"),
    (PhoneNumberType.UAN, "uan"),
    (PhoneNumberType.VOICEMAIL, "voicemail"),
)


def _desc_pattern(metadata: PhoneMetadata, attr: str, length: int) -> re.Pattern[str] | None:
    """The compiled pattern of a PhoneNumberDesc, or None when it can never match a number of `length`.

    Mirrors phonenumbers' _is_number_matching_desc / _match_national_number: a missing desc, a
    possible-length list without `length`, or an empty pattern never match; otherwise the number must
    match the whole pattern.
    """
    desc = getattr(metadata, attr, None)
    if desc is None:
        return None
    lengths = desc.possible_length
    if lengths and length not in lengths:
        return None
    pattern = desc.national_number_pattern
    if not pattern:
        return None
    return re.compile(pattern)


class _RegionRules:
    """phonenumbers' number-type decision for one region, for national numbers of one length."""

    __slots__ = ("code", "fixed", "general", "mobile", "same_mobile_fixed", "typed")

    def __init__(self, code: str, metadata: PhoneMetadata, length: int) -> None:
        self.code = code
        self.general = _desc_pattern(metadata, "general_desc", length)
        self.typed = tuple(
            (ntype, pattern)
            for ntype, attr in _TYPE_ORDER
            if (pattern := _desc_pattern(metadata, attr, length)) is not None
        )
        self.fixed = _desc_pattern(metadata, "fixed_line", length)
        self.mobile = _desc_pattern(metadata, "mobile", length)
        self.same_mobile_fixed = bool(metadata.same_mobile_and_fixed_line_pattern)

    def number_type(self, nsn: str) -> int:
        """Exactly phonenumbers' _number_type_helper(nsn, metadata) for numbers of this length."""
        if self.general is None or self.general.fullmatch(nsn) is None:
            return _UNKNOWN
        for ntype, pattern in self.typed:
            if pattern.fullmatch(nsn) is not None:
                return ntype
        if self.fixed is not None and self.fixed.fullmatch(nsn) is not None:
            if self.same_mobile_fixed or (self.mobile is not None and self.mobile.fullmatch(nsn) is not None):
                return PhoneNumberType.FIXED_LINE_OR_MOBILE
            return PhoneNumberType.FIXED_LINE
        if not self.same_mobile_fixed and self.mobile is not None and self.mobile.fullmatch(nsn) is not None:
            return PhoneNumberType.MOBILE
        return _UNKNOWN


def _country_zones(country_code: int) -> tuple[str, ...]:
    """phonenumbers' time zones for a non-geographic number of this calling code (the country-wide list)."""
    # time_zones_for_number falls back to the country-level list for non-geographic types; a toll-free
    # style number is not needed: the list depends on the calling code only, so ask for it directly.
    cc = str(country_code)
    for prefix_len in range(TIMEZONE_LONGEST_PREFIX, 0, -1):
        zones = TIMEZONE_DATA.get(cc[: 1 + prefix_len])
        if zones is not None:
            return tuple(zones)
    return (UNKNOWN_TIMEZONE,)


def _pick_zone(zones: tuple[str, ...], geographic: bool) -> str | None:
    known = [z for z in zones if z != UNKNOWN_TIMEZONE]
    if not known:
        return None
    if geographic or len(known) == 1:
        return known[0]
    return None


class _RegionEntry:
    """One region of a calling code, as region_code_for_number / is_valid_number_for_region use it."""

    __slots__ = ("calling_code_matches", "cc", "code", "leading", "metadata", "region")

    def __init__(self, code: str, cc: int, metadata: PhoneMetadata, leading_digits: str | None) -> None:
        self.code = code
        self.region = _iso_region(code)
        self.cc = cc
        self.metadata = metadata
        self.leading = re.compile(leading_digits) if leading_digits is not None else None
        # is_valid_number_for_region: a geographic region's calling code must be the number's.
        self.calling_code_matches = (
            code == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY or metadata.country_code == cc
        )


class _Classifier:
    """Valid numbers, decided as phonenumbers decides them, from a calling code and national number.

    A line-for-line port of what `is_valid_number`, `region_code_for_number` and
    `phonenumbers.timezone.time_zones_for_number` do after parsing, with the metadata patterns compiled
    once and the time-zone lookups cached:

    * region: a calling code with one region gives that region; otherwise the regions are walked in
      COUNTRY_CODE_TO_REGION_CODE order, and a region with `leading_digits` is chosen when they match
      the start of the national number, a region without (US, CA; GB) when the number has a known
      type there.
    * validity: the chosen region's metadata exists, belongs to the calling code, and its number-type
      helper does not say UNKNOWN.
    * time zone: geographic types (`is_number_type_geographical`) look up the longest prefix of the
      E.164 digits in phonenumbers' tz data; other types get the calling code's country-level list.
    """

    def __init__(self) -> None:
        self._regions: dict[int, tuple[bool, tuple[_RegionEntry, ...]]] = {}
        self._rules: dict[tuple[str, int, int], _RegionRules] = {}
        # For each 4-character prefix, the longest tz-data key starting with it (at least 4): the
        # geographic lookup for a number depends on no more digits than that.
        key_len: dict[str, int] = {}
        for key in TIMEZONE_DATA:
            if len(key) > 4:
                key_len[key[:4]] = max(key_len.get(key[:4], 4), len(key))
        self._tz_key_len = key_len
        self._tz_cache: dict[str, str | None] = {}
        self._country_zone: dict[int, str | None] = {}
        self._geo_types: dict[int, frozenset[int]] = {}
        # +1 shortcut: the walk over the +1 regions starts with US, which has no leading digits, so a
        # number with a known type for US is a valid US number without looking further.
        _, entries = self._region_entries(1)
        first = entries[0] if entries else None
        self._nanpa_first: tuple[Callable[[str], int], str | None] | None = None
        if first is not None and first.leading is None and first.calling_code_matches:
            self._nanpa_first = (self._rules_for(first, 10).number_type, first.region)
        self._nanpa_geo = self._geographic_types(1)
        self._nanpa_country_zone = self._country_level_zone(1)

    def _geographic_types(self, cc: int) -> frozenset[int]:
        try:
            return self._geo_types[cc]
        except KeyError:
            found = frozenset(
                t for t in PhoneNumberType.values() if phonenumbers.is_number_type_geographical(t, cc)
            )
            self._geo_types[cc] = found
            return found

    def _country_level_zone(self, cc: int) -> str | None:
        try:
            return self._country_zone[cc]
        except KeyError:
            zone = self._country_zone[cc] = _pick_zone(_country_zones(cc), geographic=False)
            return zone

    def classify_nanpa(self, nsn: str) -> tuple[str | None, str | None] | None:
        """classify(1, nsn) for a 10-digit `nsn`, with the US shortcut."""
        first = self._nanpa_first
        if first is not None:
            ntype = first[0](nsn)
            if ntype != _UNKNOWN:
                if ntype in self._nanpa_geo:
                    digits = "1" + nsn
                    key = digits[: self._tz_key_len.get(digits[:4], 4)]
                    try:
                        return (first[1], self._tz_cache[key])
                    except KeyError:
                        return (first[1], self._geo_zone(digits))
                return (first[1], self._nanpa_country_zone)
        return self.classify(1, nsn)

    def _region_entries(self, cc: int) -> tuple[bool, tuple[_RegionEntry, ...]]:
        """(single region?, entries): as region_code_for_number sees the calling code's regions."""
        try:
            return self._regions[cc]
        except KeyError:
            pass
        codes = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc, ())
        entries: list[_RegionEntry] = []
        if len(codes) == 1:
            # region_code_for_number returns the only region without looking at the number.
            metadata = PhoneMetadata.metadata_for_region_or_calling_code(cc, codes[0].upper())
            if metadata is not None:
                entries.append(_RegionEntry(codes[0], cc, metadata, None))
        else:
            for code in codes:
                metadata = PhoneMetadata.metadata_for_region(code.upper(), None)
                if metadata is not None:  # the walk skips regions without metadata
                    entries.append(_RegionEntry(code, cc, metadata, metadata.leading_digits))
        found = (len(codes) == 1, tuple(entries))
        self._regions[cc] = found
        return found

    def _rules_for(self, entry: _RegionEntry, length: int) -> _RegionRules:
        key = (entry.code, entry.cc, length)
        rules = self._rules.get(key)
        if rules is None:
            rules = self._rules[key] = _RegionRules(entry.code, entry.metadata, length)
        return rules

    def classify(self, cc: int, nsn: str) -> tuple[str | None, str | None] | None:
        """(ISO region or None, time zone) when the number is valid, else None."""
        single, entries = self._region_entries(cc)
        length = len(nsn)
        chosen: _RegionEntry | None = None
        ntype = _UNKNOWN
        if single:
            if entries:
                chosen = entries[0]
                ntype = self._rules_for(chosen, length).number_type(nsn)
        else:
            for entry in entries:
                if entry.leading is not None:
                    if entry.leading.match(nsn) is not None:
                        chosen = entry
                        ntype = self._rules_for(entry, length).number_type(nsn)
                        break
                else:
                    ntype = self._rules_for(entry, length).number_type(nsn)
                    if ntype != _UNKNOWN:
                        chosen = entry
                        break
        if chosen is None or ntype == _UNKNOWN or not chosen.calling_code_matches:
            return None
        if ntype in self._geographic_types(cc):
            return chosen.region, self._geo_zone(str(cc) + nsn)
        return chosen.region, self._country_level_zone(cc)

    def _geo_zone(self, digits: str) -> str | None:
        key = digits[: self._tz_key_len.get(digits[:4], 4)]
        try:
            return self._tz_cache[key]
        except KeyError:
            pass
        zones: tuple[str, ...] = (UNKNOWN_TIMEZONE,)
        for prefix_len in range(TIMEZONE_LONGEST_PREFIX, 0, -1):
            found = TIMEZONE_DATA.get(key[:prefix_len])
            if found is not None:
                zones = tuple(found)
                break
        zone = _pick_zone(zones, geographic=True)
        if len(self._tz_cache) >= 50_000:
            self._tz_cache.clear()
        self._tz_cache[key] = zone
        return zone


_NANPA_REGIONS: Final = frozenset(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])
_classifier_singleton: _Classifier | None = None


def _classifier() -> _Classifier:
    global _classifier_singleton
    if _classifier_singleton is None:
        _classifier_singleton = _Classifier()
    return _classifier_singleton


def _nanpa_national(compact: str, region_is_nanpa: bool) -> str | None:
    """The 10-digit national number when `compact` (``+?[0-9]+``) is written as a +1 number, else None.

    ``+1NXXNXXXXXX`` from any region; ``1NXXNXXXXXX`` and ``NXXNXXXXXX`` only when the parsing region
    is a +1 region (as phonenumbers reads them then).
    """
    n = len(compact)
    if n == 12:
        if compact[0] == "+" and compact[1] == "1" and compact[2] in _D2_9:
            return compact[2:]
    elif region_is_nanpa:
        if n == 11:
            if compact[0] == "1" and compact[1] in _D2_9:
                return compact[1:]
        elif n == 10 and compact[0] in _D2_9:
            return compact
    return None


# --------------------------------------------------------------------------------------------------
# The normalizer
# --------------------------------------------------------------------------------------------------

_VALID: Final = 0
_POSSIBLE: Final = 1
_REJECTED: Final = 2

# (status, e164, region, time_zone, message)
_Verdict = tuple[int, str | None, str | None, str | None, str | None]

_PARSE_ERRORS: Final[dict[int, str]] = {
    NumberParseException.INVALID_COUNTRY_CODE: "{shown} does not start with a known country calling code.",
    NumberParseException.NOT_A_NUMBER: "{shown} is not a phone number.",
    NumberParseException.TOO_SHORT_AFTER_IDD: "{shown} is too short after its international prefix.",
    NumberParseException.TOO_SHORT_NSN: "{shown} has too few digits to be a phone number.",
    NumberParseException.TOO_LONG: "{shown} has too many digits to be a phone number.",
}
_LENGTH_ERRORS: Final[dict[int, str]] = {
    ValidationResult.INVALID_COUNTRY_CODE: "{shown} does not start with a known country calling code.",
    ValidationResult.TOO_SHORT: "{shown} has too few digits for a {label} number.",
    ValidationResult.TOO_LONG: "{shown} has too many digits for a {label} number.",
    ValidationResult.INVALID_LENGTH: "{shown} has the wrong number of digits for a {label} number.",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "{shown} is a local number: add its area code.",
    ValidationResult.IS_POSSIBLE: "{shown} is not a valid {label} number.",
}

_CACHE_LIMIT: Final = 100_000
_COUNTRY_CACHE_LIMIT: Final = 10_000


class PhoneNormalizer:
    """Normalizes raw phone values. Not thread-safe (its caches are plain dicts); cheap to create.

    default_region: the region for numbers written without a country code, when the row's country is
    empty or not understood. validation: "valid" accepts only numbers phonenumbers calls valid;
    "possible" also accepts numbers of a possible length (warning PHONE_POSSIBLE_ONLY).
    fast_path: False forces every number through phonenumbers (the reference the fast path is tested
    against).
    """

    def __init__(
        self,
        default_region: str = "US",
        validation: Literal["valid", "possible"] = "valid",
        *,
        fast_path: bool = True,
    ) -> None:
        region = (default_region or "").strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unsupported default region: {default_region!r}")
        if validation not in ("valid", "possible"):
            raise ValueError(f"validation must be 'valid' or 'possible', not {validation!r}")
        self.default_region = region
        self.validation = validation
        self.fast_path = fast_path
        self._accept_possible = validation == "possible"
        self._fast = _classifier() if fast_path else None
        self._cache: dict[tuple[str, str | None], PhoneResult] = {}
        self._countries: dict[str | None, tuple[str, bool, bool]] = {}
        self._country_zone_cache: dict[int, str | None] = {}

    # -- public -------------------------------------------------------------------------------------

    def normalize(self, raw: str | None, country: str | None = None) -> PhoneResult:
        """Normalize one phone value; `country` is the row's country column (may be empty)."""
        try:
            region, region_is_nanpa, unknown_country = self._countries[country]
        except KeyError:
            region, region_is_nanpa, unknown_country = self._country(country)
        if raw is None:
            return _MISSING
        fast = self._fast
        if fast is not None and len(raw) <= _MAX_RAW_LENGTH:
            # Shortcut for the dominant case: digits and separators only. Gives what _full gives for
            # the same value (same separator removal, same +1 reading, same classifier).
            compact = raw.translate(_DELETE_SEPARATORS)
            if _SIMPLE_RE.fullmatch(compact) is not None and not (
                "." in raw and _FLOAT_TAIL_RE.fullmatch(raw.strip(_STRIP_CHARS)) is not None
            ):
                nsn = _nanpa_national(compact, region_is_nanpa)
                if nsn is not None:
                    found = fast.classify_nanpa(nsn)
                    if found is not None:
                        return PhoneResult(
                            "+1" + nsn,
                            found[0],
                            found[1],
                            None,
                            None,
                            None,
                            _UNKNOWN_COUNTRY if unknown_country else (),
                        )
        key = (raw, country)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        result = self._full(raw, region, region_is_nanpa, unknown_country)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = result
        return result

    # -- internals ----------------------------------------------------------------------------------

    def _country(self, country: str | None) -> tuple[str, bool, bool]:
        found = region_for_country(country)
        unknown = found is None and not _country_is_blank(country)
        region = found or self.default_region
        entry = (region, region in _NANPA_REGIONS, unknown)
        if len(self._countries) >= _COUNTRY_CACHE_LIMIT:
            self._countries.clear()
        self._countries[country] = entry
        return entry

    def _full(self, raw: str, region: str, region_is_nanpa: bool, unknown_country: bool) -> PhoneResult:
        text = raw.strip(_STRIP_CHARS)
        if not text or text.casefold() in _MISSING_TOKENS:
            return _MISSING
        shown = _shown(text)
        if len(text) > _MAX_RAW_LENGTH:
            return _invalid(f"{shown} is too long to be a phone number.")
        if _SCIENTIFIC_RE.fullmatch(text) is not None:
            return _invalid(
                f"{shown} is in scientific notation: a spreadsheet turned the phone number into a number "
                "and dropped digits. Format the phone column as Text in the spreadsheet, enter the full "
                "numbers again and export the file again."
            )
        tail = _FLOAT_TAIL_RE.fullmatch(text)
        if tail is not None:
            text = tail.group(1)
        extension: str | None = None
        ext = _EXTENSION_RE.fullmatch(text)
        if ext is not None:
            text, extension = ext.group("number"), ext.group("ext")
        compact = text.translate(_DELETE_SEPARATORS)
        if not compact:
            return _MISSING
        if _COMPACT_RE.fullmatch(compact) is None:
            return _invalid(_bad_characters_message(shown, compact))

        candidates = [compact]
        if compact.startswith("00"):
            candidates.append("+" + compact[2:])
        elif compact.startswith("011"):
            candidates.append("+" + compact[3:])
        # The value as written first; then with its 00 / 011 prefix read as an international prefix.
        # Prefer a valid reading, then a possible one, else the last reading's rejection.
        possible: _Verdict | None = None
        verdict: _Verdict | None = None
        for candidate in candidates:
            verdict = self._classify(candidate, region, region_is_nanpa, shown)
            if verdict[0] == _VALID:
                break
            if verdict[0] == _POSSIBLE and possible is None:
                possible = verdict
        else:
            verdict = possible or verdict
        assert verdict is not None
        status, e164, number_region, zone, message = verdict
        if status == _REJECTED:
            return _invalid(message or f"{shown} is not a valid phone number.")
        warnings: list[str] = []
        if extension is not None:
            warnings.append(RowWarning.PHONE_EXTENSION)
        if status == _POSSIBLE:
            warnings.append(RowWarning.PHONE_POSSIBLE_ONLY)
        if unknown_country:
            warnings.append(RowWarning.UNKNOWN_COUNTRY)
        return PhoneResult(e164, number_region, zone, extension, None, None, tuple(warnings))

    def _classify(self, compact: str, region: str, region_is_nanpa: bool, shown: str) -> _Verdict:
        """Decide one digit string (``+?[0-9]+``) read in `region`."""
        fast = self._fast
        if fast is not None:
            nsn = _nanpa_national(compact, region_is_nanpa)
            if nsn is not None:
                found = fast.classify_nanpa(nsn)
                if found is not None:
                    return (_VALID, "+1" + nsn, found[0], found[1], None)
        try:
            number = phonenumbers.parse(compact, region)
        except NumberParseException as exc:
            template = _PARSE_ERRORS.get(exc.error_type, "{shown} is not a valid phone number.")
            return (_REJECTED, None, None, None, template.format(shown=shown))
        except Exception:  # defensive: phonenumbers must never take the row path down
            return (_REJECTED, None, None, None, f"{shown} is not a valid phone number.")
        country_code = number.country_code or 0
        nsn = phonenumbers.national_significant_number(number)
        if country_code == 1 and len(nsn) < 10:
            return (
                _REJECTED,
                None,
                None,
                None,
                f"{shown} has too few digits: North American numbers have 10 digits, including the area code.",
            )
        if fast is not None:
            found = fast.classify(country_code, nsn)
            if found is not None:
                e164 = f"+{country_code}{nsn}"
                if _E164_RE.fullmatch(e164) is None:
                    return (_REJECTED, None, None, None, _too_long_for_e164(shown))
                return (_VALID, e164, found[0], found[1], None)
            ntype = _UNKNOWN
        else:
            ntype = phonenumbers.number_type(number)  # != UNKNOWN exactly when is_valid_number
        if ntype != _UNKNOWN:
            e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
            if _E164_RE.fullmatch(e164) is None:
                return (_REJECTED, None, None, None, _too_long_for_e164(shown))
            number_region = _iso_region(phonenumbers.region_code_for_number(number))
            return (_VALID, e164, number_region, self._zone(number, ntype), None)
        length = phonenumbers.is_possible_number_with_reason(number)
        label = _label(number, region)
        if self._accept_possible and length == ValidationResult.IS_POSSIBLE:
            e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
            if _E164_RE.fullmatch(e164) is not None:
                number_region = _iso_region(phonenumbers.region_code_for_number(number)) or _iso_region(
                    phonenumbers.region_code_for_country_code(country_code)
                )
                return (_POSSIBLE, e164, number_region, None, None)
        template = _LENGTH_ERRORS.get(length, "{shown} is not a valid {label} number.")
        return (_REJECTED, None, None, None, template.format(shown=shown, label=label))

    def _zone(self, number: PhoneNumber, ntype: int) -> str | None:
        cc = number.country_code or 0
        if phonenumbers.is_number_type_geographical(ntype, cc):
            return _pick_zone(tuple(time_zones_for_geographical_number(number)), geographic=True)
        try:
            return self._country_zone_cache[cc]
        except KeyError:
            # Non-geographic types get the country-level list, which depends on the calling code only.
            zone = _pick_zone(tuple(time_zones_for_number(number)), geographic=False)
            self._country_zone_cache[cc] = zone
            return zone


def _too_long_for_e164(shown: str) -> str:
    # phonenumbers calls a few 16-digit numbers valid (Germany); E.164 allows 15 digits at most.
    return f"{shown} has more digits than an international phone number can have (15)."


def _iso_region(code: str | None) -> str | None:
    if code is None or code in (phonenumbers.UNKNOWN_REGION, phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY):
        return None
    return code


def _label(number: PhoneNumber, region: str) -> str:
    """How a rejection names the number's country: the row's region when the calling codes agree,
    else the calling code's main region ("+1 555 123 4567 is not a valid US number.")."""
    cc = number.country_code or 0
    if phonenumbers.country_code_for_region(region) == cc:
        return region
    code = _iso_region(phonenumbers.region_code_for_country_code(cc))
    return code if code is not None else f"+{cc}"


def _bad_characters_message(shown: str, compact: str) -> str:
    if any(c.isdigit() and not ("0" <= c <= "9") for c in compact):
        return f"{shown} contains non-ASCII digits: write the number with the digits 0-9."
    if any(c.isalpha() for c in compact):
        return (
            f"{shown} contains letters: a phone number may only have digits, spaces and + ( ) - . "
            "with an optional extension such as x123."
        )
    if not any("0" <= c <= "9" for c in compact):
        return f"{shown} is not a phone number."
    if "+" in compact:
        return f"{shown} has a + in the wrong place: + may only start the number."
    return f"{shown} contains characters that are not allowed in a phone number."


def _invalid(message: str) -> PhoneResult:
    return PhoneResult(None, None, None, None, Reason.INVALID_PHONE, message, ())


_MISSING: Final = PhoneResult(None, None, None, None, Reason.MISSING_PHONE, "The phone number is empty.", ())
_UNKNOWN_COUNTRY: Final[tuple[str, ...]] = (RowWarning.UNKNOWN_COUNTRY,)
