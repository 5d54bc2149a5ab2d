"""Worker: an SQS batch of chunk messages -> leadimport.services.import_chunk, with partial batch failures.

A rejected row is an outcome, never an exception. An exception fails only its message: transient
ones (database, Redis) come back after the visibility timeout; an unreadable message goes to the
DLQ after maxReceiveCount, and on its last attempt the import is told which chunk failed.
"""

from __future__ import annotations

import random
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from leadimport import gc_tuning, tracing
from leadimport.messages import ChunkMessage, UnreadableMessageError
from leadimport.roots import worker as root
from leadimport.store.db import describe_error

logger = Logger()
metrics = Metrics()
# A batch whose every record failed is reported item by item like any partial failure (each message
# keeps its own receive count towards the DLQ) instead of failing the whole invocation.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
THROTTLE_DELAY_SECONDS = (2, 8)  # a chunk over its import's cap comes back after this many seconds (jittered)


def record_handler(record: SQSRecord) -> None:
    attempts = int(record.attributes.approximate_receive_count or 1)
    last_attempt = attempts >= root.max_receive_count()
    try:
        message = ChunkMessage.from_json(record.body)
    except UnreadableMessageError as exc:
        logger.warning("unreadable chunk message", extra={"attempt": attempts, "last_attempt": last_attempt})
        if last_attempt:
            root.chunk_importer().record_unreadable(record.body, str(exc))
        metrics.add_metric(name="ChunksUnreadable", unit=MetricUnit.Count, value=1)
        raise
    try:
        result = root.chunk_importer().import_chunk(message)
    except Exception as exc:
        # ids, counts and the error's type and SQLSTATE only: never the message body (it holds the rows)
        error = describe_error(exc)
        logger.warning("chunk failed; SQS will deliver it again", extra={
            "import_id": message.import_id, "chunk": message.chunk_no, "rows": message.row_count,
            "attempt": attempts, "last_attempt": last_attempt, "error": error})
        metrics.add_metric(name="ChunksFailed", unit=MetricUnit.Count, value=1)
        if last_attempt:
            try:
                root.chunk_importer().record_failed_chunk(message, error, attempts)
                logger.error("chunk failed on its last attempt: its import is failed, its rows unprocessed",
                             extra={"import_id": message.import_id, "chunk": message.chunk_no, "error": error})
            except Exception:  # noqa: BLE001 - the original failure goes on to the DLQ either way
                logger.exception("could not record the failed chunk on its import",
                                 extra={"import_id": message.import_id, "chunk": message.chunk_no})
        raise
    if result.outcome == "throttled":
        # Over its import's cap: back to the queue with a delay as a new message (this one succeeds), so waiting
        # never counts towards the DLQ's receive count.
        root.chunk_queue().send_later(record.body, random.randint(*THROTTLE_DELAY_SECONDS))  # noqa: S311
        metrics.add_metric(name="ChunksThrottled", unit=MetricUnit.Count, value=1)
        return
    metrics.add_metric(name="RowsCreated", unit=MetricUnit.Count, value=result.created)
    if result.seconds > 0 and not is_metrics_disabled():  # single_metric prints even where metrics are off
        # Rows per second of each chunk, with its import as a property of the metric record (not a dimension: one
        # CloudWatch metric per import would cost per import): a Logs Insights query gives the rate per import.
        with single_metric(name="ImportRowsPerSecond", unit=MetricUnit.CountPerSecond,
                           value=message.row_count / result.seconds) as rate:
            rate.add_metadata(key="import_id", value=message.import_id)
    metrics.add_metric(name="RowsUpdated", unit=MetricUnit.Count, value=result.updated)
    metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=result.rejected)


@logger.inject_lambda_context(clear_state=True)
@tracing.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


gc_tuning.for_bulk_work()  # after every import: what is loaded now is never garbage (see leadimport.gc_tuning)
