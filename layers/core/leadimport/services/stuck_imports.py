"""The stuck-import detector: an active import with no progress for a while is marked failed.

"No progress" = `updated_at` (moved by every checkpoint and every chunk) older than the limit.
A lost continuation, a poison chunk that never reached its last attempt, or a splitter that died
without a retry otherwise leave an import "processing" forever.
"""

from __future__ import annotations

from leadimport.imports import repository as import_repo
from leadimport.store.db import Database


def mark_stuck_imports(db: Database, stuck_after_minutes: int) -> list[str]:
    return import_repo.mark_stuck(db, stuck_after_minutes)
