"""The port through which a split goes on in a new invocation (deployed: the splitter invokes itself)."""

from __future__ import annotations

from typing import Protocol


class Continuation(Protocol):
    def __call__(self, import_id: str) -> None: ...
