"""leadimport.csv_io.mapping: renames, skips, reserved names, caller_id checks."""

from __future__ import annotations

import pytest

from leadimport.csv_io import FileRejectedError, ResolvedColumns, apply, resolve_columns

pytestmark = pytest.mark.unit


def reject(columns: list[str], mapping: dict[str, str | None] | None) -> FileRejectedError:
    with pytest.raises(FileRejectedError) as info:
        resolve_columns(columns, mapping)
    return info.value


def test_no_mapping_keeps_names_and_lowercases_reserved_ones() -> None:
    resolved = resolve_columns(
        ["Caller_ID", "EMAIL", "First Name", "Country", "Remote_IP", "Expires_In"], None
    )
    assert resolved.names == ["caller_id", "email", "First Name", "country", "remote_ip", "expires_in"]
    assert resolved.source == ["Caller_ID", "EMAIL", "First Name", "Country", "Remote_IP", "Expires_In"]


def test_rename_and_skip() -> None:
    resolved = resolve_columns(
        ["Phone Number", "First Name", "Notes", "zip"],
        {"phone number": "caller_id", " first name ": "first_name", "NOTES": None},
    )
    assert resolved.names == ["caller_id", "first_name", None, "zip"]
    assert apply(resolved, ["+13105551234", "Bob", "x", "90210"]) == {
        "caller_id": "+13105551234",
        "first_name": "Bob",
        "zip": "90210",
    }


def test_targets_reserved_case_insensitive_other_names_keep_case() -> None:
    resolved = resolve_columns(
        ["tel", "mail", "Agent"], {"tel": "Caller_Id", "mail": " EMAIL ", "Agent": "AgentName"}
    )
    assert resolved.names == ["caller_id", "email", "AgentName"]


def test_empty_target_skips_the_column() -> None:
    resolved = resolve_columns(["caller_id", "junk"], {"junk": "  "})
    assert resolved.names == ["caller_id", None]
    assert apply(resolved, ["1", "2"]) == {"caller_id": "1"}


def test_unknown_mapping_column() -> None:
    error = reject(["caller_id", "name"], {"phone": "caller_id"})
    assert error.code == "unknown_mapping_column"
    assert '"phone"' in error.message and '"caller_id", "name"' in error.message


def test_duplicate_after_mapping() -> None:
    error = reject(["caller_id", "phone"], {"phone": "Caller_ID"})
    assert error.code == "duplicate_columns"
    assert '"caller_id"' in error.message and '"phone"' in error.message
    error = reject(["caller_id", "a", "b"], {"a": "Name", "b": "name"})
    assert error.code == "duplicate_columns"


def test_skipping_resolves_a_duplicate() -> None:
    resolved = resolve_columns(["caller_id", "phone"], {"caller_id": None, "phone": "caller_id"})
    assert resolved.names == [None, "caller_id"]


def test_same_column_mapped_twice_differently() -> None:
    error = reject(["caller_id", "Name"], {"name": "first", "NAME": "last"})
    assert error.code == "duplicate_columns"


@pytest.mark.parametrize(
    ("column", "expected"),
    [
        ("phone_number", "phone_number"),
        ("Phone Number", "Phone Number"),
        ("phone", "phone"),
        ("Telephone", "Telephone"),
        ("TEL", "TEL"),
        ("mobile", "mobile"),
        ("Cell", "Cell"),
        ("phone_1", "phone_1"),
        ("number", "number"),
        ("Caller ID", "Caller ID"),
        ("callerid", "callerid"),
        ("caller-id", "caller-id"),
    ],
)
def test_missing_caller_id_suggests_the_phone_column(column: str, expected: str) -> None:
    error = reject(["first_name", column, "email"], None)
    assert error.code == "missing_caller_id"
    assert error.message == (
        f'The file has no caller_id column. Your column "{expected}" looks like the phone: rename it to '
        f'caller_id, or map it in the import\'s column mapping ({{"{expected}": "caller_id"}}).'
    )


def test_missing_caller_id_prefers_the_best_phone_name() -> None:
    error = reject(["number", "Mobile", "phone_number"], None)
    assert '"phone_number"' in error.message.split("mapping")[0]


def test_missing_caller_id_without_suggestion() -> None:
    error = reject(["first_name", "email"], None)
    assert error.code == "missing_caller_id"
    assert "caller_id" in error.message and "phone" in error.message
    assert '"first_name", "email"' in error.message
    assert "looks like" not in error.message


def test_caller_id_mapped_away_is_missing() -> None:
    error = reject(["caller_id", "name"], {"caller_id": None})
    assert error.code == "missing_caller_id"
    error = reject(["phone", "name"], {"phone": None})
    assert 'Your column "phone"' in error.message and "map it in" in error.message


def test_resolved_columns_is_frozen_and_comparable() -> None:
    resolved = resolve_columns(["caller_id", "x"], {"x": None})
    assert resolved == ResolvedColumns(names=["caller_id", None], source=["caller_id", "x"])
    with pytest.raises(AttributeError):
        resolved.names = []  # type: ignore[misc]
