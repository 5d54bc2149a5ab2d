"""Composition root of the worker function."""

from __future__ import annotations

from leadimport import settings
from leadimport.roots.shared import cached, database
from leadimport.services.import_chunk import ChunkImporter
from leadimport.store.tokens import shared_token_store


@cached
def chunk_importer() -> ChunkImporter:
    return ChunkImporter(database(), shared_token_store())


def max_receive_count() -> int:
    return settings.queue().max_receive_count
