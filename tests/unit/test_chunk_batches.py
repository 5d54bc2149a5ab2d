"""Grouping chunk messages into SendMessageBatch calls: at most 10 entries and 256 KiB of bodies each."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadimport.store.aws import BATCH_MAX_BYTES, BATCH_MAX_ENTRIES, batches_within_limits

pytestmark = pytest.mark.unit


def test_small_messages_go_ten_at_a_time() -> None:
    batches = batches_within_limits([(i, 1_000) for i in range(25)])
    assert batches == [list(range(10)), list(range(10, 20)), list(range(20, 25))]


def test_large_messages_split_by_bytes() -> None:
    batches = batches_within_limits([(i, 70_000) for i in range(10)])
    assert [len(b) for b in batches] == [3, 3, 3, 1]  # 3 x 70 KB fits in 256 KiB, 4 do not


def test_a_message_over_the_byte_limit_goes_alone() -> None:
    batches = batches_within_limits([("a", 10), ("big", BATCH_MAX_BYTES + 1), ("b", 10)])
    assert batches == [["a"], ["big"], ["b"]]


@given(st.lists(st.integers(1, 300_000), max_size=60))
def test_every_message_once_in_order_and_within_limits(sizes: list[int]) -> None:
    batches = batches_within_limits(list(enumerate(sizes)))
    assert [i for b in batches for i in b] == list(range(len(sizes)))
    for b in batches:
        assert 1 <= len(b) <= BATCH_MAX_ENTRIES
        assert len(b) == 1 or sum(sizes[i] for i in b) <= BATCH_MAX_BYTES
