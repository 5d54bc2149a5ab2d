"""Scheduled: imports with no progress for STUCK_AFTER_MINUTES are marked failed with an error."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadimport.services.stuck_imports import mark_stuck_imports
from leadimport.store.db import shared_database

logger = Logger()


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    marked = mark_stuck_imports(shared_database(), int(os.environ.get("STUCK_AFTER_MINUTES", "30")))
    logger.info("stuck imports marked", extra={"count": len(marked), "import_ids": marked})
    return {"marked": marked}
