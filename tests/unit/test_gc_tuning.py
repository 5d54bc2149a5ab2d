"""The bulk handlers (worker, splitter) tune the cyclic garbage collector when loaded; the API leaves it alone."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leadimport import gc_tuning

REPO = Path(__file__).parents[2]


@pytest.mark.parametrize(("function", "tuned"), [("worker", True), ("splitter", True), ("api", False)])
def test_loading_a_bulk_handler_tunes_the_collector(function: str, tuned: bool) -> None:
    # a fresh interpreter: this test process's collector is left as it is
    code = ("import gc, json, sys; from leadimport_local.runner import load_handler; load_handler(sys.argv[1]);"
            " print(json.dumps([gc.get_threshold()[0], gc.get_freeze_count()]))")
    out = subprocess.run([sys.executable, "-c", code, function], capture_output=True, text=True, cwd=REPO,
                         env={**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"}, check=True, timeout=600)
    gen0, frozen = json.loads(out.stdout.strip().splitlines()[-1])
    if tuned:
        assert gen0 == gc_tuning.GEN0_THRESHOLD
        assert frozen > 10_000  # the modules loaded by then: out of every collection
    else:
        assert gen0 == 700 and frozen == 0


def test_for_bulk_work_never_lowers_a_higher_threshold() -> None:
    saved = gc.get_threshold()
    try:
        gc.set_threshold(gc_tuning.GEN0_THRESHOLD * 2, saved[1], saved[2])
        gc_tuning.for_bulk_work()
        assert gc.get_threshold()[0] == gc_tuning.GEN0_THRESHOLD * 2
    finally:
        gc.set_threshold(*saved)
        gc.unfreeze()
