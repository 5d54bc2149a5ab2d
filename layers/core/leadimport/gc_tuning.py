"""The cyclic garbage collector of a process that handles rows in bulk (the worker, the splitter).

A chunk makes tens of thousands of short-lived lists, dicts and tuples, none of them in a reference cycle:
reference counting frees them. With CPython's default thresholds (a young collection every 700 net container
allocations, an older one every 10 of those) the collector still ran ~60 young collections a chunk, and
the older ones walked every object the process holds, the loaded modules and the AWS SDK's service models
included, again and again. Measured on the worker's hot path (100k rows, worker and its PostgreSQL backend,
default and tuned runs in turn): 32.7-36.1 -> 24.8-30.8 us of worker CPU per row.

`for_bulk_work()`, called once when a handler module is loaded:
- freezes what is loaded so far (modules, classes, settings: never garbage) out of every collection;
- collects young objects every GEN0_THRESHOLD net allocations instead of 700. Cycles are still collected,
  later: at most that many container objects of garbage wait (a few MB at worst).
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000


def for_bulk_work() -> None:
    gen0, gen1, gen2 = gc.get_threshold()
    if gen0 < GEN0_THRESHOLD:
        gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
    gc.freeze()


__all__ = ["GEN0_THRESHOLD", "for_bulk_work"]
