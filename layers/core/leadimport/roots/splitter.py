"""Composition root of the splitter function."""

from __future__ import annotations

from collections.abc import Callable

from leadimport import settings
from leadimport.roots.continuation import CONTINUE_KEY, continuation, is_continuation
from leadimport.roots.shared import cached, database, overridden, upload_store
from leadimport.services.split_upload import SplitConfig, Splitter
from leadimport.store.aws import ChunkQueue, sqs_client

__all__ = ["CONTINUE_KEY", "chunk_queue", "continuation", "is_continuation", "splitter"]

@cached
def chunk_queue() -> ChunkQueue:
    local: ChunkQueue | None = overridden("chunk_queue")
    if local is not None:
        return local
    return ChunkQueue(settings.splitter().queue_url, sqs_client(settings.queue().sqs_endpoint_url))


def splitter(remaining_ms: Callable[[], int]) -> Splitter:
    st, sp = settings.storage(), settings.splitter()
    config = SplitConfig(upload_prefix=st.upload_prefix, drop_prefix=st.drop_prefix,
                         max_upload_bytes=st.max_upload_bytes, chunk_rows=sp.chunk_rows,
                         chunk_max_bytes=sp.chunk_max_bytes, time_margin_ms=sp.time_budget_margin_ms,
                         lease_seconds=sp.lease_seconds)
    return Splitter(database(), upload_store(), chunk_queue(), continuation(), config, remaining_ms)
