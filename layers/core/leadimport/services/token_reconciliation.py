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
from leadimport.store.leads import live_leads_page
from leadimport.store.tokens import TokenStore

logger = Logger(child=True)
PAGE = 5000


def reconcile_import_tokens(db: Database, tokens: TokenStore, import_id: str) -> int:
    """Stamp again the tokens Redis lost for the import's live leads; record the check. Returns how many."""
    restamped, after = 0, 0
    while True:
        # The page stays locked while Redis is checked and stamped: an undo or expiry removing these leads'
        # tokens meanwhile would otherwise see them stamped back.
        with db.transaction() as conn:
            page = live_leads_page(conn, import_id, after, PAGE)
            if not page:
                break
            stamps = [stamp for _, stamp in page]
            missing = tokens.missing([(s.company_id, s.owner_type, s.owner_id, s.phone) for s in stamps])
            lost = [s for s, gone in zip(stamps, missing, strict=True) if gone]
            if lost:
                tokens.stamp(lost)
                restamped += len(lost)
        after = page[-1][0]
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
