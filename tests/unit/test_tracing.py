"""Tracing only where it traces: no X-Ray SDK loaded (a cold start's ~0.3 s) when tracing is off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from leadimport import settings, tracing

REPO = Path(__file__).parents[2]


@pytest.mark.parametrize(("env", "traced"), [
    ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
    ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
    ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
    ({}, False),  # outside Lambda (the local runner, tests)
])
def test_tracing_follows_powertools_rule(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], traced: bool) -> None:
    for key in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert settings.tracing_enabled() is traced


def test_an_untraced_handler_is_the_handler_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")

    def handler(event: dict[str, object], context: object) -> str:
        return "ok"

    assert tracing.capture_lambda_handler(handler) is handler


@pytest.mark.parametrize("function", ["api", "splitter", "worker"])
def test_loading_a_handler_with_tracing_off_loads_no_xray_recorder(function: str) -> None:
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"}
    env.pop("LAMBDA_TASK_ROOT", None)
    code = ("import sys; from leadimport_local.runner import load_handler; load_handler(sys.argv[1]);"
            " print(sorted(m for m in sys.modules if m.startswith('aws_xray_sdk.core')))")
    out = subprocess.run([sys.executable, "-c", code, function], capture_output=True, text=True, env=env, cwd=REPO,
                         check=True, timeout=600)
    assert out.stdout.strip() == "[]", out.stdout
