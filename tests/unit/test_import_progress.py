"""Honest progress: while the file is split, the share done is estimated from the bytes read (the split checkpoint
records them and the file's size is known), the ETA comes with the first rate, and the CLI bar never goes back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from leadimport_local.pipeline import ProgressBar

from leadimport.imports.resource import to_resource


def import_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "5b43c450-e14c-4f0e-acef-178fecf13a57", "name": "spring.csv", "company_id": 1, "owner_type": "schedule",
        "owner_id": 1, "status": "splitting", "source": "api", "options": {}, "total_rows": None,
        "processed_rows": 0, "created_leads": 0, "updated_leads": 0, "rejected_rows": 0, "unprocessed_rows": 0,
        "rejections": {}, "warnings": {}, "file_encoding": "utf-8", "file_delimiter": ",", "object_size": 1_000_000,
        "split_offset": None, "split_next_row": 1, "error": None, "undone_leads": None,
        "created_at": datetime.now(UTC) - timedelta(seconds=12), "started_at": datetime.now(UTC) - timedelta(seconds=10),
        "finished_at": None,
    }
    return row | changes


def test_while_splitting_progress_and_eta_come_from_the_bytes_read() -> None:
    # Given a quarter of a 1 MB file split (50,000 rows read) and 20,000 rows processed in 10 s
    r = to_resource(import_row(split_offset=250_000, split_next_row=50_001, processed_rows=20_000))

    # Then the file is estimated at 200,000 rows, a tenth is done, and the ETA follows the rate
    assert r.estimated_total_rows == 200_000
    assert r.progress == 0.1
    assert r.rate_rows_per_second is not None and 1_900 < r.rate_rows_per_second <= 2_000
    assert r.eta_seconds is not None and 85 < r.eta_seconds < 95
    assert r.total_rows == 50_000  # the rows read so far, as the contract says


def test_before_the_first_checkpoint_nothing_is_estimated() -> None:
    r = to_resource(import_row())
    assert (r.progress, r.estimated_total_rows, r.eta_seconds) == (0.0, None, None)


def test_a_split_in_progress_is_never_shown_done() -> None:
    # The last bytes are read and every row read is processed, but the splitter has not closed the split yet
    r = to_resource(import_row(split_offset=1_000_000, split_next_row=1_001, processed_rows=1_000))
    assert r.progress == 0.99


def test_once_split_the_file_total_is_the_count() -> None:
    r = to_resource(import_row(status="processing", total_rows=180_000, split_offset=1_000_000,
                               split_next_row=180_001, processed_rows=90_000))
    assert (r.estimated_total_rows, r.progress) == (180_000, 0.5)


def test_the_cli_bar_never_goes_backwards() -> None:
    bar = ProgressBar(enabled=False)
    shown = []
    for progress, estimate in ((0.32, 100_000), (0.64, 100_000), (0.63, 101_500), (0.89, 101_500), (0.85, 106_000)):
        line = bar.line({"status": "splitting", "processed_rows": int(progress * estimate), "unprocessed_rows": 0,
                         "total_rows": 50_000, "estimated_total_rows": estimate, "progress": progress})
        shown.append(float(line.split("]")[1].split("%")[0]))
        assert f"/~{estimate:,}" in line
    assert shown == sorted(shown) and shown[-1] == 89.0
