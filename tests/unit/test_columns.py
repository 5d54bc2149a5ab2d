"""Rules for the dedicated lead columns: email, expires_in, remote_ip, lead_priority."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadimport.reasons import RowWarning
from leadimport.rules.columns import (
    MAX_EXPIRES_IN_HOURS,
    clean_email,
    clean_expires_in,
    clean_lead_priority,
    clean_remote_ip,
    is_valid_email,
)

pytestmark = pytest.mark.unit

EMPTY_VALUES = [None, "", "   ", "\t", "NULL", "null", "N/A", "n/a", "NA", "none", "None", "-", " - "]


# --------------------------------------------------------------------------------------------------
# email
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("jane@example.com", "jane@example.com"),
        ("  jane@example.com  ", "jane@example.com"),
        ("Jane.Doe@Example.COM", "Jane.Doe@example.com"),  # the local part keeps its case
        ("JANE+leads@Mail.Example.Co.UK", "JANE+leads@mail.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("a@b.co", "a@b.co"),
        ("user_name-1@sub-domain.example.org", "user_name-1@sub-domain.example.org"),
        ("josé@exämple.de", "josé@exämple.de"),
        ("x" * 64 + "@example.com", "x" * 64 + "@example.com"),
    ],
)
def test_clean_email_accepts(raw: str, expected: str) -> None:
    assert clean_email(raw) == (expected, None)


@pytest.mark.parametrize(
    "raw",
    [
        "jane",
        "jane@",
        "@example.com",
        "jane@example",  # no dot in the domain
        "jane@@example.com",
        "jane@doe@example.com",
        "jane doe@example.com",
        "jane@exa mple.com",
        "jane@example..com",
        "jane@.example.com",
        "jane@example.com.",
        "jane@-example.com",
        "jane@example-.com",
        "jane@example.c",  # one-letter top-level label
        "jane@example.123",  # numeric top-level label
        "jane@[192.168.0.1]",
        ".jane@example.com",
        "jane.@example.com",
        "ja..ne@example.com",
        '"jane"@example.com',
        "jane,doe@example.com",
        "<jane@example.com>",
        "jane@example.com; bob@example.com",
        "jane\x00@example.com",
        "x" * 65 + "@example.com",  # local part too long
        "a@" + "b" * 64 + ".com",  # label too long
        "a@" + ".".join(["abcdefghi"] * 25) + ".com",  # over 254 characters
    ],
)
def test_clean_email_drops_malformed(raw: str) -> None:
    assert clean_email(raw) == (None, RowWarning.EMAIL_DROPPED)


@pytest.mark.parametrize("raw", EMPTY_VALUES)
def test_clean_email_empty(raw: str | None) -> None:
    assert clean_email(raw) == (None, None)


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("jane@example.com", True),
        ("Jane@EXAMPLE.com", True),
        ("jane@example", False),
        ("jane", False),
        ("", False),
        (" jane@example.com", False),  # is_valid_email does not trim
        ("a" * 250 + "@b.co", False),
        ("a" * 65 + "@b.co", False), ("a" * 32 + "." + "a" * 32 + "@b.co", False),
        ("a.b+c_d%e-f@sub-1.example.org", True),
        (".a@b.co", False), ("a.@b.co", False), ("a..b@b.co", False),
        ("a@b.00", False), ("a@b-.co", False), ("a@-b.co", False), ("a@b..co", False), ("a@b.c", False),
        ("a@" + "b" * 64 + ".co", False), ("a@" + "b" * 63 + ".co", True),
    ],
)
def test_is_valid_email(value: str, valid: bool) -> None:
    assert is_valid_email(value) is valid


def test_cleaned_email_is_valid() -> None:
    email, warning = clean_email("  Someone@Example.ORG ")
    assert warning is None and email is not None and is_valid_email(email)


# --------------------------------------------------------------------------------------------------
# expires_in (hours -> seconds)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        ("24", 86_400),
        ("48", 172_800),
        ("1.5", 5_400),
        (" 2 ", 7_200),
        ("0", 0),
        ("0.0", 0),
        ("0.5", 1_800),
        (".25", 900),
        ("1.", 3_600),
        ("0.0001", 0),  # 0.36 s
        ("0.00015", 1),  # 0.54 s rounds to 1
        ("1.0001388", 3_600),  # exact decimal arithmetic: 3600.49968 s
        ("007", 25_200),
        (str(MAX_EXPIRES_IN_HOURS), MAX_EXPIRES_IN_HOURS * 3600),
    ],
)
def test_clean_expires_in_accepts(raw: str, seconds: int) -> None:
    assert clean_expires_in(raw) == (seconds, None)


@pytest.mark.parametrize(
    "raw",
    [
        "-1",
        "-0.5",
        "+24",
        "abc",
        "24h",
        "1 day",
        "1,5",
        "1,000",
        "1e3",
        "1E+2",
        "nan",
        "NaN",
        "inf",
        "Infinity",
        "1_000",
        "٢٤",  # Arabic-Indic digits
        "２４",  # full-width digits
        ".",
        "1.2.3",
        "0x10",
        str(MAX_EXPIRES_IN_HOURS + 1),
        "87600.01",
        "9" * 30,
    ],
)
def test_clean_expires_in_drops(raw: str) -> None:
    assert clean_expires_in(raw) == (None, RowWarning.EXPIRES_IN_DROPPED)


@pytest.mark.parametrize("raw", EMPTY_VALUES)
def test_clean_expires_in_empty(raw: str | None) -> None:
    assert clean_expires_in(raw) == (None, None)


# --------------------------------------------------------------------------------------------------
# remote_ip
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("192.168.0.1", "192.168.0.1"),
        (" 8.8.8.8 ", "8.8.8.8"),
        ("0.0.0.0", "0.0.0.0"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("::1", "::1"),
        ("::ffff:1.2.3.4", "1.2.3.4"),  # IPv4-mapped: the IPv4 address
        ("FE80::ABCD", "fe80::abcd"),
    ],
)
def test_clean_remote_ip_accepts(raw: str, expected: str) -> None:
    assert clean_remote_ip(raw) == (expected, None)


@pytest.mark.parametrize(
    "raw",
    [
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",  # leading zeros are ambiguous (octal)
        "1.2.3.4/24",
        "example.com",
        "localhost",
        "1.2.3.4:80",
        "[::1]",
        "fe80::1%eth0",  # scoped
        "2001:db8:::1",
        "١.٢.٣.٤",
        "1" * 100,
    ],
)
def test_clean_remote_ip_drops(raw: str) -> None:
    assert clean_remote_ip(raw) == (None, RowWarning.REMOTE_IP_DROPPED)


@pytest.mark.parametrize("raw", EMPTY_VALUES)
def test_clean_remote_ip_empty(raw: str | None) -> None:
    assert clean_remote_ip(raw) == (None, None)


# --------------------------------------------------------------------------------------------------
# lead_priority
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0", 0),
        ("1", 1),
        (" 5 ", 5),
        ("05", 5),
        ("5.0", 5),
        ("1000", 1000),
        ("999", 999),
    ],
)
def test_clean_lead_priority_accepts(raw: str, expected: int) -> None:
    assert clean_lead_priority(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [None, "", " ", "1001", "10000", "-1", "+5", "5.5", "1e2", "high", "٥", "５", "1_0", "NULL", "nan"],
)
def test_clean_lead_priority_rejects(raw: str | None) -> None:
    assert clean_lead_priority(raw) is None


# --------------------------------------------------------------------------------------------------
# never raises
# --------------------------------------------------------------------------------------------------


@settings(max_examples=1000)
@given(st.one_of(st.none(), st.text(), st.text(alphabet="0123456789.@:-+ eE,abcdef%[]x")))
def test_no_rule_raises(raw: str | None) -> None:
    email, warning = clean_email(raw)
    assert (email is None) or (warning is None and is_valid_email(email))
    assert warning in (None, RowWarning.EMAIL_DROPPED)
    if raw is not None:
        assert isinstance(is_valid_email(raw), bool)

    seconds, warning = clean_expires_in(raw)
    assert seconds is None or (warning is None and 0 <= seconds <= MAX_EXPIRES_IN_HOURS * 3600)
    assert warning in (None, RowWarning.EXPIRES_IN_DROPPED)

    ip, warning = clean_remote_ip(raw)
    assert ip is None or warning is None
    assert warning in (None, RowWarning.REMOTE_IP_DROPPED)

    priority = clean_lead_priority(raw)
    assert priority is None or 0 <= priority <= 1000


@given(st.decimals(min_value=0, max_value=MAX_EXPIRES_IN_HOURS, places=4, allow_nan=False))
def test_expires_in_round_trips_plain_decimals(hours: object) -> None:
    text = format(hours, "f")
    seconds, warning = clean_expires_in(text)
    assert warning is None and seconds is not None
    assert abs(seconds - float(text) * 3600) <= 0.5 + 1e-6 * max(1.0, float(text) * 3600)


@given(st.ip_addresses())
def test_remote_ip_accepts_every_address(address: object) -> None:
    ip, warning = clean_remote_ip(str(address))
    assert warning is None and ip is not None


_EMAILISH = st.text(alphabet=st.sampled_from(list("aZ09._%+-@@..-xé \"<")), min_size=1, max_size=90)


@given(st.one_of(_EMAILISH, st.emails().map(str),
                 st.from_regex(r"[aZ0._%+ -]{0,6}@@?[a0-]{0,4}(\.[a0-]{0,4}){0,2}\.(aa|a0|00|aé|aaa)", fullmatch=True)))
@settings(max_examples=1000)
def test_the_common_email_shortcut_accepts_only_what_the_rules_accept(value: str) -> None:
    from leadimport.rules.columns import _EMAIL_COMMON, _is_valid_email_by_rules

    if _EMAIL_COMMON.fullmatch(value) is not None and value.index("@") <= 64:
        assert _is_valid_email_by_rules(value), value
    assert is_valid_email(value) == _is_valid_email_by_rules(value), value
