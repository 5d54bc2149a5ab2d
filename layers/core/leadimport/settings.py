"""Typed settings, read from the environment on first use, failing fast with a clear message.

The only module of the layer that reads environment variables. Each function builds what it
needs inside its handler (never at import time), so a missing variable fails the invocation with
a sentence naming it instead of a KeyError deep in a query.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


class SettingsError(RuntimeError):
    pass


def _require(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is not set")
    return value


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"environment variable {name} must be an integer, got {raw!r}") from exc


@dataclass(frozen=True)
class DatabaseSettings:
    """Either DATABASE_URL (local, tests) or DATABASE_SECRET_ARN + DATABASE_HOST (AWS, via RDS Proxy)."""

    url: str | None
    secret_arn: str | None
    host: str | None

    @classmethod
    def from_env(cls) -> DatabaseSettings:
        url = os.environ.get("DATABASE_URL", "").strip() or None
        secret_arn = os.environ.get("DATABASE_SECRET_ARN", "").strip() or None
        if not url and not secret_arn:
            raise SettingsError("set DATABASE_URL, or DATABASE_SECRET_ARN and DATABASE_HOST")
        return cls(url=url, secret_arn=secret_arn, host=os.environ.get("DATABASE_HOST", "").strip() or None)


@dataclass(frozen=True)
class RedisSettings:
    url: str
    key_prefix: str  # every key starts with it: lets tests (and several stacks) share one server
    cluster: bool  # Redis Cluster / ElastiCache Serverless: use the cluster client

    @classmethod
    def from_env(cls) -> RedisSettings:
        return cls(url=_require("REDIS_URL"), key_prefix=os.environ.get("REDIS_KEY_PREFIX", "li"),
                   cluster=os.environ.get("REDIS_CLUSTER", "false").strip().lower() in ("1", "true", "yes"))


@dataclass(frozen=True)
class StorageSettings:
    bucket: str
    upload_prefix: str
    drop_prefix: str
    max_upload_bytes: int
    presign_expires_seconds: int
    s3_endpoint_url: str | None  # local runner only (moto server)

    @classmethod
    def from_env(cls) -> StorageSettings:
        return cls(
            bucket=_require("UPLOAD_BUCKET"),
            upload_prefix=os.environ.get("UPLOAD_PREFIX", "uploads/"),
            drop_prefix=os.environ.get("DROP_PREFIX", "drop/"),
            max_upload_bytes=_int("MAX_UPLOAD_BYTES", 2 * 1024**3),
            presign_expires_seconds=_int("PRESIGN_EXPIRES_SECONDS", 3600),
            s3_endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3") or None,
        )


@dataclass(frozen=True)
class QueueSettings:
    sqs_endpoint_url: str | None  # the local runner only (moto server)
    max_receive_count: int  # the chunk queue's redrive policy: the worker's last attempt records the failure
    chunk_queue_url: str | None = None  # the worker puts a chunk over its import's cap back, with a delay

    @classmethod
    def from_env(cls) -> QueueSettings:
        return cls(sqs_endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SQS") or None,
                   max_receive_count=_int("MAX_RECEIVE_COUNT", 5),
                   chunk_queue_url=os.environ.get("CHUNK_QUEUE_URL") or None)


@dataclass(frozen=True)
class ContinuationSettings:
    splitter_function_name: str  # the splitter invokes itself (and the API starts a confirmed import) by name

    @classmethod
    def from_env(cls) -> ContinuationSettings:
        return cls(splitter_function_name=_require("SPLITTER_FUNCTION_NAME"))


@dataclass(frozen=True)
class ApiSettings:
    company_claim: str  # the JWT claim that carries the caller's company id

    @classmethod
    def from_env(cls) -> ApiSettings:
        return cls(company_claim=os.environ.get("COMPANY_CLAIM", "").strip() or "company_id")


@dataclass(frozen=True)
class SweepSettings:
    stuck_after_minutes: int

    @classmethod
    def from_env(cls) -> SweepSettings:
        minutes = _int("STUCK_AFTER_MINUTES", 30)
        if minutes < 1:
            raise SettingsError(f"environment variable STUCK_AFTER_MINUTES must be at least 1, got {minutes}")
        return cls(stuck_after_minutes=minutes)


@dataclass(frozen=True)
class SplitterSettings:
    queue_url: str
    chunk_rows: int
    chunk_max_bytes: int
    time_budget_margin_ms: int  # stop splitting this long before the Lambda deadline
    lease_seconds: int  # a split whose splitter died is resumable this long after its last checkpoint

    @classmethod
    def from_env(cls) -> SplitterSettings:
        return cls(
            queue_url=_require("CHUNK_QUEUE_URL"),
            chunk_rows=_int("CHUNK_ROWS", 2000),
            chunk_max_bytes=_int("CHUNK_MAX_BYTES", 240_000),
            time_budget_margin_ms=_int("SPLIT_TIME_MARGIN_MS", 30_000),
            lease_seconds=_int("SPLIT_LEASE_SECONDS", 60),
        )


@lru_cache(maxsize=1)
def database() -> DatabaseSettings:
    return DatabaseSettings.from_env()


@lru_cache(maxsize=1)
def redis() -> RedisSettings:
    return RedisSettings.from_env()


@lru_cache(maxsize=1)
def storage() -> StorageSettings:
    return StorageSettings.from_env()


@lru_cache(maxsize=1)
def splitter() -> SplitterSettings:
    return SplitterSettings.from_env()


@lru_cache(maxsize=1)
def queue() -> QueueSettings:
    return QueueSettings.from_env()


@lru_cache(maxsize=1)
def continuation() -> ContinuationSettings:
    return ContinuationSettings.from_env()


@lru_cache(maxsize=1)
def api() -> ApiSettings:
    return ApiSettings.from_env()


@lru_cache(maxsize=1)
def sweeps() -> SweepSettings:
    return SweepSettings.from_env()


def tracing_enabled() -> bool:
    """Powertools' rule: traced inside Lambda (not SAM local, not Chalice), unless POWERTOOLS_TRACE_DISABLED."""
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on"):
        return False
    in_lambda = bool(os.environ.get("LAMBDA_TASK_ROOT"))
    return in_lambda and not (os.environ.get("AWS_SAM_LOCAL") or os.environ.get("AWS_CHALICE_CLI_MODE"))


def clear_cache() -> None:
    """Tests and the local runner change the environment between runs."""
    for f in (database, redis, storage, splitter, queue, continuation, api, sweeps):
        f.cache_clear()
