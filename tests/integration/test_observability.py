"""Where a chunk's time goes: its phases (X-Ray subsegments when tracing is on) and its rows per second."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from leadimport_local.events import LambdaContext, make_sqs_batch
from leadimport_local.runner import LocalAws, load_handler

from leadimport.services.import_chunk import ChunkImporter
from leadimport.store.db import Database
from leadimport.store.tokens import TokenStore
from tests.integration.test_import_chunk import chunk, make_import, tokens

pytestmark = pytest.mark.integration
__all__ = ["tokens"]


def test_a_chunk_reports_each_of_its_phases_in_order(db: Database, tokens: TokenStore) -> None:
    seen: list[str] = []

    @contextmanager
    def phase(name: str) -> Iterator[None]:
        seen.append(name)
        yield

    importer = ChunkImporter(db, tokens, phase)
    result = importer.import_chunk(chunk(make_import(db), 0, [["+19518761336", "", "", "US"]]))
    assert result.outcome == "processed" and result.seconds > 0
    assert seen == ["rules", "facts", "decide", "write", "stamp", "counters"]


def test_tracing_off_costs_no_subsegment() -> None:
    from leadimport.roots import worker

    phase = worker.chunk_phases()  # POWERTOOLS_TRACE_DISABLED=true in tests
    with phase("facts") as inside:
        assert inside is None


def test_the_worker_emits_each_chunks_rows_per_second_with_its_import(pipeline_env: LocalAws, db: Database,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import_id = make_import(db, chunk_count=1, total=2)
    body = chunk(import_id, 0, [["+19518761336", "", "", "US"], ["+16175550123", "", "", "US"]]).to_json()
    assert load_handler("worker")(make_sqs_batch([body]), LambdaContext()) == {"batchItemFailures": []}
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "ImportRowsPerSecond" in line]
    assert len(records) == 1 and records[0]["import_id"] == import_id and records[0]["ImportRowsPerSecond"][0] > 0
