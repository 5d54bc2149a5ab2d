"""leadimport.csv_io.chunker: row-count and JSON-size bounded chunks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadimport.csv_io import CsvRow, chunk_rows, estimate_row_bytes, fit_rows
from leadimport.messages import ReaderRejection

pytestmark = pytest.mark.unit


def make_rows(values: list[list[str]]) -> list[CsvRow]:
    return [CsvRow(row_no=i + 1, values=v, end_offset=(i + 1) * 10) for i, v in enumerate(values)]


def json_size(row: CsvRow) -> int:
    """The row's values as the chunk message writes them (orjson: UTF-8, non-ASCII as it is, compact)."""
    return len(json.dumps(row.values, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"))


def test_row_count_limit() -> None:
    rows = make_rows([["1", "a"]] * 1201)
    chunks = list(chunk_rows(rows))
    assert [len(c) for c in chunks] == [500, 500, 201]
    assert [r for c in chunks for r in c] == rows


def test_byte_limit() -> None:
    rows = make_rows([["x" * 1000]] * 10)
    chunks = list(chunk_rows(rows, max_bytes=3100))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]


def test_single_oversized_row_is_its_own_chunk() -> None:
    rows = make_rows([["a"], ["x" * 5000], ["b"]])
    assert [len(c) for c in chunk_rows(rows, max_bytes=1000)] == [1, 1, 1]


def test_empty_input() -> None:
    assert list(chunk_rows([])) == []


def test_invalid_max_rows() -> None:
    with pytest.raises(ValueError):
        list(chunk_rows([], max_rows=0))


@pytest.mark.parametrize(
    "value",
    ['"' * 50, "\\" * 50, "\x01" * 50, "é" * 50, "😀" * 50, "a\nb\tc" * 10, "plain text"],
)
def test_estimate_is_at_least_the_json_size(value: str) -> None:
    """At least the size the chunk message gives the values (orjson: UTF-8, é as two bytes, not \\u00e9)."""
    import orjson

    values = [value, "x", ""]
    assert estimate_row_bytes(values) >= len(orjson.dumps(values))
    # a lone surrogate's message is written by json, compact (ChunkMessage.to_json)
    assert estimate_row_bytes(values) >= len(json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode())


def test_escaping_characters_make_smaller_chunks() -> None:
    plain = make_rows([["a" * 100]] * 20)
    quoted = make_rows([['"' * 100]] * 20)
    assert len(list(chunk_rows(plain, max_bytes=1300))) < len(list(chunk_rows(quoted, max_bytes=1300)))


def test_rejected_rows_count_their_message() -> None:
    row = CsvRow(1, ["a"], 10, "malformed_row", "m" * 500)
    assert [len(c) for c in chunk_rows([row, row, row], max_bytes=1200)] == [2, 1]


@settings(max_examples=150, deadline=None)
@given(
    values=st.lists(st.lists(st.text(max_size=40), min_size=1, max_size=4), max_size=60),
    max_rows=st.integers(min_value=1, max_value=50),
    max_bytes=st.integers(min_value=50, max_value=2000),
)
def test_chunks_concatenate_back_and_respect_limits(
    values: list[list[str]], max_rows: int, max_bytes: int
) -> None:
    rows = make_rows(values)
    chunks = list(chunk_rows(iter(rows), max_rows=max_rows, max_bytes=max_bytes))
    assert [r for c in chunks for r in c] == rows
    for chunk in chunks:
        assert 1 <= len(chunk) <= max_rows
        if len(chunk) > 1:
            assert sum(json_size(r) for r in chunk) <= max_bytes
            assert sum(estimate_row_bytes(r.values) for r in chunk) <= max_bytes


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.lists(st.text(st.sampled_from('ab"\\é\n\x01'), max_size=40), min_size=1, max_size=4),
                       min_size=1, max_size=300),
       max_rows=st.integers(1, 60), max_bytes=st.integers(50, 3000))
def test_every_chunk_but_the_last_is_full(values: list[list[str]], max_rows: int, max_bytes: int) -> None:
    """A chunk ends only where the next row would not fit (rows or bytes, by the exact estimate): never where a
    group of rows had to be split again (that made alternating full and tiny chunks)."""
    rows = make_rows(values)
    chunks = list(chunk_rows(rows, max_rows=max_rows, max_bytes=max_bytes))
    assert [r for c in chunks for r in c] == rows
    for chunk, following in zip(chunks, chunks[1:], strict=False):
        size = sum(estimate_row_bytes(r.values) for r in chunk)
        assert len(chunk) == max_rows or size + estimate_row_bytes(following[0].values) > max_bytes


IMPORT_ID = "8a8f7c17-fac2-486c-9350-184f8f92d865"


def _message_sizes(chunks: list[list[CsvRow]], names: list[str]) -> list[int]:
    from leadimport.messages import ChunkMessage

    return [len(ChunkMessage(IMPORT_ID, no, c[0].row_no, names, list(names), rows=[(r.row_no, r.values) for r in c])
                .to_json().encode()) for no, c in enumerate(chunks)]


def test_a_chunk_message_stays_within_the_sqs_limit_whatever_the_header() -> None:
    """500 column names of 100 characters (~50 KB, twice in each message): the rows get what is left of 256 KiB."""
    from leadimport.messages import MESSAGE_MAX_BYTES
    from leadimport.services.split_upload import SplitConfig, rows_budget

    names = [f"{i:03d}" + "n" * 97 for i in range(500)]
    budget = rows_budget(IMPORT_ID, names, list(names), SplitConfig().chunk_max_bytes)
    assert budget < SplitConfig().chunk_max_bytes
    chunks = list(chunk_rows(make_rows([["x" * 40] * 500] * 40), max_rows=2000, max_bytes=budget))
    assert len(chunks) > 1
    assert max(_message_sizes(chunks, names)) <= MESSAGE_MAX_BYTES


def test_two_thousand_realistic_rows_make_one_chunk() -> None:
    """A lead list's row (8 columns, ~70 characters, as the benchmarks' realistic file) is not cut by bytes before
    the 2,000 rows of a chunk: the estimate is near the message's real size (it once counted 6 bytes a value for 3
    and cut at ~1,560 rows)."""
    from leadimport.messages import MESSAGE_MAX_BYTES
    from leadimport.services.split_upload import SplitConfig, rows_budget

    names = ["caller_id", "email", "lead_priority", "country", "interest", "debt_amount", "remote_ip", "first_name"]
    row = ["+19518761336", "jrod@example.com", "3", "US", "debt relief", "12500", "203.0.113.77", "Jennifer"]
    config = SplitConfig()
    budget = rows_budget(IMPORT_ID, names, list(names), config.chunk_max_bytes)
    chunks = list(chunk_rows(make_rows([row] * 4000), max_rows=config.chunk_rows, max_bytes=budget))
    assert [len(c) for c in chunks] == [2000, 2000]
    sizes = _message_sizes(chunks, names)
    assert max(sizes) <= MESSAGE_MAX_BYTES
    estimate = sum(estimate_row_bytes(r.values) for r in chunks[0])
    assert estimate - 2000 * 10 <= sizes[0] <= estimate + 1000  # within 10 bytes a row (row numbers' digits)


def test_a_header_too_long_for_a_chunk_message_is_refused_with_a_sentence() -> None:
    """500 column names of 200 characters (~100 KB, twice in each message) leave too little for rows."""
    from leadimport.csv_io import FileRejectedError
    from leadimport.services.split_upload import SplitConfig, rows_budget

    names = [f"{i:03d}" + "n" * 197 for i in range(500)]
    with pytest.raises(FileRejectedError) as caught:
        rows_budget(IMPORT_ID, names, list(names), SplitConfig().chunk_max_bytes)
    assert "column names in the first line of the file take 97 KB" in caught.value.message


def _rows_with_offsets(values: list[list[str]]) -> list[CsvRow]:
    """Rows whose end offsets advance by each record's length in the file (as the reader's do)."""
    out, offset = [], 0
    for i, v in enumerate(values):
        offset += len(",".join(v)) + 1
        out.append(CsvRow(row_no=i + 1, values=v, end_offset=offset))
    return out


def test_a_row_too_big_for_a_chunk_message_is_rejected_and_the_others_kept() -> None:
    """30 values of 9,999 characters (each under the field limit) make a ~300 KB row: SQS would refuse its
    message. It becomes a value_too_long rejection that fits; the rows around it are untouched."""
    from leadimport.messages import MESSAGE_MAX_BYTES, ChunkMessage
    from leadimport.reasons import Reason

    rows = _rows_with_offsets([["+19518761336", "a"], ["+19518761337"] + ["x" * 9_999] * 30, ["+19518761338", "b"]])
    fitted = list(fit_rows(rows, 240_000, 0))
    assert fitted[0] is rows[0] and fitted[2] is rows[2]
    big = fitted[1]
    assert (big.row_no, big.reason) == (2, Reason.VALUE_TOO_LONG)
    assert big.message and "300,0" in big.message and "240,000" in big.message
    assert big.values[0] == "+19518761337" and all(v == "x" * len(big.values[1]) for v in big.values[1:])
    body = ChunkMessage(IMPORT_ID, 0, 1, ["caller_id"], ["caller_id"], rejected=[
        ReaderRejection(big.row_no, big.reason, big.message, big.values)]).to_json()
    assert len(body.encode()) <= MESSAGE_MAX_BYTES


@pytest.mark.parametrize("row_no", [1, 99_999, 2**31 - 1])
def test_the_estimate_covers_a_rows_number_and_brackets(row_no: int) -> None:
    """`[n,[...]],` in the message's rows: up to 10 digits of row number (a 2 GiB file has fewer rows)."""
    import orjson

    for values in (["a"], ["+19518761336", "", "x" * 30], [""] * 8):
        assert estimate_row_bytes(values) >= len(orjson.dumps([row_no, values])) + 1


def test_a_reader_rejection_too_big_for_a_message_keeps_its_reason_with_its_values_cut() -> None:
    """A malformed row (more fields than the header) of 40 values of 9,999 characters stays malformed_row."""
    values = ["+19518761337"] + ["y" * 9_999] * 40
    row = CsvRow(row_no=7, values=values, end_offset=len(",".join(values)) + 1, reason="malformed_row",
                 message="Row has 41 fields but the header has 2 columns.")
    (fitted,) = fit_rows([row], 240_000, 0)
    assert (fitted.row_no, fitted.reason, fitted.message) == (7, "malformed_row", row.message)
    assert len(fitted.values) == 41 and 0 < len(fitted.values[1]) < 9_999
    assert estimate_row_bytes(fitted.values) + len(fitted.message or "") < 120_000
