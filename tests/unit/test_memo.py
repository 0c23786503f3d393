"""`Memo`: a value per key, kept for a while in the process."""

from __future__ import annotations

from dlq.clock import FakeClock
from dlq.memo import Memo


def counting():
    calls = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    return calls, compute


def test_a_value_is_computed_once_within_its_ttl_and_again_after():
    clock = FakeClock()
    memo: Memo[str, int] = Memo(10.0, clock=clock.now)
    calls, compute = counting()

    assert [memo.get("k", compute), memo.get("k", compute)] == [1, 1]
    clock.advance(10.0)
    assert memo.get("k", compute) == 2
    assert len(calls) == 2


def test_without_a_ttl_a_value_is_kept_until_forgotten():
    clock = FakeClock()
    memo: Memo[str, int] = Memo(None, clock=clock.now)
    _, compute = counting()
    memo.get("k", compute)
    clock.advance(10**6)

    assert memo.get("k", compute) == 1
    memo.forget("k")
    assert memo.get("k", compute) == 2


def test_a_value_that_is_no_longer_fresh_is_computed_again():
    memo: Memo[str, int] = Memo(None, fresh=lambda value: value > 1)
    _, compute = counting()

    assert [memo.get("k", compute), memo.get("k", compute), memo.get("k", compute)] == [1, 2, 2]


def test_keys_are_kept_apart():
    memo: Memo[str, str] = Memo(None)

    assert memo.get("a", lambda: "A") == "A"
    assert memo.get("b", lambda: "B") == "B"
    assert memo.get("a", lambda: "other") == "A"
