"""Phone rules: what is accepted, what is rejected and why, and that the fast path is exact."""

from __future__ import annotations

import random
import re

import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers.timezone import time_zones_for_number

from leadimport.reasons import Reason, RowWarning
from leadimport.rules import phone as phone_module
from leadimport.rules.phone import PhoneNormalizer, PhoneResult, region_for_country

pytestmark = pytest.mark.unit

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SCIENTIFIC_HINT = "scientific notation"

FAST = PhoneNormalizer()
SLOW = PhoneNormalizer(fast_path=False)


def check_shape(result: PhoneResult) -> None:
    """The invariant every result keeps."""
    if result.reason is None:
        assert result.e164 is not None and E164.match(result.e164), result
        assert result.message is None
    else:
        assert result.e164 is None and result.region is None and result.time_zone is None, result
        assert result.reason in (Reason.MISSING_PHONE, Reason.INVALID_PHONE)
        assert result.message and result.message.endswith("."), result
        assert result.warnings == ()


# --------------------------------------------------------------------------------------------------
# Accepted values
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "country", "e164", "region", "time_zone"),
    [
        # US, every common way of writing it
        ("+1 (951) 876-1336", None, "+19518761336", "US", "America/Los_Angeles"),
        ("9518761336", None, "+19518761336", "US", "America/Los_Angeles"),
        ("19518761336", None, "+19518761336", "US", "America/Los_Angeles"),
        ("951.876.1336", None, "+19518761336", "US", "America/Los_Angeles"),
        ("(951) 876-1336", None, "+19518761336", "US", "America/Los_Angeles"),
        ("1-951-876-1336", None, "+19518761336", "US", "America/Los_Angeles"),
        ("+19518761336", None, "+19518761336", "US", "America/Los_Angeles"),
        ("  951 876 1336  ", None, "+19518761336", "US", "America/Los_Angeles"),
        ("951/876-1336", None, "+19518761336", "US", "America/Los_Angeles"),
        ("951\u00a0876\u00a01336", None, "+19518761336", "US", "America/Los_Angeles"),  # NBSP
        ("951\u2013876\u20131336", None, "+19518761336", "US", "America/Los_Angeles"),  # en dash
        ("\ufeff9518761336", None, "+19518761336", "US", "America/Los_Angeles"),  # BOM
        ("9518761336.0", None, "+19518761336", "US", "America/Los_Angeles"),  # spreadsheet .0, no loss
        ("(212) 555-0123", "US", "+12125550123", "US", "America/New_York"),
        ("2082011234", None, "+12082011234", "US", "America/Denver"),  # zone decided by the NXX
        ("2085551234", None, "+12085551234", "US", "America/Boise"),  # two zones: the first
        ("800 555 1234", None, "+18005551234", "US", None),  # toll-free: no zone (see module doc)
        # Canada and the Caribbean share +1: the region comes from the number
        ("(416) 555-0199", None, "+14165550199", "CA", "America/Toronto"),
        ("613-555-0123", "Canada", "+16135550123", "CA", "America/Toronto"),
        ("+1 876 555 1234", None, "+18765551234", "JM", None),
        ("787 555 1234", None, "+17875551234", "PR", "America/Puerto_Rico"),
        # UK
        ("+44 20 7946 0958", None, "+442079460958", "GB", "Europe/London"),  # Ofcom drama range: valid
        ("+44 20 7183 8750", None, "+442071838750", "GB", "Europe/London"),
        ("020 7183 8750", "GB", "+442071838750", "GB", "Europe/London"),
        ("020 7183 8750", "uk", "+442071838750", "GB", "Europe/London"),
        ("020 7183 8750", "United Kingdom", "+442071838750", "GB", "Europe/London"),
        ("020 7183 8750", "england", "+442071838750", "GB", "Europe/London"),
        ("+44 (0)20 7183 8750", None, "+442071838750", "GB", "Europe/London"),
        ("07400 123456", "GB", "+447400123456", "GB", None),  # mobile: country-wide zones -> None
        # International prefixes: 00 and 011 from anywhere, the region's own IDD too
        ("00 44 20 7183 8750", None, "+442071838750", "GB", "Europe/London"),
        ("011 44 20 7183 8750", None, "+442071838750", "GB", "Europe/London"),
        ("00 44 20 7183 8750", "GB", "+442071838750", "GB", "Europe/London"),
        ("011 44 20 7183 8750", "GB", "+442071838750", "GB", "Europe/London"),
        ("011 44 20 7183 8750", "AU", "+442071838750", "GB", "Europe/London"),
        ("0011 44 20 7183 8750", "AU", "+442071838750", "GB", "Europe/London"),  # Australia's IDD
        ("001 951 876 1336", "GB", "+19518761336", "US", "America/Los_Angeles"),
        ("0114 496 0000", "GB", "+441144960000", "GB", "Europe/London"),  # Sheffield, not an IDD
        # Australia
        ("+61 2 9374 4000", None, "+61293744000", "AU", "Australia/Sydney"),
        ("(02) 9374 4000", "AU", "+61293744000", "AU", "Australia/Sydney"),
        ("0412 345 678", "australia", "+61412345678", "AU", None),
        ("+61 412 345 678", None, "+61412345678", "AU", None),
        # A +1 number is a +1 number whatever the row's country says
        ("+1 951 876 1336", "GB", "+19518761336", "US", "America/Los_Angeles"),
    ],
)
def test_accepts(raw: str, country: str | None, e164: str, region: str, time_zone: str | None) -> None:
    for normalizer in (FAST, SLOW):
        result = normalizer.normalize(raw, country)
        assert result == PhoneResult(e164, region, time_zone, None, None, None, ()), normalizer.fast_path


@pytest.mark.parametrize(
    ("raw", "extension"),
    [
        ("951-876-1336 x123", "123"),
        ("951-876-1336x123", "123"),
        ("951-876-1336 X 123", "123"),
        ("951-876-1336 ext 12", "12"),
        ("951-876-1336 ext. 12", "12"),
        ("951-876-1336 Ext: 12", "12"),
        ("951-876-1336, ext 12", "12"),
        ("(951) 876-1336 extension 12", "12"),
        ("951 876 1336 #12", "12"),
        ("951 876 1336#12", "12"),
        ("+1 951 876 1336 ;ext=4567", "4567"),
    ],
)
def test_extension_is_split_off(raw: str, extension: str) -> None:
    for normalizer in (FAST, SLOW):
        result = normalizer.normalize(raw)
        assert result == PhoneResult(
            "+19518761336", "US", "America/Los_Angeles", extension, None, None, (RowWarning.PHONE_EXTENSION,)
        )


def test_unknown_country_falls_back_to_the_default_region_with_a_warning() -> None:
    result = FAST.normalize("9518761336", "Narnia")
    assert result.e164 == "+19518761336"
    assert result.warnings == (RowWarning.UNKNOWN_COUNTRY,)
    gb = PhoneNormalizer(default_region="GB")
    result = gb.normalize("020 7183 8750", "Atlantis")
    assert (result.e164, result.warnings) == ("+442071838750", (RowWarning.UNKNOWN_COUNTRY,))
    # every warning, in order
    result = PhoneNormalizer(validation="possible").normalize("555 123 4567 x9", "Narnia")
    assert result.warnings == (
        RowWarning.PHONE_EXTENSION,
        RowWarning.PHONE_POSSIBLE_ONLY,
        RowWarning.UNKNOWN_COUNTRY,
    )


@pytest.mark.parametrize("country", [None, "", "  ", "N/A", "NA", "null", "none", "-", "unknown"])
def test_blank_country_is_no_warning(country: str | None) -> None:
    assert FAST.normalize("9518761336", country).warnings == ()


def test_default_region() -> None:
    gb = PhoneNormalizer("GB")
    assert gb.normalize("020 7183 8750").e164 == "+442071838750"
    assert gb.normalize("9518761336").reason == Reason.INVALID_PHONE  # a GB reading of US digits
    assert gb.normalize("+1 951 876 1336").e164 == "+19518761336"
    assert gb.normalize("9518761336", "US").e164 == "+19518761336"
    au = PhoneNormalizer("au")
    assert au.normalize("0412 345 678").e164 == "+61412345678"
    with pytest.raises(ValueError):
        PhoneNormalizer("XX")
    with pytest.raises(ValueError):
        PhoneNormalizer("US", "maybe")  # type: ignore[arg-type]


def test_possible_validation_accepts_possible_numbers_with_a_warning() -> None:
    possible = PhoneNormalizer(validation="possible")
    result = possible.normalize("+1 555 123 4567")
    assert result == PhoneResult(
        "+15551234567", "US", None, None, None, None, (RowWarning.PHONE_POSSIBLE_ONLY,)
    )
    # a valid number carries no warning
    assert possible.normalize("9518761336").warnings == ()
    # wrong lengths are still rejected
    assert possible.normalize("555 123 456").reason == Reason.INVALID_PHONE
    assert possible.normalize("310-1234").reason == Reason.INVALID_PHONE
    # and the same in "valid" mode is a rejection
    assert FAST.normalize("+1 555 123 4567").reason == Reason.INVALID_PHONE


# --------------------------------------------------------------------------------------------------
# Rejected values
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [None, "", "   ", "\t", "NULL", "null", "N/A", "n/a", "NA", "none", "NONE", "-", "()", "--"]
)
def test_missing(raw: str | None) -> None:
    for normalizer in (FAST, SLOW):
        result = normalizer.normalize(raw)
        assert result.reason == Reason.MISSING_PHONE
        check_shape(result)


@pytest.mark.parametrize(
    ("raw", "in_message"),
    [
        ("+1 555 123 4567", "+1 555 123 4567 is not a valid US number."),
        ("555-123-4567", "is not a valid US number"),
        ("(123) 456-7890", "is not a valid US number"),
        ("310-1234", "North American numbers have 10 digits"),  # a valid Canadian UAN to phonenumbers
        ("876-5432", "North American numbers have 10 digits"),
        ("951876133", "too few digits"),
        ("95187613366", "too many digits"),
        ("195187613366", "too many digits"),
        ("1-800-FLOWERS", "contains letters"),  # phonenumbers would convert it
        ("1-800-356-9377 call me", "contains letters"),
        ("951-876-1336 x", "contains letters"),
        ("ext 123", "contains letters"),
        ("phone: 9518761336", "contains letters"),
        ("9518761336 (mobile)", "contains letters"),
        ("٩٥١٨٧٦١٣٣٦", "non-ASCII digits"),  # Arabic-Indic
        ("۹۵۱۸۷۶۱۳۳۶", "non-ASCII digits"),  # Extended Arabic-Indic
        ("９５１８７６１３３６", "non-ASCII digits"),  # full-width
        ("1+9518761336", "+ in the wrong place"),
        ("++19518761336", "+ in the wrong place"),
        ("951_876_1336", "not allowed"),
        ("951*876*1336", "not allowed"),
        ("+", "is not a phone number"),
        ("+0 951 876 1336", "country calling code"),
        ("+999 123 456 789", "country calling code"),
        ("1" * 101, "too long"),
        ("00", "phone number"),
        ("0", "phone number"),
        ("07400 123456", "too many digits for a US number"),  # UK mobile read as US
        (
            "+49 20100000000000",
            "more digits than an international phone number can have",
        ),  # valid to phonenumbers
    ],
)
def test_invalid(raw: str, in_message: str) -> None:
    for normalizer in (FAST, SLOW):
        result = normalizer.normalize(raw)
        assert result.reason == Reason.INVALID_PHONE, result
        assert result.message is not None and in_message in result.message, result.message
        check_shape(result)


@pytest.mark.parametrize(
    "raw", ["1.95188E+10", "1.95E+10", "9.51876E9", "1,95188E+10", "1.95188e+10", "19518761336E0"]
)
def test_scientific_notation_is_rejected_with_a_fix(raw: str) -> None:
    for normalizer in (FAST, SLOW):
        result = normalizer.normalize(raw)
        assert result.reason == Reason.INVALID_PHONE
        assert result.message is not None
        assert SCIENTIFIC_HINT in result.message
        assert "spreadsheet" in result.message and "dropped digits" in result.message
        assert "Format the phone column as Text" in result.message


def test_scientific_notation_is_not_coerced_through_float() -> None:
    # float("1.95188E+10") is 19518800000, which phonenumbers calls a valid US number
    n = phonenumbers.parse(str(int(float("1.95188E+10"))), "US")
    assert phonenumbers.is_valid_number(n)
    assert FAST.normalize("1.95188E+10").e164 is None


def test_message_shows_the_value_safely() -> None:
    result = FAST.normalize("95\x0018761336")
    assert result.message is not None and "\x00" not in result.message
    long_value = "9518761336" + "-" * 80 + "a"
    result = FAST.normalize(long_value)
    assert result.message is not None and len(result.message) < 200


# --------------------------------------------------------------------------------------------------
# Countries
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "region"),
    [
        ("us", "US"),
        ("US", "US"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("u.s.", "US"),
        ("United States", "US"),
        ("  united   states of america ", "US"),
        ("uk", "GB"),
        ("U.K.", "GB"),
        ("GB", "GB"),
        ("GBR", "GB"),
        ("United Kingdom", "GB"),
        ("Great Britain", "GB"),
        ("england", "GB"),
        ("Scotland", "GB"),
        ("au", "AU"),
        ("AUS", "AU"),
        ("Australia", "AU"),
        ("ca", "CA"),
        ("CAN", "CA"),
        ("Canada", "CA"),
        ("nz", "NZ"),
        ("New Zealand", "NZ"),
        ("ie", "IE"),
        ("Ireland", "IE"),
        ("DE", "DE"),
        ("Germany", "DE"),
        ("India", "IN"),
        ("Philippines", "PH"),
        ("Mexico", "MX"),
        ("Puerto Rico", "PR"),
        ("jm", "JM"),
        ("Holland", "NL"),
        ("South Africa", "ZA"),
        ("UAE", "AE"),
        ("gg", "GG"),  # any alpha-2 code phonenumbers knows
        ("Fr", "FR"),
    ],
)
def test_region_for_country(value: str, region: str) -> None:
    assert region_for_country(value) == region


@pytest.mark.parametrize(
    "value", [None, "", "  ", "N/A", "NA", "null", "Narnia", "XX", "ZZ", "U", "USAA", "Amerika"]
)
def test_region_for_country_unknown(value: str | None) -> None:
    assert region_for_country(value) is None


def test_every_supported_region_code_is_understood() -> None:
    for code in phonenumbers.SUPPORTED_REGIONS:
        if code == "NA":  # Namibia: "NA" in a lead file means "not available"
            continue
        assert region_for_country(code.lower()) == code
    assert region_for_country("Namibia") is None  # not one of the common names


def test_names_map_to_supported_regions() -> None:
    for region in phone_module._COUNTRY_NAMES.values():
        assert region in phonenumbers.SUPPORTED_REGIONS


# --------------------------------------------------------------------------------------------------
# Time zones
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "zones_have_several", "expected"),
    [
        ("+12082011234", False, "America/Denver"),
        ("+12085551234", True, "America/Boise"),  # geographic with several zones: the first
        ("+18005551234", True, None),  # toll-free: the country-wide list (America/Adak first) -> None
        ("+18765551234", True, None),  # Jamaican mobile: non-geographic in phonenumbers
        ("+61412345678", True, None),  # Australian mobile: all Australian zones -> None
        ("+442071838750", False, "Europe/London"),
    ],
)
def test_time_zone_rule(raw: str, zones_have_several: bool, expected: str | None) -> None:
    zones = time_zones_for_number(phonenumbers.parse(raw))
    assert (len(zones) > 1) is zones_have_several
    assert FAST.normalize(raw).time_zone == expected
    assert SLOW.normalize(raw).time_zone == expected


# --------------------------------------------------------------------------------------------------
# Never raises; fast path == slow path == phonenumbers
# --------------------------------------------------------------------------------------------------


def expected_from_phonenumbers(number: phonenumbers.PhoneNumber) -> tuple[str | None, str | None, str | None]:
    """(e164, region, time_zone) straight from phonenumbers' public functions, with our zone rule."""
    if not phonenumbers.is_valid_number(number):
        return None, None, None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not E164.match(e164):  # valid to phonenumbers but over E.164's 15 digits (some German numbers)
        return None, None, None
    region = phonenumbers.region_code_for_number(number)
    zones = [z for z in time_zones_for_number(number) if z != "Etc/Unknown"]
    geographic = phonenumbers.is_number_type_geographical(
        phonenumbers.number_type(number), number.country_code or 0
    )
    zone = zones[0] if zones and (geographic or len(zones) == 1) else None
    return e164, None if region in (None, "001", "ZZ") else region, zone


def assert_same(raw: str, country: str | None = None, default_region: str = "US") -> PhoneResult:
    if default_region == "US":
        fast, slow = FAST, SLOW
    else:
        fast, slow = PhoneNormalizer(default_region), PhoneNormalizer(default_region, fast_path=False)
    got_fast = fast.normalize(raw, country)
    got_slow = slow.normalize(raw, country)
    assert got_fast == got_slow, (raw, country, default_region)
    check_shape(got_fast)
    return got_fast


PUNCTUATION = " ()-.+/#x,;:_*"


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40), st.sampled_from([None, "", "US", "GB", "AU", "CA", "JM", "Narnia", "N/A"]))
def test_never_raises_arbitrary_text(raw: str, country: str | None) -> None:
    assert_same(raw, country)


@settings(max_examples=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet="0123456789" * 4 + PUNCTUATION + "eExtEXT", min_size=1, max_size=30),
    st.sampled_from([None, "US", "GB", "AU", "CA", "DO", "Narnia"]),
)
def test_never_raises_phone_like_text(raw: str, country: str | None) -> None:
    assert_same(raw, country)


NANPA_FORMATS = (
    "{a}{b}{c}",
    "({a}) {b}-{c}",
    "{a}-{b}-{c}",
    "{a}.{b}.{c}",
    "+1 {a} {b} {c}",
    "1{a}{b}{c}",
    "+1{a}{b}{c}",
    "1-{a}-{b}-{c}",
    "1 ({a}) {b}-{c}",
    " +1 ({a}) {b} {c} ",
)


@settings(max_examples=1000)
@given(
    st.integers(0, 999),
    st.integers(0, 999),
    st.integers(0, 9999),
    st.sampled_from(NANPA_FORMATS),
    st.sampled_from(["US", "CA", "JM", "AG", "GB"]),
    st.sampled_from(["", " x12", ".0"]),
)
def test_fast_path_equals_slow_path_nanpa(a: int, b: int, c: int, fmt: str, region: str, tail: str) -> None:
    raw = fmt.format(a=f"{a:03d}", b=f"{b:03d}", c=f"{c:04d}") + tail
    assert_same(raw, None, region)


@settings(max_examples=1500)
@given(
    st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)),
    st.text(alphabet="0123456789", min_size=1, max_size=14),
)
def test_fast_path_equals_phonenumbers_international(cc: int, digits: str) -> None:
    raw = f"+{cc}{digits}"
    result = assert_same(raw)
    try:
        number = phonenumbers.parse(raw)
    except phonenumbers.NumberParseException:
        assert result.e164 is None
        return
    nsn = phonenumbers.national_significant_number(number)
    if number.country_code == 1 and len(nsn) < 10:
        assert result.e164 is None
        return
    assert (result.e164, result.region, result.time_zone) == expected_from_phonenumbers(number)


def example_numbers() -> list[tuple[str, str]]:
    """Example numbers of every type of every region, and neighbours of each (last digits changed)."""
    rng = random.Random(7)
    out: list[tuple[str, str]] = []
    types = [t for t in phonenumbers.PhoneNumberType.values() if t != phonenumbers.PhoneNumberType.UNKNOWN]
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for ntype in types:
            number = phonenumbers.example_number_for_type(region, ntype)
            if number is None:
                continue
            nsn = phonenumbers.national_significant_number(number)
            cc = number.country_code
            out.append((f"+{cc}{nsn}", region))
            for _ in range(3):
                cut = rng.randint(1, min(4, len(nsn)))
                changed = nsn[:-cut] + "".join(rng.choice("0123456789") for _ in range(cut))
                out.append((f"+{cc}{changed}", region))
            out.append((f"+{cc}{nsn[:-1]}", region))  # one digit short
            out.append((f"+{cc}{nsn}5", region))  # one digit long
            out.append((nsn, region))  # national significant number, read in its region
    for cc in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS:
        number = phonenumbers.example_number_for_non_geo_entity(cc)
        if number is not None:
            out.append((f"+{cc}{phonenumbers.national_significant_number(number)}", "US"))
    return out


def test_fast_path_equals_phonenumbers_for_every_region_and_type() -> None:
    cases = example_numbers()
    assert len(cases) > 5000
    accepted = 0
    for raw, region in cases:
        result = assert_same(raw, region)
        if raw.startswith("+"):
            number = phonenumbers.parse(raw)
            nsn = phonenumbers.national_significant_number(number)
            if not (number.country_code == 1 and len(nsn) < 10):
                assert (result.e164, result.region, result.time_zone) == expected_from_phonenumbers(number), (
                    raw
                )
        accepted += result.e164 is not None
    assert accepted > 2000


def nanpa_sample(nxx_per_npa: int, seed: int = 20240601) -> list[tuple[str, str | None]]:
    """Every NPA 200-999 x `nxx_per_npa` NXX (specials, 0xx/1xx, random) x 1 random line x 5 formats."""
    rng = random.Random(seed)
    specials = [200, 211, 311, 411, 555, 611, 911, 958, 959, 976, 999]
    countries: list[str | None] = [None, None, None, "US", "USA", "CA", "Canada", "Narnia", "JM"]
    out: list[tuple[str, str | None]] = []
    for npa in range(200, 1000):
        nxxs = rng.sample(specials, min(len(specials), nxx_per_npa // 4)) + [rng.randint(0, 199)]
        nxxs += rng.sample(range(200, 1000), nxx_per_npa - len(nxxs))
        for nxx in nxxs:
            line = f"{rng.randint(0, 9999):04d}"
            for fmt in rng.sample(NANPA_FORMATS, 5):
                out.append((fmt.format(a=npa, b=f"{nxx:03d}", c=line), rng.choice(countries)))
    return out


def compare_fast_and_slow(sample: list[tuple[str, str | None]]) -> int:
    fast, slow = PhoneNormalizer(), PhoneNormalizer(fast_path=False)
    valid = 0
    for raw, country in sample:
        got = fast.normalize(raw, country)
        want = slow.normalize(raw, country)
        if got != want:  # pragma: no cover - the failure message
            pytest.fail(f"{raw!r} {country!r}: fast {got} != slow {want}")
        valid += got.e164 is not None
    return valid


def test_fast_path_equals_slow_path_on_every_npa() -> None:
    """40k numbers: every NPA 200-999 x 10 NXX x 5 formats; fast == slow, field by field (~5 s)."""
    sample = nanpa_sample(nxx_per_npa=10)
    assert len(sample) == 40_000
    valid = compare_fast_and_slow(sample)
    assert 10_000 < valid < len(sample) - 5_000  # both outcomes at scale


@pytest.mark.slow
def test_fast_path_equals_slow_path_on_200k_nanpa_numbers() -> None:
    """200k numbers: every NPA 200-999 x 50 NXX x 5 formats (~25 s; `pytest -m slow`)."""
    sample = nanpa_sample(nxx_per_npa=50, seed=7)
    assert len(sample) >= 200_000
    valid = compare_fast_and_slow(sample)
    assert 50_000 < valid < len(sample) - 20_000


def test_slow_path_is_phonenumbers() -> None:
    """The reference itself: the slow path agrees with phonenumbers' public functions."""
    rng = random.Random(3)
    for _ in range(5000):
        raw = f"+1{rng.randint(200, 999)}{rng.randint(0, 999):03d}{rng.randint(0, 9999):04d}"
        result = SLOW.normalize(raw)
        assert (result.e164, result.region, result.time_zone) == expected_from_phonenumbers(
            phonenumbers.parse(raw)
        )


# --------------------------------------------------------------------------------------------------
# Caches
# --------------------------------------------------------------------------------------------------


def test_result_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phone_module, "_CACHE_LIMIT", 50)
    normalizer = PhoneNormalizer()
    for i in range(500):
        normalizer.normalize(f"+44 20 7183 {i:04d}")
        assert len(normalizer._cache) <= 50
    first = normalizer.normalize("+44 20 7183 8750")
    assert normalizer.normalize("+44 20 7183 8750") is first  # repeats come from the cache


def test_country_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(phone_module, "_COUNTRY_CACHE_LIMIT", 10)
    normalizer = PhoneNormalizer()
    for i in range(100):
        normalizer.normalize("9518761336", f"country {i}")
        assert len(normalizer._countries) <= 10
