"""The local runner's shallow chunk queue: the splitter never puts more than the depth into moto's queue, and
asks for its depth about once per half a depth of chunks, not once per chunk (each ask walks moto's queue)."""

from __future__ import annotations

from typing import Any

import pytest
from leadimport_local import adapters

pytestmark = pytest.mark.unit


class FakeSqs:
    """A queue that two workers drain by `drained` messages each time the splitter waits."""

    def __init__(self, drained: int) -> None:
        self.depth = 0
        self.most = 0
        self.asks = 0
        self.sent = 0
        self.drained = drained

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        self.asks += 1
        return {"Attributes": {"ApproximateNumberOfMessages": str(self.depth)}}

    def send_message_batch(self, Entries: list[dict[str, str]], **_: Any) -> dict[str, Any]:  # noqa: N803
        self.depth += len(Entries)
        self.sent += len(Entries)
        self.most = max(self.most, self.depth)
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}

    def drain(self) -> None:
        self.depth = max(0, self.depth - self.drained)


def test_the_queue_stays_shallow_and_its_depth_is_asked_rarely(monkeypatch: pytest.MonkeyPatch) -> None:
    sqs = FakeSqs(drained=3)
    monkeypatch.setattr(adapters.time, "sleep", lambda _s: sqs.drain())
    queue = adapters.ShallowChunkQueue("url", sqs, max_depth=20)
    for i in range(400):
        queue._send_batch([(str(i), "{}")])
        if i % 4 == 1:
            sqs.drain()  # the workers also take chunks while the splitter sends
    assert sqs.sent == 400
    assert sqs.most <= 20
    assert sqs.asks <= 400 / 10 * 2  # about once per half a depth of chunks (was ~once a chunk)


def test_the_splitter_refills_before_the_queue_runs_dry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiting for an empty queue would starve the workers: each wait lets them take a few chunks, and the
    splitter sends again once half the depth is free, never letting the depth fall to nothing."""
    sqs = FakeSqs(drained=3)
    depths: list[int] = []

    def wait(_seconds: float) -> None:
        sqs.drain()
        depths.append(sqs.depth)

    monkeypatch.setattr(adapters.time, "sleep", wait)
    queue = adapters.ShallowChunkQueue("url", sqs, max_depth=20)
    for i in range(400):
        queue._send_batch([(str(i), "{}")])
    assert depths and min(depths) >= 5
