"""The preview tells the truth: outcome totals over the whole file (or a large first sample, said so), the
existing-lead outcome included, and computed again from the upload when the user changes the column mapping
(POST /imports/{id}/preview). Real PostgreSQL, moto S3, the API's Lambda handler."""

from __future__ import annotations

from typing import Any

import pytest
from leadimport_local.pipeline import call_api
from leadimport_local.runner import LocalAws, run_inline_until_idle

pytestmark = pytest.mark.integration
LIVE = "+19518761336"  # gets a live lead on schedule 1 first
BLACKLISTED = "+12025550143"  # on the demo company's blacklist


def upload(aws: LocalAws, content: str, **options: Any) -> dict[str, Any]:
    status, imp, text = call_api(1, "POST", "/imports", body={"owner": {"type": "schedule", "id": 1}, **options})
    assert status == 201, text
    aws.s3.put_object(Bucket=aws.wiring.bucket_name, Key=imp["upload"]["post"]["fields"]["key"], Body=content.encode())
    run_inline_until_idle(aws)
    return dict(imp)


def a_file(rows: int = 60) -> str:
    """caller_id,note: row 1 the live lead's number, row 45 a bad phone, row 50 a duplicate of row 2, row 55
    blacklisted; the others distinct valid numbers."""
    lines = []
    for n in range(1, rows + 1):
        phone = {1: LIVE, 45: "1-800-FLOWERS", 50: "+16785170002", 55: BLACKLISTED}.get(n, f"+1678517{n:04d}")
        lines.append(f"{phone},note {n}")
    return "caller_id,note\n" + "\n".join(lines) + "\n"


def test_the_preview_totals_cover_the_whole_file_with_the_existing_lead_outcome(pipeline_env: LocalAws) -> None:
    upload(pipeline_env, f"caller_id\n{LIVE}\n")  # the owner's live lead for row 1
    imp = upload(pipeline_env, a_file(), preview=True)
    status, preview, text = call_api(1, "GET", f"/imports/{imp['id']}/preview")
    assert status == 200, text
    assert preview["totals"] == {
        "rows": 60, "whole_file": True, "sample_limit": 10_000, "estimated_file_rows": 60,
        "created": 56, "updated": 1, "rejected": 3,
        "rejections": {"invalid_phone": 1, "duplicate_in_file": 1, "blacklisted": 1},
        "existing_leads": {"update": 1}, "warnings": {},
    }
    shown = {r["row"]: r for r in preview["rows"]}
    assert list(shown)[:20] == list(range(1, 21)) and shown[1]["existing_lead"] == "update"
    # the bad rows past the first 20 are shown too
    assert {n: shown[n]["reason"] for n in (45, 50, 55)} == {45: "invalid_phone", 50: "duplicate_in_file",
                                                            55: "blacklisted"}

    # the totals are what the import then does
    status, _, text = call_api(1, "POST", f"/imports/{imp['id']}/start", body={})
    assert status == 200, text
    run_inline_until_idle(pipeline_env)
    _, final, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    totals = preview["totals"]
    assert (final["created_leads"], final["updated_leads"], final["rejected_rows"], final["rejections"]) == (
        totals["created"], totals["updated"], totals["rejected"], totals["rejections"])


def test_the_existing_lead_skipped_is_a_rejection_in_the_totals(pipeline_env: LocalAws) -> None:
    upload(pipeline_env, f"caller_id\n{LIVE}\n")
    imp = upload(pipeline_env, a_file(), preview=True, lead_management={"existing_leads": "skip"})
    _, preview, _ = call_api(1, "GET", f"/imports/{imp['id']}/preview")
    assert preview["totals"]["existing_leads"] == {"skip": 1} and preview["totals"]["updated"] == 0
    assert preview["totals"]["rejections"]["duplicate_lead"] == 1 and preview["totals"]["rejected"] == 4


def test_a_file_larger_than_the_sample_says_its_totals_are_for_the_first_rows(pipeline_env: LocalAws,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from leadimport.services import preview as preview_service

    monkeypatch.setattr(preview_service, "SAMPLE_ROWS", 25)
    imp = upload(pipeline_env, a_file(), preview=True)
    _, preview, _ = call_api(1, "GET", f"/imports/{imp['id']}/preview")
    totals = preview["totals"]
    assert (totals["rows"], totals["whole_file"], totals["sample_limit"]) == (25, False, 25)
    assert 50 <= totals["estimated_file_rows"] <= 70  # from the bytes read
    assert totals["created"] == 25 and totals["rejected"] == 0  # the bad rows are past the sample


def test_changing_the_mapping_computes_the_preview_again_and_start_takes_that_mapping(pipeline_env: LocalAws) -> None:
    content = "Phone Number,Other\n" + "".join(f"+1678517{n:04d},not a phone {n}\n" for n in range(1, 31))
    imp = upload(pipeline_env, content, preview=True)
    _, first, _ = call_api(1, "GET", f"/imports/{imp['id']}/preview")
    assert first["proposed_mapping"] == {"Phone Number": "caller_id", "Other": "Other"}
    assert first["totals"]["created"] == 30

    # When the user maps the other column to caller_id
    mapping = {"Phone Number": "phone_number", "Other": "caller_id"}
    status, second, text = call_api(1, "POST", f"/imports/{imp['id']}/preview", body={"column_mapping": mapping})
    assert status == 200, text
    assert second["column_mapping"] == mapping and second["proposed_mapping"] == mapping
    assert (second["totals"]["created"], second["totals"]["rejections"]) == (0, {"invalid_phone": 30})
    _, again, _ = call_api(1, "GET", f"/imports/{imp['id']}/preview")
    assert again["totals"] == second["totals"]

    # A mapping that cannot be used is a 422 with a sentence; the preview stays
    status, problem, _ = call_api(1, "POST", f"/imports/{imp['id']}/preview",
                                  body={"column_mapping": {"Phone Number": "caller_id", "Other": "caller_id"}})
    assert status == 422 and problem["message"]
    status, problem, _ = call_api(1, "POST", f"/imports/{imp['id']}/preview", body={"column_mappin": {}})
    assert status == 422 and "column_mapping" in problem["message"]

    # Started without a mapping, the import takes the one last previewed
    call_api(1, "POST", f"/imports/{imp['id']}/start", body={})
    run_inline_until_idle(pipeline_env)
    _, final, _ = call_api(1, "GET", f"/imports/{imp['id']}")
    assert final["status"] == "completed" and final["rejections"] == {"invalid_phone": 30}

    # ... and a started import's preview cannot change; another company's is not found
    status, problem, _ = call_api(1, "POST", f"/imports/{imp['id']}/preview", body={"column_mapping": mapping})
    assert status == 409 and problem["code"] == "not_awaiting_confirmation"
    status, _, _ = call_api(2, "POST", f"/imports/{imp['id']}/preview", body={"column_mapping": mapping})
    assert status == 404
