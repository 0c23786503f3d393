"""The live view's data: snapshots, rates between them, ETA, budget use, failing targets."""

from __future__ import annotations

import io

import fakeredis
from helpers import genesys_event, parsed
from rich.console import Console

from cli.watch import render
from dlq.clock import FakeClock
from dlq.ledger import MemoryLedger, Status
from dlq.ratelimit import Priority, RateLimiter
from dlq.ratelimit.usage import read_budget
from dlq.watch import QueueDepth, Watcher

CRM = "arn:aws:sqs:us-east-1:111122223333:crm-events"
WEBHOOK = "arn:aws:events:us-east-1:111122223333:api-destination/crm-webhook/always-503"


def finish(ledger: MemoryLedger, target: str, status: Status, code: str | None = None) -> None:
    """One item brought to `status` through the ledger's own transitions."""
    event, message = parsed(genesys_event(), target)
    ledger.put_received(event, message)
    if status is Status.RECEIVED:
        return
    claimed = ledger.claim(event.key, lease_seconds=60)
    ledger.finish(
        claimed,
        status,
        outcome=status.value,
        error=None if status is Status.REPLAYED else "503",
        error_code=code,
        next_attempt_at=ledger.clock.now() + 30 if status is Status.RETRY_SCHEDULED else None,
    )


def test_the_first_snapshot_counts_the_last_minute_and_rates_per_minute() -> None:
    clock = FakeClock()
    ledger = MemoryLedger(clock=clock)
    for _ in range(6):
        finish(ledger, CRM, Status.REPLAYED)
    finish(ledger, WEBHOOK, Status.EXHAUSTED, "HTTP503")
    clock.advance(1)

    snapshot = Watcher(ledger, clock=clock).take()

    assert snapshot.outcomes["replayed"] == 6
    assert snapshot.outcomes["exhausted"] == 1
    assert snapshot.per_minute(Status.REPLAYED) == 6.0
    assert snapshot.finished_per_minute == 7.0


def test_each_snapshot_counts_only_what_finished_since_the_previous_one() -> None:
    clock = FakeClock()
    ledger = MemoryLedger(clock=clock)
    finish(ledger, CRM, Status.REPLAYED)
    clock.advance(1)
    watcher = Watcher(ledger, clock=clock)
    watcher.take()

    clock.advance(5)
    for _ in range(3):
        finish(ledger, CRM, Status.REPLAYED)
    clock.advance(5)
    second = watcher.take()

    assert second.outcomes["replayed"] == 3
    assert second.span == 10.0
    assert second.per_minute("replayed") == 18.0


def test_eta_is_the_backlog_over_the_pace_and_none_when_nothing_moves() -> None:
    clock = FakeClock()
    ledger = MemoryLedger(clock=clock)
    for _ in range(2):
        finish(ledger, CRM, Status.RECEIVED)
    idle = Watcher(ledger, clock=clock, queue_depth=lambda: QueueDepth(visible=8, in_flight=2))

    assert idle.take().backlog == 12
    assert idle.take().eta_seconds is None

    for _ in range(6):
        finish(ledger, CRM, Status.REPLAYED)
    clock.advance(60)
    moving = Watcher(ledger, clock=clock, queue_depth=lambda: QueueDepth(visible=8, in_flight=2))
    # 6 a minute, 12 to do: two minutes.
    assert moving.take().eta_seconds == 120.0


def test_counts_stop_at_the_cap_and_say_so() -> None:
    clock = FakeClock()
    ledger = MemoryLedger(clock=clock)
    for _ in range(4):
        finish(ledger, CRM, Status.RECEIVED)

    snapshot = Watcher(ledger, clock=clock, cap=3).take()

    assert snapshot.pending["received"] == 3
    assert "received" in snapshot.capped


def test_top_failing_targets_group_failed_exhausted_and_retrying_items_by_target() -> None:
    clock = FakeClock()
    ledger = MemoryLedger(clock=clock)
    for _ in range(3):
        finish(ledger, WEBHOOK, Status.EXHAUSTED, "HTTP503")
    finish(ledger, WEBHOOK, Status.RETRY_SCHEDULED, "HTTP503")
    finish(ledger, CRM, Status.FAILED, "ConversationNotFound")
    finish(ledger, CRM, Status.REPLAYED)

    top = Watcher(ledger, clock=clock).take().top_targets

    assert [t.target_arn for t in top] == [WEBHOOK, CRM]
    assert dict(top[0].counts) == {"exhausted": 3, "retry_scheduled": 1}
    assert top[0].error_codes == ("HTTP503",)
    assert dict(top[1].counts) == {"failed": 1}


def test_a_failing_source_is_shown_as_unknown_and_the_rest_still_reads() -> None:
    def unreachable() -> QueueDepth:
        raise ConnectionError("sqs is down")

    snapshot = Watcher(MemoryLedger(), queue_depth=unreachable).take()

    assert snapshot.dlq is None
    assert snapshot.dlq_error == "ConnectionError: sqs is down"
    assert snapshot.budget_error == "GENESYS_CLIENT_ID is not set"


def test_budget_use_counts_the_calls_the_real_limiter_granted_in_the_window() -> None:
    cache = fakeredis.FakeRedis()
    limiter = RateLimiter(cache, "client-a", per_minute=120, burst=5, jitter=False)
    granted = sum(1 for _ in range(5) if limiter.acquire(Priority.HIGH) == 0.0)

    use = read_budget(cache, "client-a", per_minute=120, burst=5)

    assert granted == 5
    assert use.granted == 5
    assert use.allowed == 120.0
    assert use.share == 5 / 120
    assert use.held_for == 0.0
    assert read_budget(cache, "client-b", per_minute=120).granted == 0


def test_budget_use_follows_a_lower_server_allowance_and_a_429_hold() -> None:
    cache = fakeredis.FakeRedis()
    limiter = RateLimiter(cache, "client-a", per_minute=240, burst=2, jitter=False)
    limiter.note_server_allowance(100)
    limiter.acquire(Priority.HIGH)
    limiter.penalise(30)

    use = read_budget(cache, "client-a", per_minute=240, burst=2)

    assert use.server_allowance == 100
    assert use.allowed == 100 - 3  # less the margin: burst + 1 calls
    assert 29 < use.held_for <= 30


def test_a_frame_shows_rates_eta_budget_and_whole_target_arns_at_80_columns() -> None:
    clock = FakeClock()
    ledger = MemoryLedger(clock=clock)
    finish(ledger, WEBHOOK, Status.EXHAUSTED, "HTTP503")
    finish(ledger, CRM, Status.RECEIVED)
    cache = fakeredis.FakeRedis()
    RateLimiter(cache, "client-a", per_minute=240, jitter=False).acquire()
    clock.advance(30)
    watcher = Watcher(
        ledger,
        clock=clock,
        queue_depth=lambda: QueueDepth(visible=4, in_flight=1),
        budget=lambda: read_budget(cache, "client-a", per_minute=240),
        tracking_runs=lambda: 2,
    )
    buffer = io.StringIO()
    Console(file=buffer, width=80, color_system=None).print(render(watcher.take()))
    frame = buffer.getvalue()

    assert "ETA to drain" in frame
    assert "exhausted" in frame
    assert "DLQ, visible" in frame
    assert "Genesys budget: 1 of 240 calls" in frame
    assert "tracking runs waiting" in frame
    assert WEBHOOK in frame.splitlines()
