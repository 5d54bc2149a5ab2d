"""AWS event factories built from the canonical event JSON under tests/events/.

Shared by the tests and the local runner, so that the handlers see locally exactly the events AWS
sends: S3 notifications (URL-encoded keys), SQS batches, HTTP API (payload v2) requests with a
JWT authorizer context.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

EVENTS_DIR = Path(__file__).resolve().parents[2] / "tests" / "events"


@cache
def _canonical(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text(encoding="utf-8"))


def load_event(name: str) -> dict[str, Any]:
    return copy.deepcopy(_canonical(name))


def make_s3_event(bucket: str, key: str, *, version_id: str | None = None, size: int = 0,
                  event_name: str = "ObjectCreated:Post") -> dict[str, Any]:
    event = load_event("s3_object_created.json")
    record = event["Records"][0]
    record["eventName"] = event_name
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    obj = record["s3"]["object"]
    obj["key"] = quote_plus(key, safe="/")  # S3 sends keys URL-encoded, '+' for space
    obj["size"] = size
    if version_id:
        obj["versionId"] = version_id
    else:
        obj.pop("versionId", None)
    return event


def make_sqs_batch(bodies: list[str], *, receive_count: int = 1, queue_arn: str | None = None,
                   message_ids: list[str] | None = None) -> dict[str, Any]:
    template = load_event("sqs_batch.json")["Records"][0]
    records = []
    for i, body in enumerate(bodies):
        r = copy.deepcopy(template)
        r["messageId"] = message_ids[i] if message_ids else str(uuid.uuid4())
        r["receiptHandle"] = f"rh-{r['messageId']}"
        r["body"] = body
        r["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        if queue_arn:
            r["eventSourceARN"] = queue_arn
        records.append(r)
    return {"Records": records}


def make_api_request(method: str, path: str, *, body: Any = None, company_id: int | str | None = 1,
                     query: dict[str, str] | None = None, claim: str = "company_id",
                     headers: dict[str, str] | None = None) -> dict[str, Any]:
    event = load_event("api_request.json")
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method.upper()
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["timeEpoch"] = int(time.time() * 1000)
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if company_id is None:
        event["requestContext"].pop("authorizer", None)
    else:
        event["requestContext"]["authorizer"]["jwt"]["claims"] = {claim: str(company_id), "sub": "user-1"}
    if query:
        event["queryStringParameters"] = dict(query)
        event["rawQueryString"] = urlencode(query)
    if headers:
        event["headers"].update({k.lower(): v for k, v in headers.items()})
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


@dataclass
class LambdaContext:
    """A Lambda context with a real deadline, so time-budget logic behaves as in AWS."""

    function_name: str = "leadimport-local"
    memory_limit_in_mb: int = 1024
    timeout_seconds: float = 900.0
    aws_request_id: str = ""
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:leadimport-local"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/leadimport-local"
    log_stream_name: str = "local"

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)
