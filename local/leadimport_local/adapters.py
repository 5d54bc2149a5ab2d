"""The local runner's stand-ins for two ports that AWS provides, installed into the composition roots.

* The splitter's continuation: deployed, the splitter invokes itself through Lambda; here the
  continuation goes to the events queue the runner feeds the splitter from.
* A shallow chunk queue: moto's SQS costs grow with queue depth (quadratically, see
  ../shared/measurements.md), so locally the splitter waits while the workers are more than
  LOCAL_CHUNK_QUEUE_MAX_DEPTH messages behind. Real SQS needs no such thing.

Nothing in the Lambda layer knows these; `install()` hands them to `leadimport.roots.use`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from typing import Any

from leadimport import roots, settings
from leadimport.roots.continuation import CONTINUE_KEY
from leadimport.store.aws import ChunkQueue, sqs_client


class QueueContinuation:
    def __init__(self, queue_url: str):
        self.queue_url = queue_url

    def __call__(self, import_id: str) -> None:
        sqs_client(settings.queue().sqs_endpoint_url).send_message(
            QueueUrl=self.queue_url, MessageBody=json.dumps({CONTINUE_KEY: import_id}))


class ShallowChunkQueue(ChunkQueue):
    def __init__(self, queue_url: str, client: Any, max_depth: int, poll_seconds: float = 1.0):
        super().__init__(queue_url, client)
        self.max_depth = max_depth
        # Not faster: moto answers GetQueueAttributes by walking every message (a clock read per message and
        # attribute). Polled every 50 ms that was the moto server's biggest CPU cost in a local import; every
        # 0.25 s it still took ~1.9 s of a 1M-row import's CPU (py-spy). The depth (20 chunks of ~2,000 rows)
        # covers more than two seconds of both workers' work, so a look a second keeps them fed.
        self.poll_seconds = poll_seconds
        self._room = 0  # messages that may be sent before the depth is asked again (it only shrinks meanwhile)

    def _send_batch(self, batch: Sequence[tuple[str, str]]) -> None:
        need = min(len(batch), self.max_depth)
        if self._room < need:
            # Refilled from half empty: asking again as soon as one chunk had room cost one GetQueueAttributes
            # a chunk (~700 in a 1M-row import, each a walk of the queue in moto); now one per ~half a depth.
            wanted = max(need, self.max_depth // 2)
            while True:
                attrs = self.client.get_queue_attributes(
                    QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
                self._room = self.max_depth - int(attrs["ApproximateNumberOfMessages"])
                if self._room >= wanted:
                    break
                time.sleep(self.poll_seconds)
        self._room -= len(batch)
        super()._send_batch(batch)


def _continuation() -> QueueContinuation | None:
    url = os.environ.get("SPLIT_CONTINUATION_QUEUE_URL")
    return QueueContinuation(url) if url else None


def _chunk_queue() -> ShallowChunkQueue | None:
    depth = os.environ.get("LOCAL_CHUNK_QUEUE_MAX_DEPTH")
    if not depth:
        return None
    return ShallowChunkQueue(settings.splitter().queue_url, sqs_client(settings.queue().sqs_endpoint_url), int(depth))


def install() -> None:
    """Hand the local adapters to the composition roots (idempotent; read the environment when built)."""
    roots.use("continuation", _continuation)
    roots.use("chunk_queue", _chunk_queue)
