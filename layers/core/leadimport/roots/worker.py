"""Composition root of the worker function."""

from __future__ import annotations

from contextlib import nullcontext

from leadimport import settings
from leadimport.roots.shared import cached, database
from leadimport.services.import_chunk import ChunkImporter, PhaseTimer
from leadimport.store.aws import ChunkQueue, sqs_client
from leadimport.store.tokens import shared_token_store


@cached
def chunk_importer() -> ChunkImporter:
    return ChunkImporter(database(), shared_token_store(), chunk_phases())


def chunk_phases() -> PhaseTimer:
    """Each phase of a chunk as an X-Ray subsegment ("## chunk facts", ...) when tracing is on; else nothing."""
    if not settings.tracing_enabled():  # nothing of the X-Ray SDK is loaded (see leadimport.tracing)
        return lambda _name: nullcontext()
    from aws_lambda_powertools import Tracer

    tracer = Tracer()
    return lambda name: tracer.provider.in_subsegment(f"## chunk {name}")


@cached
def chunk_queue() -> ChunkQueue:
    """Where a chunk over its import's cap goes back to (plain SQS: never the local runner's depth-limited
    queue, whose sender waits for the workers: a worker waiting on itself)."""
    q = settings.queue()
    if q.chunk_queue_url is None:
        raise RuntimeError("CHUNK_QUEUE_URL is not set: the worker cannot put a capped chunk back")
    return ChunkQueue(q.chunk_queue_url, sqs_client(q.sqs_endpoint_url))


def max_receive_count() -> int:
    return settings.queue().max_receive_count
