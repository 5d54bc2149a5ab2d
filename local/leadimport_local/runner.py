"""The local runner: the deployed wiring, with moto for AWS and real PostgreSQL/Redis.

* `LocalServices` starts throwaway PostgreSQL and Redis (pip wheels) unless DATABASE_URL /
  REDIS_URL are set, applies the migrations and seeds the demo data.
* `LocalAws` creates, in moto, what template.yaml creates: the upload bucket (versioned), the
  chunk queue with its DLQ and redrive policy, and the bucket's ObjectCreated notification for
  the upload and drop prefixes. The notification goes to a local "s3-events" queue, from which
  the runner hands each S3 event to the splitter handler, as Lambda's S3 trigger would.
* Pollers feed the very same handlers with the very same events: the splitter with S3 events
  (and its continuations), the workers with SQS batches (deleting only the messages the
  handler did not report as failed, like Lambda's event source mapping).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leadimport_local.events import LambdaContext, make_sqs_batch
from leadimport_local.servers import LocalPostgres, LocalRedis, _RunAs
from leadimport_local.shared_servers import ServersInUse, stop_servers
from leadimport_local.wiring import LocalWiring, load_wiring

REPO_ROOT = Path(__file__).resolve().parents[2]
EVENTS_QUEUE = "leadimport-local-s3-events"
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto's fake credentials
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}

Handler = Callable[[dict[str, Any], Any], Any]


def local_dir() -> Path:
    return Path(os.environ.get("LEADIMPORT_LOCAL_DIR") or REPO_ROOT / ".local")


@dataclass
class LocalServices:
    """PostgreSQL and Redis for the local runner (persistent under .local/) or a test session (temp dir).

    Persistent ones are the shared servers of that folder (shared_servers.py): attached to when they run,
    started (and left running for the next command) when they do not. Throwaway ones belong to this
    process and stop with it."""

    data_dir: Path
    persist: bool = True
    database_url: str | None = None
    redis_url: str | None = None
    _pg: LocalPostgres | None = None
    _redis: LocalRedis | None = None
    _shared: ServersInUse | None = None

    @classmethod
    def for_cli(cls) -> LocalServices:
        return cls(local_dir().resolve(), persist=True, database_url=os.environ.get("DATABASE_URL") or None,
                   redis_url=os.environ.get("REDIS_URL") or None)

    @classmethod
    def throwaway(cls) -> LocalServices:
        d = Path(tempfile.mkdtemp(prefix="leadimport-test-"))
        d.chmod(0o755)  # PostgreSQL may run as `nobody` when we are root
        return cls(d, persist=False, database_url=os.environ.get("DATABASE_URL") or None,
                   redis_url=os.environ.get("REDIS_URL") or None)

    def start(self) -> LocalServices:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.persist:
            self.data_dir.chmod(0o755)
            if not (self.database_url and self.redis_url):
                self._shared = ServersInUse(self.data_dir, self._postgres_dir()).attach()
                self.database_url = self.database_url or self._shared.database_url
                self.redis_url = self.redis_url or self._shared.redis_url
            return self
        if not self.database_url:
            self._pg = LocalPostgres(self._postgres_dir(), fast_unsafe=not self.persist)
            self.database_url = self._pg.start()
        if not self.redis_url:
            self._redis = LocalRedis(self.data_dir / "redis", persist=self.persist)
            self.redis_url = self._redis.start()
        return self

    def stop_shared(self) -> list[str]:
        """Stop this folder's shared servers (`leadimport stop`); ServersInUseError while a process uses them."""
        return stop_servers(self.data_dir, self._postgres_dir())

    def _postgres_dir(self) -> Path:
        """Where PostgreSQL keeps its data. As root it runs as `nobody`, which cannot enter a project that
        lives under /root (mode 700): the data then goes to a fixed folder of the temp dir instead."""
        wanted = self.data_dir / "postgres"
        if os.geteuid() != 0 or _RunAs.for_postgres().can_reach(self.data_dir):
            return wanted
        digest = hashlib.sha256(str(wanted.resolve()).encode()).hexdigest()[:12]
        fallback = Path(tempfile.gettempdir()) / f"leadimport-local-{digest}"
        fallback.mkdir(mode=0o755, exist_ok=True)
        fallback.chmod(0o755)
        return fallback / "postgres"

    def stop(self) -> None:
        """Throwaway servers stop; shared ones keep running for the next command (this process lets go)."""
        if self._shared:
            self._shared.release()
            self._shared = None
        if self._redis:
            self._redis.stop()
        if self._pg:
            self._pg.stop()
        if not self.persist:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def postgres(self) -> LocalPostgres | None:
        return self._pg

    @property
    def redis(self) -> LocalRedis | None:
        return self._redis

    def __enter__(self) -> LocalServices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def prepare_database(database_url: str, seed: bool = True) -> None:
    from leadimport.store.db import Database
    from leadimport_local.migrations import migrate
    from leadimport_local.seed import seed_demo

    db = Database.from_url(database_url)
    try:
        migrate(db)
        if seed:
            seed_demo(db)
    finally:
        db.close()


@dataclass
class LocalAws:
    """The AWS side of template.yaml, in moto (in-process `mock_aws` or a moto server at endpoint_url)."""

    wiring: LocalWiring = field(default_factory=load_wiring)
    endpoint_url: str | None = None
    s3: Any = None
    sqs: Any = None
    chunk_queue_url: str = ""
    dlq_url: str = ""
    events_queue_url: str = ""

    def setup(self) -> LocalAws:
        from leadimport.store.aws import client

        self.s3 = client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")
        self.sqs = client("sqs", endpoint_url=self.endpoint_url, region_name="us-east-1")
        w = self.wiring
        self.s3.create_bucket(Bucket=w.bucket_name)
        self.s3.put_bucket_versioning(Bucket=w.bucket_name, VersioningConfiguration={"Status": "Enabled"})
        self.dlq_url = self.sqs.create_queue(QueueName=w.dlq_name)["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.chunk_queue_url = self.sqs.create_queue(QueueName=w.queue_name, Attributes={
            "VisibilityTimeout": str(w.visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(w.max_receive_count)}),
        })["QueueUrl"]
        self.events_queue_url = self.sqs.create_queue(QueueName=EVENTS_QUEUE)["QueueUrl"]
        events_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.events_queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.s3.put_bucket_notification_configuration(Bucket=w.bucket_name, NotificationConfiguration={
            "QueueConfigurations": [
                {"Id": f"objects-{prefix.strip('/')}", "QueueArn": events_arn, "Events": ["s3:ObjectCreated:*"],
                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}}
                for prefix in (w.upload_prefix, w.drop_prefix)
            ]
        })
        return self

    def handler_env(self) -> dict[str, str]:
        """What the deployed functions get from template.yaml, pointed at moto."""
        w = self.wiring
        env = {
            "UPLOAD_BUCKET": w.bucket_name,
            "UPLOAD_PREFIX": w.upload_prefix,
            "DROP_PREFIX": w.drop_prefix,
            "CHUNK_QUEUE_URL": self.chunk_queue_url,
            "CHUNK_ROWS": str(w.chunk_rows),
            "MAX_UPLOAD_BYTES": str(w.max_upload_bytes),
            "MAX_RECEIVE_COUNT": str(w.max_receive_count),
            "SPLIT_CONTINUATION_QUEUE_URL": self.events_queue_url,
        }
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
            env["AWS_ENDPOINT_URL_S3"] = self.endpoint_url
            env["AWS_ENDPOINT_URL_SQS"] = self.endpoint_url
        return env

    # ---- pollers: Lambda's triggers, played by hand ------------------------------------------------

    def deliver_s3_events(self, splitter: Handler, *, wait_seconds: int = 0, timeout_seconds: float = 900.0) -> int:
        """Hand each S3 notification (and continuation) to the splitter; delete it once handled."""
        got = self.sqs.receive_message(QueueUrl=self.events_queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=wait_seconds)
        messages = got.get("Messages", [])
        for m in messages:
            event = json.loads(m["Body"])
            splitter(event, LambdaContext(function_name="splitter", timeout_seconds=timeout_seconds))
            self.sqs.delete_message(QueueUrl=self.events_queue_url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages)

    def deliver_chunks(self, worker: Handler, *, batch_size: int | None = None, wait_seconds: int = 0) -> int:
        """One SQS batch to the worker; delete what it did not report as failed (ReportBatchItemFailures)."""
        size = min(batch_size or self.wiring.worker_batch_size, 10)
        got = self.sqs.receive_message(QueueUrl=self.chunk_queue_url, MaxNumberOfMessages=size,
                                       WaitTimeSeconds=wait_seconds, AttributeNames=["All"])
        messages = got.get("Messages", [])
        if not messages:
            return 0
        event = make_sqs_batch([m["Body"] for m in messages], message_ids=[m["MessageId"] for m in messages])
        for record, m in zip(event["Records"], messages, strict=True):
            record["attributes"]["ApproximateReceiveCount"] = m.get("Attributes", {}).get("ApproximateReceiveCount", "1")
        result = worker(event, LambdaContext(function_name="worker", timeout_seconds=self.wiring.worker_timeout)) or {}
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.chunk_queue_url, Entries=done)
        return len(messages)

    def queue_depth(self, queue_url: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def load_handler(function: str) -> Handler:
    """Import functions/<function>/handler.py the way Lambda does (by path), once per process."""
    import importlib.util
    import sys

    from leadimport_local.adapters import install

    install()  # the local stand-ins for the splitter's self-invocation and SQS's depth
    name = f"leadimport_function_{function}"
    if name in sys.modules:
        return sys.modules[name].handler  # type: ignore[no-any-return]
    path = REPO_ROOT / "functions" / function / "handler.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.handler  # type: ignore[no-any-return]


def run_inline_until_idle(aws: LocalAws, *, max_rounds: int = 100_000) -> None:
    """Tests: splitter and worker in this thread, in turn, until both queues are empty."""
    splitter, worker = load_handler("splitter"), load_handler("worker")
    for _ in range(max_rounds):
        moved = aws.deliver_s3_events(splitter) + aws.deliver_chunks(worker)
        if not moved and aws.queue_depth(aws.events_queue_url) == 0 and aws.queue_depth(aws.chunk_queue_url) == 0:
            return
    raise RuntimeError("the local pipeline did not become idle")
