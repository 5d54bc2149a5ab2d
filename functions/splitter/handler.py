"""Splitter: S3 ObjectCreated (or a continuation) -> leadimport.services.split_upload. No CSV logic here."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadimport import gc_tuning, tracing
from leadimport.roots import splitter as root

logger = Logger()
metrics = Metrics()


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    splitter = root.splitter(context.get_remaining_time_in_millis)
    if root.is_continuation(event):
        outcome = splitter.resume(str(event[root.CONTINUE_KEY]))
        outcomes = [outcome]
    else:
        if event.get("Event") == "s3:TestEvent" or "Records" not in event:
            logger.info("not an object-created event: ignored")
            return {"outcomes": []}
        outcomes = []
        for record in S3Event(event).records:
            if not record.event_name.startswith("ObjectCreated"):
                continue
            key = unquote_plus(record.s3.get_object.key)  # S3 keys arrive URL-encoded ('+' for space)
            outcomes.append(splitter.object_created(key, record.s3.get_object.version_id))
    for o in outcomes:
        metrics.add_metric(name=f"Split_{o.status}", unit=MetricUnit.Count, value=1)
        logger.info("split outcome", extra={"import_id": o.import_id, "status": o.status})
    return {"outcomes": [{"import_id": o.import_id, "status": o.status} for o in outcomes]}


gc_tuning.for_bulk_work()  # after every import: what is loaded now is never garbage (see leadimport.gc_tuning)
