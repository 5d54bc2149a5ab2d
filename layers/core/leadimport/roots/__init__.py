"""Composition roots: one small module per function builds its use case from settings, once per container.

`roots.api`, `roots.splitter`, `roots.worker` and `roots.sweeps` each import only the adapters their
function uses (the API does not load Redis or the chunk importer at cold start). Adapters are created
on first use and reused across invocations; `reset()` forgets them when the environment changes
(tests, the local runner).

A port the local runner must replace (the splitter's continuation, the chunk queue's sender) is
taken through `use(...)`: the local package installs its adapters there; deployed, nothing does.
"""

from __future__ import annotations

from leadimport.roots.shared import reset, use

__all__ = ["reset", "use"]
