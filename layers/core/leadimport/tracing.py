"""X-Ray tracing of a handler, only where it traces: deployed, unless POWERTOOLS_TRACE_DISABLED says no.

Powertools' `Tracer()` loads the X-Ray SDK's recorder even when tracing is off (~0.3 s of every cold
start, and of every local command that runs a handler). Where tracing is off this decorator returns the
handler as it is and nothing of the SDK is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from leadimport import settings

F = TypeVar("F", bound=Callable[..., Any])


def capture_lambda_handler(handler: F) -> F:
    if not settings.tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    return Tracer().capture_lambda_handler(capture_response=False)(handler)  # type: ignore[no-any-return]
