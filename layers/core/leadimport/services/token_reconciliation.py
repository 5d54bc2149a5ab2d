"""Tokens follow the database: PostgreSQL is the source of truth, Redis a copy for inbound calls.

A chunk stamps its leads' tokens inside its transaction, so a lead is never committed without them;
but a Redis restart or failover can lose keys stamped earlier. When an import completes (and, for
any import whose check did not happen, in the scheduled sweep) every live lead it created or
refreshed is checked in Redis and its missing tokens are stamped again.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from leadimport.imports import repository as import_repo
from leadimport.store.db import Database
from leadimport.store.leads import changed_live_lead_keys, live_leads_by_id, own_live_lead_keys
from leadimport.store.tokens import TokenStore

logger = Logger(child=True)
PAGE = 5000


def reconcile_import_tokens(db: Database, tokens: TokenStore, import_id: str) -> int:
    """Stamp again the tokens Redis lost for the import's live leads; record the check. Returns how many.

    Each page of keys is read without a lock and checked in Redis (one EXISTS for the page when nothing is
    missing); only the leads whose key is gone are read again, live and unexpired, with their tokens, locked
    FOR SHARE while they are stamped: an undo or an expiry that removed them meanwhile is seen (the lead is no
    longer live) or waits. Reading every lead's tokens under a lock cost ~33 us of CPU per lead at completion."""
    restamped = 0
    for page in (own_live_lead_keys, changed_live_lead_keys):
        after: int | None = 0
        while after is not None:
            with db.transaction() as conn:
                after, keys = page(conn, import_id, after, PAGE)
            gone = [lead_id for (lead_id, _), lost in zip(keys, tokens.missing([k for _, k in keys]), strict=True)
                    if lost]
            if gone:
                with db.transaction() as conn:
                    lost_stamps = live_leads_by_id(conn, gone)
                    if lost_stamps:
                        tokens.stamp(lost_stamps)
                        restamped += len(lost_stamps)
    import_repo.mark_tokens_checked(db, import_id)
    if restamped:
        logger.warning("tokens Redis had lost were stamped again", extra={"import_id": import_id,
                                                                           "leads": restamped})
    return restamped


def reconcile_unchecked(db: Database, tokens: TokenStore, limit: int = 20) -> int:
    """The sweep: completed imports whose tokens were not checked yet (the check at completion failed)."""
    total = 0
    for import_id in import_repo.completed_unchecked(db, limit):
        total += reconcile_import_tokens(db, tokens, import_id)
    return total
