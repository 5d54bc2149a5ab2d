"""Scrub decisions and the import options' validation (pure rules)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from leadimport.messages import (
    SCHEMA_VERSION,
    ChunkMessage,
    ReaderRejection,
    ReaderWarning,
    UnreadableMessageError,
)
from leadimport.options import ImportOptions, ImportRequest, ScrubOptions
from leadimport.rules.scrub import PhoneFacts, blacklist_reason, scrub_reason

pytestmark = pytest.mark.unit

ALL = ScrubOptions(scope="company", existing=True, dialed=True, connected=True, converted=True, opted_out=True,
                   blocked=True, dispositions=["not_interested"])


@pytest.mark.parametrize(("facts", "scrub", "expected"), [
    (PhoneFacts("+1", existing=True), ALL, "scrubbed_existing"),
    (PhoneFacts("+1", existing=True, dialed=True), ScrubOptions(scope="company", dialed=True), "scrubbed_dialed"),
    (PhoneFacts("+1", existing=True, connected=True), ScrubOptions(scope="offer", connected=True), "scrubbed_connected"),
    (PhoneFacts("+1", existing=True, converted=True), ScrubOptions(scope="offer", converted=True), "scrubbed_converted"),
    (PhoneFacts("+1", existing=True, dispositions=frozenset({"not_interested"})),
     ScrubOptions(scope="company", dispositions=["not_interested", "sale"]), "scrubbed_disposition"),
    (PhoneFacts("+1", opted_out=True), ScrubOptions(opted_out=True), "scrubbed_opted_out"),
    (PhoneFacts("+1", blocked=True), ScrubOptions(blocked=True), "scrubbed_blocked"),
    # each rule catches only what it should
    (PhoneFacts("+1", existing=True, dialed=True), ScrubOptions(scope="company", connected=True), None),
    (PhoneFacts("+1", existing=True, dispositions=frozenset({"sale"})),
     ScrubOptions(scope="company", dispositions=["not_interested"]), None),
    (PhoneFacts("+1", opted_out=True), ScrubOptions(scope="company", existing=True), None),
    (PhoneFacts("+1"), ALL, None),
])
def test_scrub_rules(facts: PhoneFacts, scrub: ScrubOptions, expected: str | None) -> None:
    hit = scrub_reason(facts, scrub)
    assert (hit[0] if hit else None) == expected


def test_blacklist_is_checked_regardless_of_scrub_options() -> None:
    assert blacklist_reason(PhoneFacts("+1", blacklisted=True)) is not None
    assert blacklist_reason(PhoneFacts("+1")) is None


def test_unknown_option_keys_are_rejected() -> None:
    with pytest.raises(ValidationError, match="scrubb"):
        ImportOptions.model_validate({"scrubb": {}})


def test_opt_out_and_opt_in_together_are_rejected() -> None:
    with pytest.raises(ValidationError, match="cannot both"):
        ImportOptions.model_validate({"lead_management": {"opt": ["opt_out", "opt_in"]}})


def test_scrub_criteria_need_a_scope() -> None:
    with pytest.raises(ValidationError, match="scope"):
        ImportOptions.model_validate({"scrub": {"dialed": True}})


def test_countries_are_normalized_and_unknown_ones_rejected() -> None:
    assert ImportOptions.model_validate({"default_country": "uk"}).default_country == "GB"
    with pytest.raises(ValidationError, match="default_country"):
        ImportOptions.model_validate({"default_country": "Atlantis"})


def test_request_needs_an_owner() -> None:
    with pytest.raises(ValidationError):
        ImportRequest.model_validate({"name": "x"})


def test_chunk_message_round_trips_and_rejects_unknown_versions() -> None:
    msg = ChunkMessage("i", 3, 1001, ["Phone", "x"], ["caller_id", None], rows=[(1001, ["1", "é\x00"])],
                       rejected=[ReaderRejection(1002, "malformed_row", "m", ["a"])])
    assert ChunkMessage.from_json(msg.to_json()) == msg
    assert msg.row_count == 2
    with pytest.raises(UnreadableMessageError, match="version"):
        ChunkMessage.from_json(msg.to_json().replace(f'"v":{SCHEMA_VERSION}', '"v":99'))
    with pytest.raises(UnreadableMessageError):
        ChunkMessage.from_json("not json")


def test_chunk_message_carries_what_the_reader_fixed_only_when_there_is_something() -> None:
    plain = ChunkMessage("i", 0, 1, ["caller_id", "notes"], ["caller_id", "notes"], rows=[(1, ["1", "x"])])
    assert '"warned"' not in plain.to_json()  # a file with nothing fixed: messages as before
    assert ChunkMessage.from_json(plain.to_json()).warnings_of(1) == []
    warned = ChunkMessage("i", 0, 1, ["caller_id", "notes"], ["caller_id", "notes"], rows=[(1, ["1", ""]), (2, ["2", "y"])],
                          warned=[ReaderWarning(1, "value_too_long_dropped", "notes", "left out"),
                                  ReaderWarning(1, "nul_removed", "caller_id", "1 NUL")])
    back = ChunkMessage.from_json(warned.to_json())
    assert back == warned
    assert [w.code for w in back.warnings_of(1)] == ["value_too_long_dropped", "nul_removed"]
    assert back.warnings_of(2) == []


def test_the_reader_s_warnings_are_kept_with_the_rule_warnings_unless_the_column_is_skipped() -> None:
    from leadimport.rules.pipeline import LeadCandidate, RowRules

    rules = RowRules(ImportOptions(), ["Phone", "Mail", "Notes", "Internal"], ["caller_id", "email", "notes", None])
    fixed = [ReaderWarning(1, "nul_removed", "Notes", "1 NUL character (byte 0) removed from the value."),
             ReaderWarning(1, "value_too_long_dropped", "Internal", "left out")]  # a skipped column: no warning
    lead = rules.apply(1, ["+16026100001", "not-an-email", "a", ""], fixed)
    assert isinstance(lead, LeadCandidate)
    assert lead.warnings == ["nul_removed", "email_dropped"]
    assert [(n.code, n.column) for n in lead.warning_notes()] == [("nul_removed", "Notes"), ("email_dropped", "Mail")]
    lead.warnings.append("schedule_stopped")  # the chunk plan's warnings are about the row: no column
    assert lead.warning_notes()[-1].column == "" and "stopped" in lead.warning_notes()[-1].message


def test_a_traffic_source_and_buyers_named_by_a_column_or_by_additional_data_are_looked_up() -> None:
    from leadimport.rules.pipeline import CompanyRefs, LeadCandidate, RowRules

    refs = CompanyRefs(traffic_sources=CompanyRefs.keyed([(7, "Facebook Ads")]),
                       buyers=CompanyRefs.keyed([(3, "Acme"), (4, "Globex")]))
    by_data = RowRules(ImportOptions.model_validate({"additional_data": {"traffic_source": "facebook ads",
                                                                         "buyers": "acme"}}),
                       ["caller_id"], ["caller_id"], refs)
    lead = by_data.apply(1, ["+16026100001"])
    assert isinstance(lead, LeadCandidate)
    assert (lead.traffic_source_id, lead.buyer_ids) == (7, (3,))
    by_column = RowRules(ImportOptions(), ["caller_id", "Source", "Buyer"], ["caller_id", "traffic_source", "buyer"],
                         refs)
    lead = by_column.apply(2, ["+16026100002", "Facebook Ads", "Globex; acme"])
    assert isinstance(lead, LeadCandidate)
    assert (lead.traffic_source_id, lead.buyer_ids) == (7, (4, 3))
    plain = RowRules(ImportOptions(), ["caller_id", "notes"], ["caller_id", "notes"], refs)
    lead = plain.apply(3, ["+16026100003", "facebook ads"])  # a column of another name is only a token
    assert isinstance(lead, LeadCandidate)
    assert (lead.traffic_source_id, lead.buyer_ids) == (None, ())
