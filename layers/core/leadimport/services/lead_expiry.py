"""Scheduled: leads past their expiry stop being live (status expired, schedule runs ended, tokens removed).

The importer already treats such a lead as expired when it meets one; this sweep makes the rest of
the platform see it too (the dialer's schedule runs, inbound token lookups after Redis's own TTL).
"""

from __future__ import annotations

from leadimport.store.db import Database
from leadimport.store.leads import expire_due
from leadimport.store.tokens import TokenStore


def expire_due_leads(db: Database, tokens: TokenStore, batch: int = 5000, max_batches: int = 100) -> int:
    """Expire due leads in batches (each its own transaction, its tokens removed before it commits);
    returns how many expired."""
    total = 0
    for _ in range(max_batches):
        with db.transaction() as conn:
            keys = expire_due(conn, batch)
            tokens.remove(keys)
        total += len(keys)
        if len(keys) < batch:
            break
    return total
