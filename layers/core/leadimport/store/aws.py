"""Adapters for S3 (streaming the upload, presigned uploads) and SQS (sending chunks)."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, BinaryIO, TypeVar

from leadimport.csv_io.chunker import groups_within_limits
from leadimport.messages import ChunkMessage

# boto3 is imported on first use, not with this module: a function (or a local command) that never talks
# to S3 or SQS does not pay its ~0.5-1 s import.
_session: Any = None
_session_lock = threading.Lock()


@cache
def _config(service: str) -> Any:
    from botocore.config import Config

    retries = {"max_attempts": 5, "mode": "standard"}
    return Config(signature_version="s3v4", retries=retries) if service == "s3" else Config(retries=retries)


def client(service: str, **kwargs: Any) -> Any:
    """A boto3 client from this module's session, one per process (as boto3's default session would be).

    Ours, not boto3's default: moto's `mock_aws` replaces the default session each time it starts, so
    every test re-read the service models (~0.1 s a client); this one reads them once. Sessions are
    not thread-safe, clients are: creation is serialized. (Tests import moto before any session
    exists, since moto hooks into botocore when imported.)
    """
    global _session
    with _session_lock:
        if _session is None:
            import boto3

            _session = boto3.session.Session()
        return _session.client(service, **kwargs)


def s3_client(endpoint_url: str | None = None) -> Any:
    return client("s3", endpoint_url=endpoint_url, config=_config("s3"))


def sqs_client(endpoint_url: str | None = None) -> Any:
    return client("sqs", endpoint_url=endpoint_url, config=_config("sqs"))


class _BodyRaw(io.RawIOBase):
    """A botocore StreamingBody as a raw stream, so io.BufferedReader can give us readline()."""

    def __init__(self, body: Any):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._body.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def close(self) -> None:
        try:
            self._body.close()
        finally:
            super().close()


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    version: str  # VersionId when the bucket is versioned, else the ETag
    metadata: dict[str, str]
    content_type: str | None


class UploadStore:
    """The upload bucket: object facts, streaming reads from a byte offset, presigned uploads."""

    def __init__(self, bucket: str, client: Any | None = None, *, endpoint_url: str | None = None):
        self.bucket = bucket
        self._client = client
        self._endpoint_url = endpoint_url

    @property
    def client(self) -> Any:
        """The S3 client, made on first use (reading an import's status never needs it)."""
        if self._client is None:
            self._client = s3_client(self._endpoint_url)
        return self._client

    def head(self, key: str, version_id: str | None = None) -> ObjectInfo:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        r = self.client.head_object(**kwargs)
        version = r.get("VersionId") or r.get("ETag", "").strip('"')
        if version == "null":
            version = r.get("ETag", "").strip('"')
        return ObjectInfo(self.bucket, key, int(r["ContentLength"]), version, dict(r.get("Metadata") or {}),
                          r.get("ContentType"))

    def open(self, key: str, offset: int = 0, version_id: str | None = None,
             buffer_size: int = 1 << 20) -> BinaryIO:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if offset:
            kwargs["Range"] = f"bytes={offset}-"
        if version_id and version_id != "null" and not version_id.startswith("etag:"):
            kwargs["VersionId"] = version_id
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(**kwargs)["Body"]
        except ClientError as exc:
            if offset and exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return io.BytesIO(b"")  # resuming exactly at the end of the object: nothing left to read
            raise
        return io.BufferedReader(_BodyRaw(body), buffer_size=buffer_size)  # type: ignore[return-value]

    def presigned_post(self, key: str, max_bytes: int, expires: int, content_type: str = "text/csv") -> dict[str, Any]:
        return dict(self.client.generate_presigned_post(
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[
                ["content-length-range", 1, max_bytes],
                {"Content-Type": content_type},
                {"key": key},
            ],
            ExpiresIn=expires,
        ))

    def put_file(self, key: str, path: str, content_type: str, filename: str) -> None:
        self.client.upload_file(path, self.bucket, key, ExtraArgs={
            "ContentType": content_type, "ContentDisposition": f'attachment; filename="{filename}"'})

    def presigned_get(self, key: str, expires: int) -> str:
        return str(self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires))

    def presigned_put(self, key: str, expires: int, content_length: int, content_type: str = "text/csv") -> str:
        """A PUT URL signed for exactly `content_length` bytes (Content-Length is a signed header: S3 refuses a
        body of another size), so it is bounded like the POST policy's content-length-range."""
        return str(self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type,
                                  "ContentLength": content_length}, ExpiresIn=expires,
        ))

    def move(self, key: str, new_key: str, version_id: str | None, metadata: dict[str, str]) -> bool:
        """Copy the object (the given version) to `new_key` with `metadata`, then delete `key` (on a versioned
        bucket: a delete marker; the version stays until the lifecycle rule expires it). False when the object
        is gone already (moved by an earlier delivery of the same event)."""
        source: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if version_id and version_id != "null" and not version_id.startswith("etag:"):
            source["VersionId"] = version_id
        from botocore.exceptions import ClientError

        try:
            self.client.copy_object(Bucket=self.bucket, Key=new_key, CopySource=source,
                                    MetadataDirective="REPLACE", Metadata=metadata)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchVersion"):
                return False
            raise
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def delete(self, key: str, version_id: str | None = None) -> None:
        params = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        self.client.delete_object(**params)


class ChunkSendError(RuntimeError):
    pass


# SendMessageBatch takes at most 10 entries, and SQS refuses the whole call (BatchRequestTooLong) when
# the bodies together exceed the batch payload limit: 256 KiB in the long-standing documentation (1 MiB
# since 2025 where larger messages are enabled). 256 KiB holds everywhere; the chunker keeps a chunk
# near 200 KB, so a chunk always fits in a batch of its own.
BATCH_MAX_ENTRIES = 10
BATCH_MAX_BYTES = 262_144


T = TypeVar("T")


def batches_within_limits(sized: Sequence[tuple[T, int]], max_entries: int = BATCH_MAX_ENTRIES,
                          max_bytes: int = BATCH_MAX_BYTES) -> list[list[T]]:
    """Consecutive (message, body bytes) grouped into SendMessageBatch calls: at most `max_entries` and
    `max_bytes` of bodies each; a message bigger than `max_bytes` goes alone (SQS then says why)."""
    return list(groups_within_limits(sized, max_entries, max_bytes))


class ChunkQueue:
    """Sends chunk messages with send_message_batch (at most 10 and 256 KiB a call), retrying the entries
    that failed."""

    def __init__(self, queue_url: str, client: Any | None = None, max_attempts: int = 5):
        self.queue_url = queue_url
        self.client = client or sqs_client()
        self.max_attempts = max_attempts

    def send(self, chunks: Sequence[ChunkMessage]) -> None:
        bodies = [(str(c.chunk_no), c.to_json()) for c in chunks]
        for batch in batches_within_limits([(b, len(b[1].encode())) for b in bodies]):
            self._send_batch(batch)

    def send_later(self, body: str, delay_seconds: int) -> None:
        """One message again, visible after `delay_seconds` (at most 900): a chunk over its import's cap."""
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body, DelaySeconds=min(max(delay_seconds, 0), 900))

    def _send_batch(self, batch: Sequence[tuple[str, str]]) -> None:
        """Send (entry id, body) pairs, retrying the entries SQS failed for its own reasons."""
        pending = dict(batch)
        for attempt in range(self.max_attempts):
            entries = [{"Id": k, "MessageBody": body} for k, body in pending.items()]
            r = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for ok in r.get("Successful", []):
                pending.pop(ok["Id"], None)
            if not pending:
                return
            failed = r.get("Failed", [])
            if any(f.get("SenderFault") for f in failed):
                raise ChunkSendError(f"SQS refused chunk messages: {failed}")
            time.sleep(min(2.0, 0.1 * 2**attempt))
        raise ChunkSendError(f"SQS did not accept chunks {sorted(pending)} after {self.max_attempts} attempts")
