"""leadimport.csv_io.reader: header checks, row rules, exact byte offsets, round trips."""

from __future__ import annotations

import csv
import dataclasses
import io
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadimport.csv_io import (
    CsvHeader,
    CsvLimits,
    CsvRow,
    FileRejectedError,
    chunk_rows,
    iter_rows,
    no_data_rows_error,
    open_csv,
    read_header,
)
from leadimport.csv_io import reader as reader_module
from leadimport.reasons import Reason, RowWarning, WarningNote

pytestmark = pytest.mark.unit

BOM = b"\xef\xbb\xbf"


class NonSeekable(io.RawIOBase):
    """A raw stream like an S3 StreamingBody: not seekable, returns at most `chunk` bytes a read."""

    def __init__(self, data: bytes, chunk: int = 7) -> None:
        self._data = io.BytesIO(data)
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        piece = self._data.read(min(len(buffer), self._chunk))
        buffer[: len(piece)] = piece
        return len(piece)


def s3_like(data: bytes, chunk: int = 7) -> io.BufferedReader:
    return io.BufferedReader(NonSeekable(data, chunk))


def read_all(data: bytes, **kwargs: object) -> tuple[CsvHeader, list[CsvRow]]:
    header, rows = open_csv(io.BytesIO(data), **kwargs)  # type: ignore[arg-type]
    return header, list(rows)


def good(rows: list[CsvRow]) -> list[tuple[int, list[str]]]:
    return [(r.row_no, r.values) for r in rows if r.reason is None]


def summary(rows: list[CsvRow]) -> list[tuple[int, str | None]]:
    return [(r.row_no, r.reason) for r in rows]


def assert_resumable(
    data: bytes, header: CsvHeader, rows: list[CsvRow], *, every: int = 1, **kwargs: object
) -> None:
    """From data_offset and from every row's end_offset, reading again gives exactly the rest."""
    again = list(iter_rows(io.BytesIO(data[header.data_offset :]), header, **kwargs))  # type: ignore[arg-type]
    assert again == rows
    for index in range(0, len(rows), every):
        row = rows[index]
        rest = list(
            iter_rows(
                s3_like(data[row.end_offset :], chunk=4096),
                header,
                start_row=row.row_no + 1,
                start_offset=row.end_offset,
                **kwargs,  # type: ignore[arg-type]
            )
        )
        assert rest == rows[index + 1 :], f"resuming after row {row.row_no} at {row.end_offset}"


def rejected(data: bytes, **kwargs: object) -> FileRejectedError:
    with pytest.raises(FileRejectedError) as info:
        read_all(data, **kwargs)
    return info.value


# --------------------------------------------------------------------------------------------------
# whole-file rejections


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"", "empty_file", "empty"),
        (b"  \r\n\n\t\n", "empty_file", "empty"),
        (BOM + b"\r\n", "empty_file", "empty"),
        (b"\xff\xfe" + "caller_id,name\r\n".encode("utf-16-le"), "utf16", "CSV UTF-8"),
        (b"\xfe\xff" + "caller_id,name\r\n".encode("utf-16-be"), "utf16", "CSV UTF-8"),
        ("caller_id,name\r\n1,2\r\n".encode("utf-16-le"), "utf16", "CSV UTF-8"),  # no BOM
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 50, "not_text", "Excel workbook (.xlsx)"),
        (b"\x1f\x8b\x08\x00" + b"\x00" * 20, "not_text", "gzip"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "not_text", "PDF"),
        (b"caller_id,name\n1,\x00\x01\x00\x02\n", "not_text", "binary"),  # 2 NUL bytes of 25: binary
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (b"\x00\x00\x01\xf4\x08\x06" + bytes(range(40))) * 50, "not_text",
         "binary"),  # an image: NUL-rich
        (b"a,b,a\n1,2,3\n", "duplicate_columns", '"a"'),
        (b"Phone,name,PHONE , x,X\n1,2,3,4,5\n", "duplicate_columns", '"Phone", "x"'),
        (b"caller_id,,name\n1,2,3\n", "empty_header", "Column 2"),
        (b'caller_id,"name\n1,2\n', "malformed_header", "never closed"),
        (b"caller_id,name\r1,2\r3,4\r", "malformed_header", "carriage returns"),
    ],
)
def test_file_rejected(data: bytes, code: str, words: str) -> None:
    error = rejected(data)
    assert error.code == code
    assert words in error.message
    assert str(error) == error.message
    assert error.message.endswith(".")


def test_xlsx_message_says_how_to_save_as_csv() -> None:
    error = rejected(b"PK\x03\x04" + b"\x00" * 100)
    assert "zip archive" in error.message
    assert "CSV UTF-8" in error.message and "Save As" in error.message


def test_too_many_columns() -> None:
    header = ",".join(f"c{i}" for i in range(6)).encode() + b"\n"
    error = rejected(header + b"1,2,3,4,5,6\n", limits=CsvLimits(max_columns=5))
    assert error.code == "too_many_columns"
    assert "6 columns" in error.message and "5" in error.message
    header_ok, _ = read_all(header, limits=CsvLimits(max_columns=6))
    assert len(header_ok.columns) == 6


def test_default_column_limit() -> None:
    names = ",".join(f"c{i}" for i in range(501)).encode()
    assert rejected(names + b"\n").code == "too_many_columns"
    names = ",".join(f"c{i}" for i in range(500)).encode()
    assert len(read_all(names + b"\n")[0].columns) == 500


def test_no_data_rows_error_helper() -> None:
    error = no_data_rows_error()
    assert error.code == "no_data_rows" and "no rows" in error.message


# --------------------------------------------------------------------------------------------------
# header, encoding, delimiter


def test_bom_is_skipped_but_counted_in_offsets() -> None:
    data = BOM + b"caller_id,Name\r\n+13105551234,Bob\r\n"
    header, rows = read_all(data)
    assert header.columns == ["caller_id", "Name"]
    assert header.encoding == "utf-8"
    assert header.warnings == []
    assert header.data_offset == 3 + len(b"caller_id,Name\r\n")
    assert rows == [CsvRow(1, ["+13105551234", "Bob"], len(data))]
    assert_resumable(data, header, rows)


def test_header_names_trimmed_case_kept() -> None:
    header, _ = read_all(b'  Caller_ID , "First Name" ,\tEmail \n1,2,3\n')
    assert header.columns == ["Caller_ID", "First Name", "Email"]


def test_header_with_quoted_newline_and_blank_lines_before_it() -> None:
    data = b'\n\r\ncaller_id,"First\nName"\n1,Bob\n'
    header, rows = read_all(data)
    assert header.columns == ["caller_id", "First\nName"]
    assert header.data_offset == data.index(b"1,Bob")
    assert good(rows) == [(1, ["1", "Bob"])]


def test_cp1252_fallback_with_warning() -> None:
    data = "caller_id;Nom\n1;Jos\xe9\n2;Cr\xe8me \u20ac\n".encode("cp1252")
    header, rows = read_all(data)
    assert header.encoding == "cp1252"
    assert header.warnings == [RowWarning.ENCODING_FALLBACK]
    assert good(rows) == [(1, ["1", "José"]), (2, ["2", "Crème €"])]
    assert_resumable(data, header, rows)


def test_encoding_override() -> None:
    data = "caller_id,name\n1,Andr\xe9\n".encode()
    header, rows = read_all(data, encoding="cp1252")
    assert header.encoding == "cp1252" and header.warnings == []
    assert good(rows) == [(1, ["1", "AndrÃ©"])]
    header, rows = read_all(data, encoding="UTF8")
    assert header.encoding == "utf-8"
    assert good(rows) == [(1, ["1", "André"])]
    with pytest.raises(ValueError):
        read_all(data, encoding="utf-16")


def test_invalid_later_line_is_one_invalid_encoding_row() -> None:
    lines = [b"caller_id,name\n"] + [f"{i},Jos\u00e9 {i}\n".encode() for i in range(1, 200)]
    lines[150] = b"150,Jos\xe9 bad\n"  # a cp1252 byte in a UTF-8 file, after the sniffed part
    data = b"".join(lines)
    limits = CsvLimits(sniff_bytes=1024)
    header, rows = read_all(data, limits=limits)
    assert header.encoding == "utf-8" and header.warnings == []
    bad = [r for r in rows if r.reason is not None]
    assert [(r.row_no, r.reason) for r in bad] == [(150, Reason.INVALID_ENCODING)]
    assert bad[0].values == ["150", "Jos\ufffd bad"]
    assert bad[0].message and "UTF-8" in bad[0].message
    assert len(rows) == 199
    assert rows[150] == CsvRow(151, ["151", "José 151"], rows[150].end_offset)
    assert_resumable(data, header, rows, every=7, limits=limits)


def test_cp1252_undefined_byte_is_invalid_encoding() -> None:
    data = b"caller_id,name\n1,caf\xe9\n2,\x81x\n3,ok\n"
    header, rows = read_all(data)
    assert header.encoding == "cp1252"
    assert summary(rows) == [(1, None), (2, Reason.INVALID_ENCODING), (3, None)]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_detected(delimiter: str) -> None:
    d = delimiter
    text = f'caller_id{d}first{d}last\n1{d}"A{d}B"{d}"x, y; z|\tw"\n2{d}c{d}d\n'
    header, rows = read_all(text.encode())
    assert header.delimiter == d
    assert good(rows) == [(1, ["1", f"A{d}B", "x, y; z|\tw"]), (2, ["2", "c", "d"])]


def test_delimiter_most_frequent_in_header_wins() -> None:
    header, _ = read_all(b"caller_id;first,name;last;city\n1;a,b;c;d\n")
    assert header.delimiter == ";"


def test_delimiter_ignores_quoted_occurrences() -> None:
    header, _ = read_all(b'"a;b;c;d",caller_id\n"1;2;3;4",5\n')
    assert header.delimiter == ","
    assert header.columns == ["a;b;c;d", "caller_id"]


def test_delimiter_prefers_the_one_consistent_with_data_lines() -> None:
    # Header has one comma and one semicolon; only ";" splits every row into two fields.
    data = b"caller_id;name,suffix\n1;Smith\n2;Jones\n3;Brown\n"
    header, rows = read_all(data)
    assert header.delimiter == ";"
    assert good(rows) == [(1, ["1", "Smith"]), (2, ["2", "Jones"]), (3, ["3", "Brown"])]


def test_single_column_file_uses_comma() -> None:
    header, rows = read_all(b"caller_id\n+13105551234\n+13105551235\n")
    assert header.delimiter == "," and header.columns == ["caller_id"]
    assert good(rows) == [(1, ["+13105551234"]), (2, ["+13105551235"])]


def test_delimiter_override() -> None:
    data = b"caller_id,name;x\n1,a;b\n"
    header, rows = read_all(data, delimiter=";")
    assert header.delimiter == ";" and header.columns == ["caller_id,name", "x"]
    assert good(rows) == [(1, ["1,a", "b"])]
    with pytest.raises(ValueError):
        read_all(data, delimiter=";;")


def test_header_only_yields_nothing() -> None:
    for data in (b"caller_id,name", b"caller_id,name\r\n", b"caller_id,name\n\n\r\n,\n"):
        header, rows = read_all(data)
        assert header.columns == ["caller_id", "name"]
        assert rows == []


# --------------------------------------------------------------------------------------------------
# rows


def test_crlf_and_lf_give_the_same_rows() -> None:
    lf = b'caller_id,name\n1,Bob\n2,"Al\nice"\n3,Eve'
    crlf = lf.replace(b"\n", b"\r\n")
    for data in (lf, crlf):
        header, rows = read_all(data)
        assert rows[-1].end_offset == len(data)
        assert_resumable(data, header, rows)
    assert good(read_all(lf)[1]) == [(1, ["1", "Bob"]), (2, ["2", "Al\nice"]), (3, ["3", "Eve"])]
    assert good(read_all(crlf)[1]) == [(1, ["1", "Bob"]), (2, ["2", "Al\r\nice"]), (3, ["3", "Eve"])]


def test_quoting_rules() -> None:
    data = b'caller_id,name,note\n1,"Smith, John","He said ""hi"""\n2,"multi\nline\n\nvalue",x\n3,a,b\n'
    header, rows = read_all(data)
    assert good(rows) == [
        (1, ["1", "Smith, John", 'He said "hi"']),
        (2, ["2", "multi\nline\n\nvalue", "x"]),
        (3, ["3", "a", "b"]),
    ]
    assert rows[1].end_offset == data.index(b"3,a,b")
    assert_resumable(data, header, rows)


def test_blank_lines_skipped_and_not_numbered() -> None:
    data = b"caller_id,name\n\n1,a\n\r\n\n,\n2,b\n\n"
    header, rows = read_all(data)
    assert good(rows) == [(1, ["1", "a"]), (2, ["2", "b"])]
    assert rows[-1].end_offset == data.index(b"2,b") + 4
    assert_resumable(data, header, rows)


def test_field_count_rules() -> None:
    data = b"caller_id,a,b\n1,2,3\n1,2\n1,2,3,4\n1,2,3,,\n1,2,3,, \n4,5,6\n"
    header, rows = read_all(data)
    assert summary(rows) == [
        (1, None),
        (2, None),
        (3, Reason.MALFORMED_ROW),
        (4, None),
        (5, Reason.MALFORMED_ROW),
        (6, None),
    ]
    assert rows[2].message == "Row has 4 fields but the header has 3 columns."
    assert rows[1].values == ["1", "2", ""]  # a row short of its trailing empty fields is padded
    assert rows[3].values == ["1", "2", "3"]  # trailing empty extra fields dropped
    assert_resumable(data, header, rows)


def test_a_value_over_the_limit_is_left_out_with_a_warning_and_the_phone_column_rejects() -> None:
    limits = CsvLimits(max_field_chars=10)
    data = 'caller_id,name\n1,0123456789\n2,0123456789X\n3,ééééééééé\n4,"a\nb"\n12345678901,x\n'.encode()
    header, rows = read_all(data, limits=limits)
    assert summary(rows) == [(1, None), (2, None), (3, None), (4, None), (5, Reason.VALUE_TOO_LONG)]
    assert rows[1].values == ["2", ""]  # left out, not cut
    assert rows[1].warnings == (WarningNote(
        RowWarning.VALUE_TOO_LONG_DROPPED, "name", "The value is 11 characters long, over the 10 limit: it was left out."),)
    assert rows[4].message == 'The value in column "caller_id" is 11 characters long; the limit is 10.'
    assert rows[4].values == ["1234567890", "x"]  # cut to the limit
    assert [r.warnings for r in rows if r.row_no != 2] == [()] * 4
    assert_resumable(data, header, rows, limits=limits)


def test_the_phone_column_is_the_one_the_caller_names() -> None:
    limits = CsvLimits(max_field_chars=10)
    data = b"Phone,name\n12345678901,x\n1,0123456789X\n"
    header, rows = read_all(data, limits=limits, phone_column=1)
    assert summary(rows) == [(1, None), (2, Reason.VALUE_TOO_LONG)]
    assert rows[0].values == ["", "x"] and rows[0].warnings[0].column == "Phone"


def test_default_field_limit() -> None:
    data = b"caller_id,name\n1," + b"x" * 10_000 + b"\n2," + b"x" * 10_001 + b"\n3,ok\n"
    _, rows = read_all(data)
    assert summary(rows) == [(1, None), (2, None), (3, None)]
    assert [w.code for r in rows for w in r.warnings] == [RowWarning.VALUE_TOO_LONG_DROPPED]


def test_nul_bytes_are_removed_with_a_warning() -> None:
    filler = b"".join(b"%d,filler row\n" % i for i in range(1, 1001))
    data = b"caller_id,name\n1,a\x00b\n" + filler + b"1001,bad\x00name\x00\n1002,ok\n\x00\n"
    header, rows = read_all(data)
    assert len(rows) == 1003  # the line of one NUL is a blank line
    assert summary(rows[-2:]) == [(1002, None), (1003, None)]
    assert rows[0].values == ["1", "ab"]
    assert rows[-2].values == ["1001", "badname"]
    assert rows[-2].warnings == (WarningNote(RowWarning.NUL_REMOVED, "name", "2 NUL characters (byte 0) removed from the value."),)
    assert rows[0].warnings[0].message == "1 NUL character (byte 0) removed from the value."
    assert_resumable(data, header, rows, every=97)


def test_binary_is_decided_by_proportion_not_by_one_byte() -> None:
    rows = b"".join(b"+1602555%04d,name %d\n" % (i, i) for i in range(400))
    few = b"caller_id,name\n" + rows[:2000] + b"\x00" * 90 + rows[2000:]  # about 1% of the first 8 KiB
    header, got = read_all(few)
    assert len(got) == 400 and [w.code for r in got for w in r.warnings] == [RowWarning.NUL_REMOVED]
    many = b"caller_id,name\n" + rows[:2000] + b"\x00" * 600 + rows[2000:]  # about 7%
    assert rejected(many).code == "not_text"


def test_stray_quote_costs_only_the_rows_it_swallows() -> None:
    lines = [b"caller_id,name,note\n", b"1,ok,n\n", b'2,"unclosed,n\n', b"3,swallowed,n\n", b'4,n,"x"\n']
    data = b"".join(lines + [b"5,ok,n\n", b"6,ok,n\n"])
    header, rows = read_all(data)
    # Lines 2-4 become one record (the quote closes at line 4's first quote), with 2 fields.
    assert summary(rows) == [(1, None), (2, Reason.MALFORMED_ROW), (3, None), (4, None)]
    assert rows[1].message == "Row has 2 fields but the header has 3 columns."
    assert rows[1].end_offset == len(b"".join(lines))
    assert good(rows) == [(1, ["1", "ok", "n"]), (3, ["5", "ok", "n"]), (4, ["6", "ok", "n"])]
    assert_resumable(data, header, rows)


def test_stray_quote_never_closed_costs_only_its_own_row() -> None:
    filler = b"".join(b"%d,row after the stray quote\n" % i for i in range(50_000))  # > 1 MiB
    data = b'caller_id,name\n1,ok\n2,"stray\n' + filler
    header, rows = read_all(data)
    assert rows[0].reason is None
    assert rows[1].row_no == 2 and rows[1].reason == Reason.MALFORMED_ROW
    assert rows[1].message and 'quote (") that opens the value in column "name"' in rows[1].message
    assert rows[1].values == ["2", "stray"]
    assert rows[1].end_offset == len(b'caller_id,name\n1,ok\n2,"stray\n')
    assert len(rows) == 2 + 50_000
    assert all(r.reason is None for r in rows[2:])
    assert [r.row_no for r in rows] == list(range(1, len(rows) + 1))
    start = rows[0].end_offset
    assert list(iter_rows(io.BytesIO(data[start:]), header, start_row=2, start_offset=start)) == rows[1:]
    start = rows[1].end_offset
    assert list(iter_rows(io.BytesIO(data[start:]), header, start_row=3, start_offset=start)) == rows[2:]


def test_line_longer_than_the_record_cap_is_rejected_and_reading_goes_on() -> None:
    limits = CsvLimits(max_columns=2, max_field_chars=10)
    assert limits.record_bytes_cap == 4 << 20
    data = b"caller_id,name\n1,ok\n2," + b"y" * (5 << 20) + b"\n3,ok\n4,ok"
    header, rows = read_all(data, limits=limits)
    assert summary(rows) == [(1, None), (2, Reason.VALUE_TOO_LONG), (3, None), (4, None)]
    assert rows[1].end_offset == data.index(b"3,ok")
    assert rows[1].values == []
    assert_resumable(data, header, rows, limits=limits)


def test_carriage_return_in_unquoted_field_is_malformed() -> None:
    data = b"caller_id,name\r\n1,a\rb\r\n2,ok\r\n"
    header, rows = read_all(data)
    assert summary(rows) == [(1, Reason.MALFORMED_ROW), (2, None)]
    assert rows[0].values == ["1,a\rb"]
    assert_resumable(data, header, rows)


def test_non_ascii_utf8_across_block_boundaries() -> None:
    rows_in = [[str(i), f"Zoë {i} ★ 😀", f'"q{i}"\n2nd line'] for i in range(6000)]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["caller_id", "name", "note"])
    writer.writerows(rows_in)
    data = buffer.getvalue().encode()
    assert len(data) > 3 * (1 << 16)
    header, rows = read_all(data)
    assert good(rows) == [(i + 1, r) for i, r in enumerate(rows_in)]
    assert_resumable(data, header, rows, every=211)


def test_row_values_are_exact_column_count_and_rows_are_frozen() -> None:
    _, rows = read_all(b"caller_id,name\n1,a\n")
    row = rows[0]
    assert type(row) is CsvRow
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.row_no = 5  # type: ignore[misc]
    assert dataclasses.replace(row, reason="x").reason == "x"
    assert dataclasses.asdict(row)["values"] == ["1", "a"]


# --------------------------------------------------------------------------------------------------
# streams and offsets


def test_read_header_leaves_a_seekable_stream_at_data_offset() -> None:
    data = b"caller_id,name\n1,a\n2,b\n"
    stream = io.BytesIO(data)
    header = read_header(stream)
    assert stream.tell() == header.data_offset
    assert good(list(iter_rows(stream, header))) == [(1, ["1", "a"]), (2, ["2", "b"])]


def test_non_seekable_stream_open_csv_continues_without_rereading() -> None:
    lines = [b"caller_id,name\r\n"] + [b"%d,name %d\r\n" % (i, i) for i in range(1, 20_001)]
    data = b"".join(lines)
    header, rows_iter = open_csv(s3_like(data, chunk=1000))
    rows = list(rows_iter)
    assert len(rows) == 20_000
    assert rows[-1].end_offset == len(data)
    assert [r.row_no for r in rows] == list(range(1, 20_001))
    # Resume as the splitter would, with an S3 Range request starting at an offset.
    header2 = read_header(s3_like(data))
    assert header2 == header
    assert_resumable(data, header, rows, every=1999)


def test_small_sniff_and_header_longer_than_sniff() -> None:
    long_name = "n" * 3000
    data = f"caller_id,{long_name}\n1,2\n".encode()
    error = rejected(data, limits=CsvLimits(sniff_bytes=1024))
    assert error.code == "malformed_header"
    header, rows = read_all(data)
    assert header.columns == ["caller_id", long_name] and good(rows) == [(1, ["1", "2"])]


CASES = [
    b"caller_id,name\n1,a\n2,b\n",
    b'caller_id,name\r\n1,a\r\n\r\n2,"b\r\nc"\r\n3,d',
    b'caller_id;name\n1;"x;y"\n2;"un\n3;closed"\n4;z\n5;"q"\n',
    b"caller_id\tname\n1\ta\tb\n2\t\n3\tok\t\t\n",
    "caller_id|name\n1|é\n2|\u2028\u0085\x0b\n3|ok\n".encode(),
    "caller_id,name\n1,\xe9\n2,\x81\n".encode("latin-1"),
    BOM + b"caller_id,name\n,,\n1,a\n",
]


@pytest.mark.parametrize("data", CASES)
@pytest.mark.parametrize("block", [3, 16, 1 << 16])
def test_offsets_resume_exactly(data: bytes, block: int) -> None:
    with mock.patch.object(reader_module, "_BLOCK", block):
        header, rows = read_all(data)
        assert rows, "every case has rows"
        assert_resumable(data, header, rows)
        assert list(open_csv(s3_like(data, chunk=5))[1]) == rows
    assert read_all(data)[1] == rows  # same rows whatever the block size


def test_unicode_line_separators_are_not_line_breaks() -> None:
    data = "caller_id,name\n1,a\u2028b\u0085c\x0cd\x1ce\n2,f\n".encode()
    _, rows = read_all(data)
    assert good(rows) == [(1, ["1", "a\u2028b\u0085c\x0cd\x1ce"]), (2, ["2", "f"])]


# --------------------------------------------------------------------------------------------------
# round trip property

HEADER_NAME = (
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_ ", min_size=1, max_size=8)
    .map(str.strip)
    .filter(bool)
)
FIELD = st.text(
    alphabet=st.one_of(
        st.sampled_from([",", ";", "\t", "|", '"', "\n", "\r", " ", "é", "😀", "\u2028", "\x0b", "x", "1"]),
        st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
    ),
    max_size=12,
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]], str, int, str]:
    ncols = draw(st.integers(min_value=2, max_value=6))
    names = draw(st.lists(HEADER_NAME, min_size=ncols, max_size=ncols, unique_by=str.casefold))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]))
    terminator = draw(st.sampled_from(["\r\n", "\n"]))
    rows = draw(st.lists(st.lists(FIELD, min_size=ncols, max_size=ncols), max_size=15))
    if terminator == "\n" and quoting == csv.QUOTE_MINIMAL:
        rows = [[f.replace("\r", "") for f in row] for row in rows]  # writer would not quote a lone \r
    rows = [row for row in rows if any(row)]  # an all-empty row is skipped like a blank line
    return names, rows, delimiter, quoting, terminator


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=tables(), max_rows=st.integers(min_value=1, max_value=50), block=st.sampled_from([5, 64, 1 << 16])
)
def test_round_trip_property(
    table: tuple[list[str], list[list[str]], str, int, str], max_rows: int, block: int
) -> None:
    names, rows_in, delimiter, quoting, terminator = table
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=terminator)  # type: ignore[arg-type]
    writer.writerow(names)
    writer.writerows(rows_in)
    data = buffer.getvalue().encode()
    with mock.patch.object(reader_module, "_BLOCK", block):
        header, rows = read_all(data)
        assert header.delimiter == delimiter
        assert header.columns == names
        assert [(r.row_no, r.values, r.reason) for r in rows] == [
            (i + 1, values, None) for i, values in enumerate(rows_in)
        ]
        offsets = [r.end_offset for r in rows]
        assert offsets == sorted(set(offsets)) and (not rows or offsets[-1] == len(data))
        assert_resumable(data, header, rows, every=max(1, len(rows) // 5))
    chunks = list(chunk_rows(iter(rows), max_rows=max_rows))
    assert [row for chunk in chunks for row in chunk] == rows
    assert all(1 <= len(chunk) <= max_rows for chunk in chunks)


def test_csv_field_size_limit_is_set() -> None:
    read_all(b"caller_id\n1\n", limits=CsvLimits(max_field_chars=1_000_000))
    assert csv.field_size_limit() == 4_000_000
    read_all(b"caller_id\n1\n")
    assert csv.field_size_limit() == 1 << 20


def test_a_trailing_delimiter_on_every_line_is_forgiven_with_a_warning() -> None:
    """Many spreadsheet and CRM exports end every line with a delimiter: an unnamed last column, all empty."""
    data = b"caller_id,name,\n1,a,\n2,b,\n3,c,oops\n4\n"
    header, rows = read_all(data)
    assert header.columns == ["caller_id", "name"]
    assert header.warnings == ["unnamed_columns_ignored"]
    assert summary(rows) == [(1, None), (2, None), (3, Reason.MALFORMED_ROW), (4, None)]
    assert rows[3].values == ["4", ""]
    assert_resumable(data, header, rows)


# --------------------------------------------------------------------------------------------------
# a quote left open: the row that opened it is rejected, reading goes on with the next line


def phones_file(n: int, header: bytes = b"caller_id,name,height\n") -> list[bytes]:
    return [header] + [b"+1602610%04d,Name %d,6 ft\n" % (i, i) for i in range(1, n + 1)]


def test_one_stray_quote_costs_one_row_not_the_rest_of_the_file() -> None:
    lines = phones_file(3000)
    lines[11] = b'+16026100010,"oops\n'
    data = b"".join(lines)
    header, rows = read_all(data)
    assert len(rows) == 3000
    assert [(r.row_no, r.reason) for r in rows if r.reason] == [(11, Reason.MALFORMED_ROW)]
    assert rows[10].values == ["+16026100010", "oops"]
    assert rows[10].message == (
        'The quote (") that opens the value in column "name" on the line of row 11 is never closed: the lines after '
        "it look like rows of their own. This row was not imported, and reading went on with the next line: close "
        "the quote (or remove it) and import the row again.")
    assert rows[10].end_offset == len(b"".join(lines[:12]))
    assert rows[11].values == ["+16026100012", "Name 12", "6 ft"]
    assert_resumable(data, header, rows, every=97)


def test_an_open_quote_closed_by_a_later_inch_mark_merges_nothing() -> None:
    lines = phones_file(100)
    lines[20] = b'+16026100020,Name 20,"6 ft\n'  # never closed on its line
    lines[30] = b'+16026100030,Name 30,5" tall\n'  # the quote csv would close it with, 10 lines on
    data = b"".join(lines)
    header, rows = read_all(data)
    assert len(rows) == 100
    assert [(r.row_no, r.reason) for r in rows if r.reason] == [(20, Reason.MALFORMED_ROW)]
    assert rows[19].message is not None and "look like rows of their own" in rows[19].message
    assert rows[29].values == ["+16026100030", "Name 30", '5" tall']
    assert_resumable(data, header, rows, every=7)


@pytest.mark.parametrize("block", [16, 1 << 16])
def test_quoted_values_across_lines_keep_working(block: int) -> None:
    data = (b'caller_id,name,address\n+16026100001,Ann,"12 Main St\nApt 4, Floor 2\nPhoenix, AZ 85001"\n'
            b'+16026100002,"Bob\nJr",x\n+16026100003,Cy,"notes: call at\n9am, not 8\n\n- ask for Cy"\n')
    with mock.patch.object(reader_module, "_BLOCK", block):
        header, rows = read_all(data)
        assert good(rows) == [
            (1, ["+16026100001", "Ann", "12 Main St\nApt 4, Floor 2\nPhoenix, AZ 85001"]),
            (2, ["+16026100002", "Bob\nJr", "x"]),
            (3, ["+16026100003", "Cy", "notes: call at\n9am, not 8\n\n- ask for Cy"]),
        ]
        assert_resumable(data, header, rows)


def test_a_value_across_more_lines_than_allowed_is_a_quote_left_open() -> None:
    limits = CsvLimits(max_value_lines=3)
    data = b'caller_id,note\n1,"a\nb\nc"\n2,"a\nb\nc\nd"\n3,ok\n'
    header, rows = read_all(data, limits=limits)
    assert summary(rows) == [(1, None), (2, Reason.MALFORMED_ROW), (3, None), (4, None), (5, None), (6, None)]
    assert rows[0].values == ["1", "a\nb\nc"]  # three lines: allowed
    assert rows[1].message is not None and "more lines than a value may" in rows[1].message
    assert [r.values for r in rows[1:]] == [["2", "a"], ["b", ""], ["c", ""], ['d"', ""], ["3", "ok"]]
    assert_resumable(data, header, rows, limits=limits)


@pytest.mark.parametrize("ending", [b"", b"\n", b"\r\n"])
def test_a_quote_open_at_the_end_of_the_file(ending: bytes) -> None:
    data = b'caller_id,name\n+16026100001,ok\n+16026100002,"oops' + ending
    header, rows = read_all(data)
    assert summary(rows) == [(1, None), (2, Reason.MALFORMED_ROW)]
    assert rows[1].message is not None and "end of the file" in rows[1].message
    assert rows[1].values == ["+16026100002", "oops"] and rows[1].end_offset == len(data)
    data = b'caller_id,name\n+16026100002,"oops\nsome text' + ending
    header, rows = read_all(data)
    assert summary(rows) == [(1, Reason.MALFORMED_ROW), (2, None)]
    assert rows[1].values == ["some text", ""]
    assert_resumable(data, header, rows)


# The property: generated exports (phones in the first column, values with legitimate line breaks) with stray
# quotes, trailing delimiters, short rows and NULs injected. Every row's line gets exactly one outcome, in order;
# a row nothing was injected into reads back as written; nothing is merged silently.

SAFE_TEXT = st.text(alphabet="abc xyz,;|\n", max_size=10)  # a line break inside a value: quoted, no digits


@st.composite
def damaged_exports(draw: st.DrawFn) -> tuple[bytes, list[tuple[list[str], str]]]:
    ncols = draw(st.integers(min_value=2, max_value=5))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    trailing = draw(st.booleans())  # a delimiter at the end of every line
    names = ["caller_id"] + [f"c{i}" for i in range(1, ncols)]
    n = draw(st.integers(min_value=1, max_value=25))
    rows: list[tuple[list[str], str]] = []  # (values as written, what was done to the line)
    lines: list[str] = [delimiter.join(names) + (delimiter if trailing else "") + terminator]
    for i in range(n):
        values = [f"+1602555{i:04d}"] + [draw(SAFE_TEXT) for _ in range(ncols - 1)]
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=delimiter, lineterminator=terminator).writerow(values)
        line = buffer.getvalue()[: -len(terminator)]
        damage = draw(st.sampled_from(["none", "none", "none", "stray_quote", "short", "nul"]))
        if damage == "stray_quote" and "\n" not in line and '"' not in line:
            line = line + delimiter + '"oops'  # a quote that is never closed, as the last field
            values = [*values, "oops"]
        elif damage == "short" and "\n" not in line and '"' not in line and not any(values[2:]) and ncols > 2:
            line = delimiter.join(values[:2])  # a spreadsheet dropped the trailing empty fields
        elif damage == "nul" and "\n" not in line:
            line = line[:3] + "\x00" + line[3:]
        else:
            damage = "none"
        rows.append((values, damage))
        lines.append(line + (delimiter if trailing and damage != "stray_quote" else "") + terminator)
    return "".join(lines).encode(), rows


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(export=damaged_exports(), block=st.sampled_from([7, 64, 1 << 16]))
def test_every_row_of_a_damaged_export_gets_exactly_one_outcome(
    export: tuple[bytes, list[tuple[list[str], str]]], block: int
) -> None:
    data, written = export
    with mock.patch.object(reader_module, "_BLOCK", block):
        header, rows = read_all(data)
        assert [r.row_no for r in rows] == list(range(1, len(written) + 1))  # one outcome per row, nothing merged
        for row, (values, damage) in zip(rows, written, strict=True):
            if damage == "stray_quote":
                assert row.reason == Reason.MALFORMED_ROW and row.message and "never closed" in row.message
                assert row.values[0] == values[0]
            elif damage == "nul":
                assert row.reason is None and row.values == values
                assert [w.code for w in row.warnings] == [RowWarning.NUL_REMOVED]
            else:
                assert (row.reason, row.values, row.warnings) == (None, values, ())
        assert_resumable(data, header, rows, every=3)
