"""The splitter's continuation, shared by the splitter's root and the API's (POST /imports/{id}/start)."""

from __future__ import annotations

import json
from typing import Any

from leadimport import settings
from leadimport.roots.shared import cached, overridden
from leadimport.services.continuation import Continuation
from leadimport.store.aws import client

CONTINUE_KEY = "continue_import"


class LambdaContinuation:
    """Deployed: the splitter re-invokes itself asynchronously with {"continue_import": id}."""

    def __init__(self, function_name: str):
        self.function_name = function_name

    def __call__(self, import_id: str) -> None:
        client("lambda").invoke(FunctionName=self.function_name, InvocationType="Event",
                                Payload=json.dumps({CONTINUE_KEY: import_id}).encode())


def is_continuation(event: Any) -> bool:
    return isinstance(event, dict) and CONTINUE_KEY in event


@cached
def continuation() -> Continuation:
    local: Continuation | None = overridden("continuation")
    if local is not None:
        return local
    return LambdaContinuation(settings.continuation().splitter_function_name)
