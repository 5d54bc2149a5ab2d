"""Composition root: builds each use case from settings, once per container, for the thin handlers.

Adapters are created on first use and reused across invocations (connections included); the
local runner and the tests reset them with `reset()` when they change the environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from leadimport import settings
from leadimport.services.import_chunk import ChunkImporter
from leadimport.services.imports_api import ImportsApi, UploadConfig
from leadimport.services.split_upload import Continuation, SplitConfig, Splitter
from leadimport.store.aws import ChunkQueue, UploadStore, s3_client, sqs_client
from leadimport.store.db import reset_shared_database, shared_database
from leadimport.store.tokens import reset_shared_token_store, shared_token_store

CONTINUE_KEY = "continue_import"


class LambdaContinuation:
    """Deployed: the splitter re-invokes itself asynchronously with {"continue_import": id}."""

    def __init__(self, function_name: str):
        self.function_name = function_name

    def __call__(self, import_id: str) -> None:
        from leadimport.store.aws import client

        client("lambda").invoke(FunctionName=self.function_name, InvocationType="Event",
                                      Payload=json.dumps({CONTINUE_KEY: import_id}).encode())


class QueueContinuation:
    """Local runner: the continuation goes to the queue the runner feeds the splitter from."""

    def __init__(self, queue_url: str):
        self.queue_url = queue_url

    def __call__(self, import_id: str) -> None:
        sqs_client(os.environ.get("AWS_ENDPOINT_URL_SQS")).send_message(
            QueueUrl=self.queue_url, MessageBody=json.dumps({CONTINUE_KEY: import_id}))


@lru_cache(maxsize=1)
def continuation() -> Continuation:
    name = os.environ.get("SPLITTER_FUNCTION_NAME")
    if name:
        return LambdaContinuation(name)
    local_queue = os.environ.get("SPLIT_CONTINUATION_QUEUE_URL")
    if local_queue:
        return QueueContinuation(local_queue)
    raise settings.SettingsError("set SPLITTER_FUNCTION_NAME (or SPLIT_CONTINUATION_QUEUE_URL locally)")


@lru_cache(maxsize=1)
def upload_store() -> UploadStore:
    s = settings.storage()
    return UploadStore(s.bucket, s3_client(s.s3_endpoint_url))


@lru_cache(maxsize=1)
def chunk_queue() -> ChunkQueue:
    depth = os.environ.get("LOCAL_CHUNK_QUEUE_MAX_DEPTH")  # set by the local runner only (moto)
    return ChunkQueue(settings.splitter().queue_url, sqs_client(os.environ.get("AWS_ENDPOINT_URL_SQS")),
                      max_depth=int(depth) if depth else None)


def splitter(remaining_ms: Callable[[], int]) -> Splitter:
    st, sp = settings.storage(), settings.splitter()
    config = SplitConfig(upload_prefix=st.upload_prefix, drop_prefix=st.drop_prefix,
                         max_upload_bytes=st.max_upload_bytes, chunk_rows=sp.chunk_rows,
                         chunk_max_bytes=sp.chunk_max_bytes, time_margin_ms=sp.time_budget_margin_ms)
    return Splitter(shared_database(), upload_store(), chunk_queue(), continuation(), config, remaining_ms)


@lru_cache(maxsize=1)
def chunk_importer() -> ChunkImporter:
    return ChunkImporter(shared_database(), shared_token_store())


@lru_cache(maxsize=1)
def imports_api() -> ImportsApi:
    s = settings.storage()
    return ImportsApi(shared_database(), upload_store(),
                      UploadConfig(s.upload_prefix, s.max_upload_bytes, s.presign_expires_seconds), continuation())


def reset() -> None:
    """Forget every adapter (tests and the local runner change the environment between runs)."""
    settings.clear_cache()
    for f in (continuation, upload_store, chunk_queue, chunk_importer, imports_api):
        f.cache_clear()
    reset_shared_database()
    reset_shared_token_store()


def is_continuation(event: Any) -> bool:
    return isinstance(event, dict) and CONTINUE_KEY in event
