"""`Replayer`: every decision of one replay attempt, on the in-memory world of conftest."""

from __future__ import annotations

import pytest

from cli.inspect import _said
from dlq.clock import parse_iso
from dlq.errors import ConfigurationError
from dlq.events import EventKey
from dlq.genesys.errors import GenesysRateLimited, GenesysServerError
from dlq.ledger import Status
from dlq.replay import CLOCK_SLACK_SECONDS, AttemptFailed, ReplayOptions, ReplayOutcome, Wait
from dlq.retry import RetryPolicy
from dlq.settings import MAX_COUNTDOWN_SECONDS
from dlq.targets.errors import TargetMissing, TargetThrottled, TargetUnavailable

from .fakes import CONVERSATION_ID, LEASE_SECONDS, TARGET_ARN, Sent, lookups, settle


def unavailable(message: str = "503 from the target") -> TargetUnavailable:
    return TargetUnavailable(message, target_arn=TARGET_ARN, code="ServiceUnavailable")


def missing() -> TargetMissing:
    return TargetMissing(
        "the queue is gone", target_arn=TARGET_ARN, code="AWS.SimpleQueueService.NonExistentQueue"
    )


def outcomes(item) -> list[str]:
    return [entry["outcome"] for entry in item.history]


# --- the happy path and duplicates ------------------------------------------------------


def test_a_received_item_is_redelivered_once_and_marked_replayed(
    make_replayer, receive, ledger, target
):
    key = receive()

    outcome = make_replayer().replay(key, task_id="task-1")

    assert outcome is ReplayOutcome.REPLAYED
    item = ledger.get(key)
    assert target.delivered == [Sent(TARGET_ARN, key.event_id, item.body, CONVERSATION_ID)]
    assert item.status is Status.REPLAYED
    assert item.attempts == 1
    assert item.lease_until is None and item.claim_token is None
    assert outcomes(item) == ["received", "replayed"]
    assert item.history[-1]["task_id"] == "task-1"


def test_the_history_records_where_the_event_went_and_the_targets_receipt(
    make_replayer, receive, ledger
):
    key = receive()

    make_replayer().replay(key)

    entry = ledger.get(key).history[-1]
    assert entry["delivered_to"] == TARGET_ARN
    assert entry["receipt"] == f"receipt-{key.event_id}"


def test_a_duplicate_task_for_a_replayed_item_is_suppressed_without_a_second_send(
    make_replayer, receive, ledger, target
):
    key = receive()
    replayer = make_replayer()
    replayer.replay(key)

    assert replayer.replay(key) is ReplayOutcome.SUPPRESSED
    assert len(target.calls) == 1
    assert ledger.get(key).attempts == 1


def test_a_task_carrying_its_lock_claims_without_reading_the_item_first(
    make_replayer, receive, ledger, target, monkeypatch
):
    key = receive()
    reads: list[object] = []
    real_get = ledger.get

    def counted_get(k):
        reads.append(k)
        return real_get(k)

    monkeypatch.setattr(ledger, "get", counted_get)

    outcome = make_replayer().replay(key, lock=CONVERSATION_ID)

    assert outcome is ReplayOutcome.REPLAYED
    assert reads == []  # the claim was the first ledger request
    assert len(target.delivered) == 1


def test_a_task_carrying_its_lock_for_a_replayed_item_is_suppressed_by_the_refused_claim(
    make_replayer, receive, ledger, target
):
    key = receive()
    make_replayer().replay(key, lock=CONVERSATION_ID)

    assert make_replayer().replay(key, lock=CONVERSATION_ID) is ReplayOutcome.SUPPRESSED
    assert len(target.calls) == 1


def test_a_task_carrying_a_lock_for_an_absent_item_is_skipped(make_replayer, target):
    missing = EventKey("never-received", TARGET_ARN)

    assert make_replayer().replay(missing, lock="event:x") is ReplayOutcome.SKIPPED
    assert target.calls == []


def test_a_task_that_read_the_item_before_another_worker_replayed_it_is_suppressed_at_the_claim(
    make_replayer, receive, ledger, target, monkeypatch
):
    key = receive()
    read_before = ledger.get(key)
    settle(ledger, key, Status.REPLAYED)
    monkeypatch.setattr(ledger, "get", lambda key: read_before)

    assert make_replayer().replay(key) is ReplayOutcome.SUPPRESSED
    assert target.calls == []


def test_an_item_already_failed_is_skipped_not_suppressed(make_replayer, receive, ledger, target):
    key = receive()
    settle(ledger, key, Status.FAILED, error="the queue is gone")

    assert make_replayer().replay(key) is ReplayOutcome.SKIPPED
    assert target.calls == []


def test_a_task_without_a_ledger_item_is_skipped(make_replayer, receive, target):
    key = receive()

    outcome = make_replayer().replay(type(key)("no-such-event", key.target_arn))

    assert outcome is ReplayOutcome.SKIPPED
    assert target.calls == []


# --- lock and claim ---------------------------------------------------------------------


def test_a_busy_conversation_raises_wait_without_claiming(
    make_replayer, receive, ledger, target, locks
):
    key = receive()

    with locks.hold(CONVERSATION_ID) as held, pytest.raises(Wait) as raised:
        assert held
        make_replayer().replay(key)

    assert raised.value.retry_after is not None
    assert 0.5 <= raised.value.retry_after <= 2.0
    item = ledger.get(key)
    assert (item.status, item.attempts) == (Status.RECEIVED, 0)
    assert target.calls == []


def test_the_conversation_lock_is_released_after_an_attempt(make_replayer, receive, locks):
    key = receive()
    make_replayer().replay(key)

    with locks.hold(CONVERSATION_ID) as held:
        assert held


def test_an_item_whose_retry_is_not_due_is_skipped_without_a_send(
    make_replayer, receive, ledger, target, clock
):
    key = receive()
    settle(ledger, key, Status.RETRY_SCHEDULED, next_attempt_at=clock.now() + 60)

    assert make_replayer().replay(key) is ReplayOutcome.SKIPPED
    assert target.calls == []
    item = ledger.get(key)
    assert (item.status, item.attempts) == (Status.RETRY_SCHEDULED, 1)


def test_an_item_claimed_by_a_live_worker_is_skipped(make_replayer, receive, ledger, target):
    key = receive()
    ledger.claim(key, lease_seconds=LEASE_SECONDS)

    assert make_replayer().replay(key) is ReplayOutcome.SKIPPED
    assert target.calls == []


def test_a_claim_taken_over_after_the_lease_lapsed_is_left_to_its_new_owner(
    make_replayer, receive, ledger, target, clock, news
):
    key = receive()
    taken: list = []

    def another_worker_takes_over() -> None:
        clock.advance(LEASE_SECONDS + 1)
        taken.append(ledger.claim(key, lease_seconds=LEASE_SECONDS))

    target.on_send = another_worker_takes_over

    assert make_replayer().replay(key) is ReplayOutcome.SKIPPED
    item = ledger.get(key)
    assert item.status is Status.IN_PROGRESS
    assert item.claim_token == taken[0].claim_token
    assert item.attempts == 2
    assert outcomes(item) == ["received"]
    assert news.marks == []


# --- exhaustion -------------------------------------------------------------------------


def test_an_item_claimed_more_often_than_max_attempts_is_exhausted_and_parked_without_a_send(
    make_replayer, receive, ledger, target, parking, clock
):
    key = receive()
    for _ in range(3):  # three workers died mid-attempt; each lease lapsed
        ledger.claim(key, lease_seconds=LEASE_SECONDS)
        clock.advance(LEASE_SECONDS + 1)

    outcome = make_replayer(policy=RetryPolicy(max_attempts=3)).replay(key)

    assert outcome is ReplayOutcome.EXHAUSTED
    assert target.calls == []
    item = ledger.get(key)
    assert (item.status, item.attempts) == (Status.EXHAUSTED, 4)
    said = (
        "no attempts left after 3 (the workers' REPLAY_MAX_ATTEMPTS): not retried; "
        "redrive it once the cause is fixed"
    )
    assert item.last_error == said
    [(parked, reason)] = parking.parked
    assert (parked.event_id, reason) == (key.event_id, said)


def test_an_event_older_than_the_max_age_is_exhausted_without_a_send(
    make_replayer, receive, ledger, target, parking, clock
):
    key = receive()
    clock.advance(3600 + 1)

    outcome = make_replayer(policy=RetryPolicy(max_age_seconds=3600)).replay(key)

    assert outcome is ReplayOutcome.EXHAUSTED
    assert target.calls == []
    item = ledger.get(key)
    assert item.status is Status.EXHAUSTED
    assert item.last_error == (
        "older than REPLAY_MAX_EVENT_AGE_SECONDS: not retried (a redrive starts its age again)"
    )
    assert [p.event_id for p, _ in parking.parked] == [key.event_id]


def test_an_event_just_within_the_max_age_is_redelivered(make_replayer, receive, target, clock):
    key = receive(age=3600 - 1)

    outcome = make_replayer(policy=RetryPolicy(max_age_seconds=3600)).replay(key)

    assert outcome is ReplayOutcome.REPLAYED
    assert len(target.delivered) == 1


def test_the_last_attempt_failing_exhausts_the_item_instead_of_retrying(
    make_replayer, receive, ledger, target, parking, clock
):
    key = receive()
    target.fail_with(
        unavailable("first 503; retrying later"), unavailable("second 503; retrying later")
    )
    replayer = make_replayer(policy=RetryPolicy(max_attempts=2))
    with pytest.raises(AttemptFailed) as first:
        replayer.replay(key)
    first.value.schedule(10)
    assert ledger.get(key).last_error == "first 503; retrying later"
    clock.advance(10)

    assert replayer.replay(key) is ReplayOutcome.EXHAUSTED
    item = ledger.get(key)
    assert (item.status, item.attempts) == (Status.EXHAUSTED, 2)
    assert item.last_error == (
        "second 503; no attempts left after 2 (the workers' REPLAY_MAX_ATTEMPTS): not retried; "
        "redrive it once the cause is fixed"
    )
    assert outcomes(item) == ["received", "retry_scheduled", "exhausted"]
    assert [reason for _, reason in parking.parked] == [item.last_error]


def test_a_parking_queue_that_refuses_the_item_still_leaves_it_exhausted(
    make_replayer, receive, ledger, parking
):
    key = receive(age=2)
    parking.refusing = RuntimeError("AccessDenied on sqs:SendMessage")

    outcome = make_replayer(policy=RetryPolicy(max_age_seconds=1)).replay(key)

    assert outcome is ReplayOutcome.EXHAUSTED
    item = ledger.get(key)
    assert item.status is Status.EXHAUSTED
    assert "parking failed (RuntimeError: AccessDenied on sqs:SendMessage)" in item.last_error
    assert "parking failed" in item.history[-1]["error"]


def test_a_redriven_items_age_counts_from_the_redrive(
    make_replayer, receive, ledger, target, clock
):
    key = receive(age=7200)
    policy = RetryPolicy(max_age_seconds=3600)
    assert make_replayer(policy=policy).replay(key) is ReplayOutcome.EXHAUSTED

    ledger.redrive(key)
    clock.advance(3600 - 1)

    assert make_replayer(policy=policy).replay(key) is ReplayOutcome.REPLAYED
    assert len(target.delivered) == 1


def test_a_redriven_item_runs_out_of_age_again_a_full_budget_after_the_redrive(
    make_replayer, receive, ledger, target, clock
):
    key = receive(age=7200)
    policy = RetryPolicy(max_age_seconds=3600)
    make_replayer(policy=policy).replay(key)
    ledger.redrive(key)
    clock.advance(3600 + 1)

    assert make_replayer(policy=policy).replay(key) is ReplayOutcome.EXHAUSTED
    assert target.calls == []


def test_exhaustion_without_a_parking_queue_is_only_recorded(
    make_replayer, receive, ledger, parking
):
    key = receive(age=2)

    outcome = make_replayer(policy=RetryPolicy(max_age_seconds=1), parking=None).replay(key)

    assert outcome is ReplayOutcome.EXHAUSTED
    assert ledger.get(key).status is Status.EXHAUSTED
    assert parking.parked == []


# --- failed attempts --------------------------------------------------------------------


def test_a_retryable_target_error_is_a_failed_attempt_with_the_targets_hint(
    make_replayer, receive, ledger, target
):
    key = receive()
    target.fail_with(
        TargetThrottled("slow down", target_arn=TARGET_ARN, code="Throttling", retry_after=7.0)
    )

    with pytest.raises(AttemptFailed) as raised:
        make_replayer().replay(key)

    assert raised.value.retry_after == 7.0
    assert "slow down" in str(raised.value)
    # Nothing is written until the caller schedules the retry.
    assert ledger.get(key).status is Status.IN_PROGRESS


def test_scheduling_a_failed_attempt_records_the_retry_due_before_its_countdown_ends(
    make_replayer, receive, ledger, target, clock, news
):
    key = receive()
    target.fail_with(unavailable())
    with pytest.raises(AttemptFailed) as raised:
        make_replayer().replay(key, task_id="task-1")

    raised.value.schedule(30.0)

    item = ledger.get(key)
    assert item.status is Status.RETRY_SCHEDULED
    assert item.next_attempt_at == round(clock.now() + 30.0 - CLOCK_SLACK_SECONDS, 3)
    assert item.last_error == "503 from the target"
    assert item.lease_until is None and item.claim_token is None
    assert item.history[-1] == {
        "at": item.updated_at,
        "outcome": "retry_scheduled",
        "error": "503 from the target",
        "task_id": "task-1",
    }
    assert news.marks == [CONVERSATION_ID]


def test_a_scheduled_retry_is_due_no_later_than_the_brokers_bound(
    make_replayer, receive, ledger, target, clock
):
    key = receive()
    target.fail_with(unavailable())
    with pytest.raises(AttemptFailed) as raised:
        make_replayer().replay(key)

    raised.value.schedule(10 * MAX_COUNTDOWN_SECONDS)

    due = ledger.get(key).next_attempt_at
    assert due == round(clock.now() + MAX_COUNTDOWN_SECONDS - CLOCK_SLACK_SECONDS, 3)


def test_a_retry_scheduled_sooner_than_the_slack_is_due_at_once(
    make_replayer, receive, ledger, target, clock
):
    key = receive()
    target.fail_with(unavailable())
    with pytest.raises(AttemptFailed) as raised:
        make_replayer().replay(key)

    raised.value.schedule(0.5)

    assert ledger.get(key).next_attempt_at == round(clock.now(), 3)


def test_a_scheduled_retry_is_redelivered_once_due(make_replayer, receive, ledger, target, clock):
    key = receive()
    target.fail_with(unavailable())
    replayer = make_replayer()
    with pytest.raises(AttemptFailed) as raised:
        replayer.replay(key)
    raised.value.schedule(30.0)
    clock.advance(30.0)

    assert replayer.replay(key) is ReplayOutcome.REPLAYED
    item = ledger.get(key)
    assert (item.status, item.attempts) == (Status.REPLAYED, 2)
    assert outcomes(item) == ["received", "retry_scheduled", "replayed"]


def test_a_configuration_error_is_a_failed_attempt_with_the_policys_backoff(
    make_replayer, receive, target
):
    key = receive()
    target.fail_with(ConfigurationError("no usable AWS credentials"))

    with pytest.raises(AttemptFailed) as raised:
        make_replayer().replay(key)

    assert raised.value.retry_after is None


def test_a_give_up_target_error_fails_the_item_with_its_reason(
    make_replayer, receive, ledger, target, parking
):
    key = receive()
    target.fail_with(missing())

    assert make_replayer().replay(key) is ReplayOutcome.FAILED
    item = ledger.get(key)
    assert item.status is Status.FAILED
    assert item.last_error == "the queue is gone"
    assert target.delivered == []
    assert parking.parked == []


def test_an_unexpected_error_before_the_send_releases_the_claim_for_an_immediate_retry(
    make_replayer, receive, ledger, target, clock, directory, monkeypatch
):
    key = receive()
    monkeypatch.setattr(
        directory, "lookup", lambda *a, **k: (_ for _ in ()).throw(KeyError("a bug"))
    )

    with pytest.raises(KeyError, match="a bug"):
        make_replayer().replay(key)

    item = ledger.get(key)
    assert item.status is Status.RETRY_SCHEDULED
    assert item.next_attempt_at == round(clock.now(), 3)
    assert item.claim_token is None
    assert item.history[-1]["outcome"] == "error"
    assert target.calls == []
    monkeypatch.undo()
    assert make_replayer().replay(key) is ReplayOutcome.REPLAYED


def test_a_send_interrupted_midway_is_a_failed_attempt_that_may_have_been_delivered(
    make_replayer, receive, ledger, target
):
    key = receive()
    target.fail_with(RuntimeError("SoftTimeLimitExceeded"))

    with pytest.raises(AttemptFailed) as raised:
        make_replayer().replay(key)
    raised.value.schedule(30.0)

    item = ledger.get(key)
    assert (item.status, item.attempts) == (Status.RETRY_SCHEDULED, 1)
    assert item.last_error_code == "SendInterrupted"
    assert "may have received the event" in item.last_error
    assert item.next_attempt_at > ledger.clock.now()


# --- the conversation check -------------------------------------------------------------


def test_a_deleted_conversation_fails_the_item_without_a_send(
    make_replayer, receive, ledger, target, genesys
):
    del genesys.conversations[CONVERSATION_ID]
    key = receive()

    assert make_replayer().replay(key) is ReplayOutcome.FAILED
    item = ledger.get(key)
    assert "no longer exists in Genesys (404)" in item.last_error
    assert "REPLAY_REDELIVER_MISSING_CONVERSATION" in item.last_error
    assert target.calls == []


def test_a_deleted_conversation_is_redelivered_when_configured_to(
    make_replayer, receive, target, genesys
):
    del genesys.conversations[CONVERSATION_ID]
    key = receive()
    options = ReplayOptions(redeliver_missing_conversation=True, lease_seconds=LEASE_SECONDS)

    assert make_replayer(options=options).replay(key) is ReplayOutcome.REPLAYED
    assert len(target.delivered) == 1


def test_the_events_of_one_conversation_cost_one_lookup(make_replayer, receive, transport):
    replayer = make_replayer()
    for key in [receive(), receive(), receive()]:
        assert replayer.replay(key) is ReplayOutcome.REPLAYED

    assert len(lookups(transport.requests)) == 1


def test_with_verification_off_genesys_is_not_called(make_replayer, receive, target, transport):
    key = receive()
    options = ReplayOptions(verify_conversation=False, lease_seconds=LEASE_SECONDS)

    assert make_replayer(options=options).replay(key) is ReplayOutcome.REPLAYED
    assert transport.requests == []
    assert len(target.delivered) == 1


def test_without_a_directory_genesys_is_not_called(make_replayer, receive, transport):
    key = receive()

    assert make_replayer(directory=None).replay(key) is ReplayOutcome.REPLAYED
    assert transport.requests == []


def test_an_event_without_a_conversation_is_redelivered_without_lookup_or_news(
    make_replayer, receive, target, transport, news
):
    key = receive(conversation_id=None)

    assert make_replayer().replay(key) is ReplayOutcome.REPLAYED
    assert transport.requests == []
    assert news.marks == []
    assert target.delivered[0].conversation_id is None


def test_a_genesys_outage_on_the_lookup_waits_without_a_send_or_an_attempt(
    make_replayer, receive, target, genesys, ledger
):
    genesys.script(CONVERSATION_ID, 503)
    key = receive()

    with pytest.raises(Wait) as raised:
        make_replayer().replay(key)

    assert isinstance(raised.value.__cause__, GenesysServerError)
    assert target.calls == []
    item = ledger.get(key)
    assert (item.status, item.attempts, item.waits) == (Status.RETRY_SCHEDULED, 0, 1)
    assert item.last_error_code == "GenesysUnavailable"
    assert item.history[-1]["outcome"] == "waiting"


def test_a_genesys_429_on_the_lookup_waits_at_least_its_retry_after(
    make_replayer, receive, target, genesys, ledger
):
    genesys.script(CONVERSATION_ID, 429)
    key = receive()

    with pytest.raises(Wait) as raised:
        make_replayer().replay(key)

    assert isinstance(raised.value.__cause__, GenesysRateLimited)
    assert (raised.value.retry_after or 0.0) >= 17.0
    assert target.calls == []
    assert ledger.get(key).attempts == 0


def test_a_403_on_the_lookup_waits_for_an_operator_with_a_code_that_says_so(
    make_replayer, receive, target, genesys, ledger
):
    genesys.script(CONVERSATION_ID, 403)
    key = receive()

    with pytest.raises(Wait):
        make_replayer().replay(key)

    item = ledger.get(key)
    assert (item.status, item.attempts) == (Status.RETRY_SCHEDULED, 0)
    assert item.last_error_code == "GenesysForbidden"
    assert "conversation:communication:view" in item.last_error
    assert target.calls == []


def test_repeated_waits_for_genesys_are_one_history_entry_and_spend_no_attempt(
    make_replayer, receive, genesys, ledger, clock
):
    key = receive()
    for _ in range(12):
        genesys.script(CONVERSATION_ID, 503)
        with pytest.raises(Wait):
            make_replayer().replay(key)
        clock.advance(700)

    item = ledger.get(key)
    assert (item.attempts, item.waits) == (0, 12)
    waits = [h for h in item.history if h["outcome"] == "waiting"]
    assert len(waits) == 1 and waits[0]["times"] == 12
    assert item.history[0]["outcome"] == "received"
    # The run's first wait is kept: `inspect` says how long the item waited.
    began, last = parse_iso(waits[0]["since"]), parse_iso(waits[0]["at"])
    assert began is not None and last is not None
    assert (last - began).total_seconds() == 11 * 700
    assert _said(waits[0]).startswith("waited 2 h, 12 times: ")


def test_a_conversation_genesys_says_is_gone_still_fails(make_replayer, receive, genesys, ledger):
    genesys.script(CONVERSATION_ID, 404)
    key = receive()

    assert make_replayer().replay(key) is ReplayOutcome.FAILED
    assert ledger.get(key).last_error_code == "ConversationMissing"


def test_a_rate_limiter_wait_postpones_the_item_without_spending_an_attempt(
    make_replayer, receive, ledger, target, limiter, transport, clock, news
):
    key = receive()
    limiter.waits = [4.5]

    with pytest.raises(Wait) as raised:
        make_replayer().replay(key)

    assert raised.value.retry_after == 4.5
    item = ledger.get(key)
    assert item.status is Status.RETRY_SCHEDULED
    assert item.attempts == 0
    assert item.next_attempt_at == round(clock.now() + 4.5, 3)
    assert item.claim_token is None
    assert transport.requests == []
    assert target.calls == []
    assert news.marks == []


def test_a_postponed_item_is_replayed_when_its_wait_is_over(
    make_replayer, receive, ledger, limiter, clock
):
    key = receive()
    limiter.waits = [4.5]
    replayer = make_replayer()
    with pytest.raises(Wait):
        replayer.replay(key)

    assert replayer.replay(key) is ReplayOutcome.SKIPPED  # not due yet
    clock.advance(4.5)
    assert replayer.replay(key) is ReplayOutcome.REPLAYED
    assert ledger.get(key).attempts == 1


# --- news for tracking ------------------------------------------------------------------


def _replayed(make_replayer, key, target):
    return make_replayer().replay(key)


def _failed(make_replayer, key, target):
    target.fail_with(missing())
    return make_replayer().replay(key)


def _exhausted(make_replayer, key, target):
    target.fail_with(unavailable())
    return make_replayer(policy=RetryPolicy(max_attempts=1)).replay(key)


def _retry_scheduled(make_replayer, key, target):
    target.fail_with(unavailable())
    with pytest.raises(AttemptFailed) as raised:
        make_replayer().replay(key)
    raised.value.schedule(5.0)
    return ReplayOutcome.SKIPPED


@pytest.mark.parametrize(
    "scenario", [_replayed, _failed, _exhausted, _retry_scheduled], ids=lambda f: f.__name__[1:]
)
def test_every_outcome_of_a_conversation_is_news_for_tracking(
    make_replayer, receive, target, news, scenario
):
    key = receive()

    scenario(make_replayer, key, target)

    assert news.marks == [CONVERSATION_ID]


def test_news_that_cannot_be_told_does_not_undo_the_replay(make_replayer, receive, ledger, news):
    key = receive()
    news.broken = True

    assert make_replayer().replay(key) is ReplayOutcome.REPLAYED
    assert ledger.get(key).status is Status.REPLAYED
