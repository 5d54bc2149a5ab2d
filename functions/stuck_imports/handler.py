"""Scheduled sweeps: imports with no progress for STUCK_AFTER_MINUTES are marked failed with an error, splits
whose splitter died are handed to the splitter again, and leads past their expiry are expired (schedule runs
ended, tokens removed)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadimport.roots import sweeps as root

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    marked = root.mark_stuck()
    if marked:
        logger.warning("stuck imports marked failed", extra={"count": len(marked), "import_ids": marked})
    resumed = root.resume_splits()
    if resumed:
        logger.warning("splits resumed (their splitter died or their continuation was lost)",
                       extra={"count": len(resumed), "import_ids": resumed})
    expired = root.expire_leads()
    if expired:
        logger.info("leads past their expiry expired", extra={"count": expired})
    restamped = root.reconcile_tokens()
    return {"marked": marked, "resumed": resumed, "expired_leads": expired, "restamped_tokens": restamped}
