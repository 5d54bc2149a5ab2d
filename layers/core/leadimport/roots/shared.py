"""What the composition roots share: the cache of adapters, the database, the upload store, overrides."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

from leadimport import settings
from leadimport.store.db import Database, reset_shared_database, shared_database

if TYPE_CHECKING:
    from leadimport.store.aws import UploadStore

T = TypeVar("T")
_CACHED: list[Any] = []
_OVERRIDES: dict[str, Callable[[], Any]] = {}


def cached(factory: Callable[[], T]) -> Callable[[], T]:
    """An adapter built once per container (until `reset()`)."""
    wrapped = lru_cache(maxsize=1)(factory)
    _CACHED.append(wrapped)
    return wrapped


def use(name: str, factory: Callable[[], Any] | None) -> None:
    """Replace the port `name` ("continuation", "chunk_queue") with `factory()` (None: back to the default).
    Only the local runner calls this; the roots consult it when they build the port."""
    if _OVERRIDES.get(name) is factory:  # nothing changes: keep the adapters (and the database connection)
        return
    if factory is None:
        _OVERRIDES.pop(name, None)
    else:
        _OVERRIDES[name] = factory
    reset()


def overridden(name: str) -> Any | None:
    factory = _OVERRIDES.get(name)
    return factory() if factory is not None else None


def database() -> Database:
    return shared_database()


@cached
def upload_store() -> UploadStore:
    from leadimport.store.aws import UploadStore

    s = settings.storage()
    return UploadStore(s.bucket, endpoint_url=s.s3_endpoint_url)


def reset() -> None:
    """Forget every adapter (tests and the local runner change the environment between runs)."""
    settings.clear_cache()
    for f in _CACHED:
        f.cache_clear()
    reset_shared_database()
    tokens = sys.modules.get("leadimport.store.tokens")  # only where something loaded Redis
    if tokens is not None:
        tokens.reset_shared_token_store()
