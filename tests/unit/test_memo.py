"""`Memo`: a value per key, kept for a while in the process (and the latest reusable read
of a shared state per key)."""

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


# --- reads of shared state: reused while fresh, forgotten by this process ---------------


def recent(clock: FakeClock) -> Memo[str, int]:
    """Reads worth reusing are the odd ones."""
    return Memo(1.0, fresh=lambda value: value % 2 == 1, clock=clock.now)


def test_a_reusable_read_stands_for_the_calls_of_its_second_and_not_after():
    clock = FakeClock()
    reads = recent(clock)
    calls, read = counting()

    assert reads.get("k", read) == 1
    clock.advance(0.999)
    assert reads.get("k", read) == 1
    clock.advance(0.001)
    assert reads.get("k", read) == 2
    assert len(calls) == 2


def test_a_read_not_worth_reusing_is_read_again_by_the_next_call():
    clock = FakeClock()
    reads = recent(clock)
    _, read = counting()
    reads.get("k", read)
    clock.advance(1.0)

    assert [reads.get("k", read), reads.get("k", read), reads.get("k", read)] == [2, 3, 3]


def test_a_forgotten_key_is_read_again_at_once():
    reads = recent(FakeClock())
    _, read = counting()
    reads.get("k", read)
    reads.forget("k")

    assert reads.get("k", read) == 2


def test_a_read_begun_before_the_key_was_forgotten_is_not_kept():
    reads = recent(FakeClock())
    _, read = counting()

    def changed_meanwhile() -> int:  # this process changes the key while a read is out
        value = read()
        reads.forget("k")
        return value

    assert reads.get("k", changed_meanwhile) == 1
    assert reads.kept("k") is None
    assert reads.get("k", read) == 2


def test_kept_answers_a_recent_reusable_read_and_never_reads():
    clock = FakeClock()
    reads = recent(clock)

    assert reads.kept("k") is None
    reads.get("k", lambda: 7)
    assert reads.kept("k") == 7
    clock.advance(1.0)
    assert reads.kept("k") is None


def test_keys_are_read_apart():
    reads = recent(FakeClock())
    reads.get("a", lambda: 1)
    reads.forget("b")

    assert reads.get("a", lambda: 3) == 1
    assert reads.get("b", lambda: 5) == 5
