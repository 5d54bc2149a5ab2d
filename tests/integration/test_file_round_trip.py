"""The file round trip (#18), through the real splitter, worker and API on PostgreSQL, Redis and moto: every row of
a damaged export gets an outcome (a quote left open costs its own row only), NULs and long values are forgiven with
a warning listed per row, and the error CSV (cancel's unprocessed rows included) goes back in as it is."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from leadimport_local.pipeline import call_api
from leadimport_local.runner import LocalAws, load_handler, run_inline_until_idle

from leadimport.store.db import Database

pytestmark = pytest.mark.integration


def upload(aws: LocalAws, content: bytes, **options: Any) -> str:
    status, imp, text = call_api(1, "POST", "/imports", body={"owner": {"type": "schedule", "id": 1}, **options})
    assert status == 201, text
    aws.s3.put_object(Bucket=aws.wiring.bucket_name, Key=imp["upload"]["post"]["fields"]["key"], Body=content)
    return str(imp["id"])


def run_import(aws: LocalAws, content: bytes, **options: Any) -> dict[str, Any]:
    import_id = upload(aws, content, **options)
    run_inline_until_idle(aws)
    _, final, _ = call_api(1, "GET", f"/imports/{import_id}")
    assert final["status"] == "completed", final
    assert final["created_leads"] + final["updated_leads"] + final["rejected_rows"] == final["total_rows"]
    return dict(final)


def all_pages(import_id: str, route: str, **query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        status, page, text = call_api(1, "GET", f"/imports/{import_id}/{route}",
                                      query={**query, **({"cursor": cursor} if cursor else {})})
        assert status == 200, text
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def phones_file(n: int, header: str = "caller_id,name,height") -> list[str]:
    return [header] + [f"+1602610{i:04d},Name {i},6 ft" for i in range(1, n + 1)]


def test_one_stray_quote_costs_its_own_row_and_every_other_row_goes_in(pipeline_env: LocalAws) -> None:
    # Given 3,000 rows where row 11 opens a quote it never closes
    lines = phones_file(3000)
    lines[11] = '+16026100010,"oops'
    # When it is imported
    final = run_import(pipeline_env, ("\n".join(lines) + "\n").encode())
    # Then every row has an outcome: row 11 rejected, the 2,999 others created
    assert (final["total_rows"], final["created_leads"], final["rejected_rows"]) == (3000, 2999, 1)
    assert final["rejections"] == {"malformed_row": 1} and final["warnings"] == {}
    errors = all_pages(final["id"], "errors")
    assert [(e["row"], e["reason"]) for e in errors] == [(11, "malformed_row")]
    assert 'column "name"' in errors[0]["message"] and "never closed" in errors[0]["message"]
    assert errors[0]["values"] == {"caller_id": "+16026100010", "name": "oops"}


def test_an_open_quote_closed_by_a_later_inch_mark_merges_no_rows(pipeline_env: LocalAws, db: Database) -> None:
    lines = phones_file(100)
    lines[20] = '+16026100020,Name 20,"6 ft'
    lines[30] = '+16026100030,Name 30,5" tall'  # 10 lines on: fewer than a quoted value may span
    final = run_import(pipeline_env, ("\n".join(lines) + "\n").encode())
    assert (final["total_rows"], final["created_leads"], final["rejections"]) == (100, 99, {"malformed_row": 1})
    heights = {r[0]: r[1] for r in db.run("SELECT caller_id, tokens->>'height' FROM leads"
                                          " WHERE import_id = CAST(:i AS uuid)", i=final["id"])}
    assert heights["+16026100030"] == '5" tall' and heights["+16026100021"] == "6 ft"
    assert "+16026100020" not in heights


def test_nuls_and_a_long_note_are_forgiven_with_warnings_listed_per_row(pipeline_env: LocalAws,
                                                                       db: Database) -> None:
    # Given an export with a few NUL bytes, a note over the field limit, and a phone over it
    long_note = "n" * 10_001
    content = ("caller_id,name,notes\n"
               "+16026100001,Ann\x00,ok\n"
               f"+16026100002,Bob,{long_note}\n"
               "+16026100003,Cy\x00\x00,x\x00\n"
               f"+1602610{'0' * 10_000},Dee,x\n"
               "+16026100005,Eve,fine\n").encode()
    final = run_import(pipeline_env, content)
    # Then the leads are kept, the phone over the limit is rejected, and the warnings are counted by row
    assert (final["total_rows"], final["created_leads"], final["rejections"]) == (5, 4, {"value_too_long": 1})
    assert final["warnings"] == {"nul_removed": 2, "value_too_long_dropped": 1}
    leads = {r[0]: r[1] for r in db.run("SELECT caller_id, tokens FROM leads WHERE import_id = CAST(:i AS uuid)",
                                        i=final["id"])}
    assert leads["+16026100001"] == {"name": "Ann", "notes": "ok"}
    assert leads["+16026100002"] == {"name": "Bob"}  # the note left out, the lead kept
    assert leads["+16026100003"] == {"name": "Cy", "notes": "x"}
    # And each row's warnings are listed with their column, page by page
    warnings = all_pages(final["id"], "warnings", limit="2")
    assert [(w["row"], w["code"], w["column"]) for w in warnings] == [
        (1, "nul_removed", "name"), (2, "value_too_long_dropped", "notes"), (3, "nul_removed", "name"),
        (3, "nul_removed", "notes")]
    assert warnings[1]["message"] == "The value is 10,001 characters long, over the 10,000 limit: it was left out."
    assert [w["row"] for w in all_pages(final["id"], "warnings", code="value_too_long_dropped")] == [2]
    # And an undo of the import works with its warnings recorded (they stay listed: they describe the file)
    status, undone, text = call_api(1, "POST", f"/imports/{final['id']}/undo")
    assert status == 200 and undone["undone_leads"] == 4, text
    assert len(all_pages(final["id"], "warnings")) == 4


def test_rule_warnings_name_the_files_column(pipeline_env: LocalAws) -> None:
    content = b"Phone,E-mail,Priority\n+16026100001,not-an-email,5\n+16026100002 x12,a@b.co,high\n"
    final = run_import(pipeline_env, content,
                       column_mapping={"Phone": "caller_id", "E-mail": "email", "Priority": "lead_priority"})
    assert final["warnings"] == {"email_dropped": 1, "phone_extension": 1, "lead_priority_dropped": 1}
    assert [(w["row"], w["code"], w["column"]) for w in all_pages(final["id"], "warnings")] == [
        (1, "email_dropped", "E-mail"), (2, "lead_priority_dropped", "Priority"), (2, "phone_extension", "Phone")]


def test_trailing_delimiters_and_short_rows_are_forgiven(pipeline_env: LocalAws) -> None:
    content = b"caller_id,name,city,\n+16026100001,Ann,Phoenix,\n+16026100002,Bob\n+16026100003,Cy,,oops\n"
    final = run_import(pipeline_env, content)
    assert (final["total_rows"], final["created_leads"], final["rejections"]) == (3, 2, {"malformed_row": 1})
    assert final["warnings"] == {"unnamed_columns_ignored": 1}


def test_the_error_csv_of_a_cancelled_import_goes_back_in_as_it_is(pipeline_env: LocalAws, db: Database,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from leadimport_local.events import LambdaContext, make_sqs_batch

    from leadimport import roots

    monkeypatch.setenv("CHUNK_ROWS", "4")
    roots.reset()
    # Given 8 rows with values a spreadsheet runs as formulas, non-ASCII names, and two bad phones
    rows = [("+1 951 876 1336", "=SUM(A1:A2)", "-5", "@home", "Zoë"),
            ("+1 678 517 7520", "=1+1", "-7", "@work", "José"),
            ("not a phone", "=A1", "-1", "@x", "Ünal"),
            ("12345", "+44", "-2", "@y", "Åsa"),
            ("+1 312 555 0123", "=B2", "-3", "@z", "Øyvind"),
            ("+1 646 555 0199", "+1", "-4", "@w", "Łukasz"),
            ("+1 415 555 0132", "=C3", "-6", "@v", "Çelik"),
            ("+1 617 555 0100", "-", "-8", "@u", "Ñoño")]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([("caller_id", "formula", "offset", "handle", "name"), *rows])
    import_id = upload(pipeline_env, buffer.getvalue().encode())
    # When the first chunk (4 rows) is imported and the import is cancelled before the second
    pipeline_env.deliver_s3_events(load_handler("splitter"))
    got = pipeline_env.sqs.receive_message(QueueUrl=pipeline_env.chunk_queue_url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 2
    worker = load_handler("worker")
    worker(make_sqs_batch([got[0]["Body"]]), LambdaContext())
    assert call_api(1, "POST", f"/imports/{import_id}/cancel")[0] == 200
    worker(make_sqs_batch([got[1]["Body"]]), LambdaContext())
    for message in got:  # done: off the queue (as the event source mapping does), so the next import's run ends
        pipeline_env.sqs.delete_message(QueueUrl=pipeline_env.chunk_queue_url, ReceiptHandle=message["ReceiptHandle"])
    _, first, _ = call_api(1, "GET", f"/imports/{import_id}")
    assert (first["status"], first["created_leads"], first["rejections"], first["unprocessed_rows"]) == (
        "cancelled", 2, {"invalid_phone": 2}, 4)
    # And the user fixes the two bad phones in the error CSV and uploads it as it is
    _, _, errors = call_api(1, "GET", f"/imports/{import_id}/errors.csv")
    fixed = errors.replace("not a phone", "+1 202 555 0188").replace("12345", "+1 305 555 0177")
    monkeypatch.setenv("CHUNK_ROWS", "2000")
    roots.reset()
    second = run_import(pipeline_env, fixed.encode("utf-8"))
    # Then the two fixed rows and the four unprocessed ones go in with their values exactly as they were
    assert (second["total_rows"], second["created_leads"], second["rejected_rows"]) == (6, 6, 0)
    leads = {r[0]: r[1] for r in db.run("SELECT caller_id, tokens FROM leads WHERE import_id = CAST(:i AS uuid)",
                                        i=second["id"])}
    assert leads["+12025550188"] == {"formula": "=A1", "offset": "-1", "handle": "@x", "name": "Ünal"}
    assert leads["+13055550177"] == {"formula": "+44", "offset": "-2", "handle": "@y", "name": "Åsa"}
    assert leads["+16465550199"] == {"formula": "+1", "offset": "-4", "handle": "@w", "name": "Łukasz"}
    assert leads["+16175550100"] == {"formula": "-", "offset": "-8", "handle": "@u", "name": "Ñoño"}
    assert set(leads) == {"+12025550188", "+13055550177", "+13125550123", "+16465550199", "+14155550132",
                          "+16175550100"}
