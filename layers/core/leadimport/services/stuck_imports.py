"""The stuck-import detector: an active import with no progress for a while is marked failed.

"No progress" = `updated_at` (moved by every checkpoint and every chunk) older than the limit.
A lost continuation, a poison chunk that never reached its last attempt, or a splitter that died
without a retry otherwise leave an import "processing" forever.
"""

from __future__ import annotations

from leadimport.store.db import Database


def mark_stuck_imports(db: Database, stuck_after_minutes: int) -> list[str]:
    rows = db.run(
        """UPDATE lead_imports
           SET status = 'failed', finished_at = now(), updated_at = now(),
               error = format('The import stopped making progress (nothing happened for %s minutes while it was %s). '
                              'Rows already imported stay; download the errors to see which rows were processed.',
                              :m, status)
           WHERE status IN ('queued', 'splitting', 'processing')
             AND updated_at < now() - make_interval(mins => :m)
           RETURNING id::text""",
        m=stuck_after_minutes,
    )
    return [r[0] for r in rows]
