"""The second day: a redrive is attempted against the world as it is now, a pass is
bounded in time, and a delivery is never repeated because its bookkeeping failed."""

from __future__ import annotations

import json

import pytest
import redis.exceptions
import redis.lock
from helpers import genesys_event, received_message

from dlq.arrivals import Parked
from dlq.ingest import admit, resume_parked
from dlq.ledger import Status
from dlq.replay import AttemptFailed, PassResults, ReplayOptions, ReplayOutcome, Wait
from dlq.replay.outcomes import RecordLost
from dlq.targets.errors import TargetRejected, TargetUnavailable

from .fakes import CONVERSATION_ID, LEASE_SECONDS, TARGET_ARN, RecordingEnqueuer, event_time
from .test_ordering import conversation, sent_ids


@pytest.fixture()
def ordered(make_replayer, enqueuer, cache):
    def build(**options):
        return make_replayer(
            requeue=enqueuer,
            results=PassResults(cache),
            options=ReplayOptions(lease_seconds=LEASE_SECONDS, **options),
        )

    return build


def unavailable() -> TargetUnavailable:
    return TargetUnavailable("503 from the target", target_arn=TARGET_ARN, code="HTTP503")


def rejected() -> TargetRejected:
    return TargetRejected("400 from the target", target_arn=TARGET_ARN, code="HTTP400")


# --- a redrive's task is not answered by an older pass's record ---------------------------


def test_a_redriven_item_is_attempted_although_a_pass_recorded_its_old_failure(
    ordered, receive, target, ledger, enqueuer
):
    first, second = conversation(receive, 2)
    target.fail_with(None, rejected())  # the first event is delivered, the second refused

    assert ordered().replay(first, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED
    assert ledger.get(second).status is Status.FAILED
    # The second event's own task comes later and ends on the pass's record.
    assert ordered().replay(second, lock=CONVERSATION_ID) is ReplayOutcome.FAILED

    redriven = ledger.redrive(second, note="redrive by operator")
    outcome = ordered().replay(second, lock=CONVERSATION_ID, generation=redriven.redriven_at)

    assert outcome is ReplayOutcome.REPLAYED
    assert sent_ids(target) == [first.event_id, second.event_id]
    assert ledger.get(second).status is Status.REPLAYED


def test_a_task_of_the_same_generation_still_ends_on_the_pass_record_without_a_send(
    ordered, receive, target, ledger
):
    first, second = conversation(receive, 2)
    ordered().replay(first, lock=CONVERSATION_ID)
    sends = len(target.calls)

    assert ordered().replay(second, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED
    assert len(target.calls) == sends


def test_the_first_attempt_after_a_redrive_forgets_the_cached_conversation_and_target(
    make_replayer, receive, target, ledger, directory, genesys, cache
):
    key = receive()
    del genesys.conversations[CONVERSATION_ID]
    assert make_replayer().replay(key) is ReplayOutcome.FAILED  # a 404, cached for minutes
    assert directory.cached(CONVERSATION_ID).exists is False

    genesys.add(CONVERSATION_ID)  # the division was granted
    ledger.redrive(key, note="redrive by operator")

    assert make_replayer().replay(key) is ReplayOutcome.REPLAYED
    assert target.forgotten == [(key.target_arn, key.rule_arn)]


def test_an_ordered_pass_over_a_redriven_item_looks_the_conversation_up_again(
    ordered, receive, target, ledger, directory, genesys
):
    key = receive()
    del genesys.conversations[CONVERSATION_ID]
    assert ordered().replay(key, lock=CONVERSATION_ID) is ReplayOutcome.FAILED

    genesys.add(CONVERSATION_ID)
    redriven = ledger.redrive(key, note="redrive by operator")

    outcome = ordered().replay(key, lock=CONVERSATION_ID, generation=redriven.redriven_at)
    assert outcome is ReplayOutcome.REPLAYED
    assert directory.cached(CONVERSATION_ID).exists is True


# --- a pass is bounded ----------------------------------------------------------------------


def test_a_pass_starts_no_attempt_that_could_not_end_before_the_time_limit(
    ordered, receive, target, ledger, clock
):
    keys = conversation(receive, 5)
    target.on_send = lambda: clock.advance(40)  # a slow target

    with pytest.raises(Wait):
        ordered(attempt_bound_seconds=50, time_limit_seconds=160).replay(
            keys[4], lock=CONVERSATION_ID
        )

    # 160 s less the lock wait (1 s) and one attempt (50 s): attempts may start until
    # 109 s in; they end at 40, 80, 120.
    assert sent_ids(target) == [k.event_id for k in keys[:3]]
    assert [ledger.get(k).status for k in keys[3:]] == [Status.RECEIVED] * 2


def test_a_pass_whose_lock_was_taken_over_stops_before_its_next_attempt(
    ordered, receive, target, ledger, cache, clock
):
    keys = conversation(receive, 3)

    def steal() -> None:  # a slow send: the lock lapsed, and another worker took it
        clock.advance(LEASE_SECONDS / 2 + 1)
        for name in cache.scan_iter("dlq:lock:*"):
            cache.set(name, "another worker")

    target.on_send = steal

    with pytest.raises(Wait):
        ordered(attempt_bound_seconds=30, time_limit_seconds=400).replay(
            keys[2], lock=CONVERSATION_ID
        )

    assert sent_ids(target) == [keys[0].event_id]


def test_a_pass_renews_its_lock_once_half_its_ttl_has_gone(
    ordered, receive, target, clock, monkeypatch
):
    keys = conversation(receive, 4)
    renewed_at: list[float] = []

    def reacquire(lock) -> bool:
        renewed_at.append(clock.now() - start)
        return True

    monkeypatch.setattr(redis.lock.Lock, "reacquire", reacquire)
    target.on_send = lambda: clock.advance(40)
    start = clock.now()

    ordered(attempt_bound_seconds=60, time_limit_seconds=400).replay(keys[3], lock=CONVERSATION_ID)

    # The lock's TTL is 150 s: renewed before the attempt at 80 s (past 75 s), which
    # lasts it until 230 s, past the attempt at 120 s.
    assert sent_ids(target) == [k.event_id for k in keys]
    assert renewed_at == [80.0]


# --- a delivery is never repeated because its bookkeeping failed ---------------------------


class FlakyFinish:
    """Wraps the ledger: the first `failures` writes of an outcome raise."""

    def __init__(self, ledger, failures: int) -> None:
        self._ledger = ledger
        self.failures = failures

    def finish(self, *args, **kwargs):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the ledger did not answer")
        return self._ledger.finish(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._ledger, name)


def test_a_delivered_event_whose_outcome_write_fails_once_is_recorded_and_sent_once(
    make_replayer, receive, target, ledger
):
    key = receive()

    outcome = make_replayer(ledger=FlakyFinish(ledger, failures=1)).replay(key)

    assert outcome is ReplayOutcome.REPLAYED
    assert len(target.calls) == 1
    assert ledger.get(key).status is Status.REPLAYED


def test_a_delivery_the_ledger_never_records_stays_leased_instead_of_released(
    make_replayer, receive, target, ledger, clock
):
    key = receive()

    with pytest.raises(RecordLost, match="may be sent again"):
        make_replayer(ledger=FlakyFinish(ledger, failures=10_000)).replay(key)

    item = ledger.get(key)
    assert item.status is Status.IN_PROGRESS  # not released for an immediate retry
    assert make_replayer().replay(key) is ReplayOutcome.SKIPPED
    assert len(target.calls) == 1


# --- order does not depend on the ingest's speed ----------------------------------------


@pytest.fixture()
def arrivals(cache, clock):
    from dlq.arrivals import Arrivals

    return Arrivals(cache, keep_seconds=30, clock=clock)  # the hold: at most 30 s


@pytest.fixture()
def held_back(make_replayer, enqueuer, cache, arrivals):
    def build(**options):
        return make_replayer(
            requeue=enqueuer,
            results=PassResults(cache),
            arrivals=arrivals,
            options=ReplayOptions(
                lease_seconds=LEASE_SECONDS,
                ingest_quiet_seconds=2,
                **options,
            ),
        )

    return build


def test_a_pass_waits_while_its_conversation_is_still_arriving_then_delivers_in_order(
    held_back, receive, target, arrivals, clock
):
    later = receive(age=10)
    arrivals.arrived(CONVERSATION_ID)

    with pytest.raises(Wait) as raised:
        held_back().replay(later, lock=CONVERSATION_ID)
    assert 2 <= (raised.value.retry_after or 0.0) < 3
    assert target.calls == []

    earlier = receive(age=20)  # the earlier event comes out of the DLQ meanwhile
    arrivals.arrived(CONVERSATION_ID)
    clock.advance(2.5)

    assert held_back().replay(later, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED
    assert sent_ids(target) == [earlier.event_id, later.event_id]


def test_while_the_poller_drains_the_dlq_every_pass_waits(
    held_back, receive, target, arrivals, clock
):
    key = receive()
    arrivals.arrived(CONVERSATION_ID)
    clock.advance(5)  # quiet for longer than REPLAY_INGEST_QUIET_SECONDS...
    arrivals.draining(True, for_seconds=25)

    with pytest.raises(Wait):  # ...but the DLQ still drains
        held_back().replay(key, lock=CONVERSATION_ID)

    arrivals.draining(False, for_seconds=25)
    assert held_back().replay(key, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED


@pytest.mark.parametrize("waited", [0, 4, 25])
def test_while_the_dlq_drains_a_pass_waits_until_its_hold_ends_unless_the_drain_ends_first(
    held_back, receive, arrivals, clock, waited
):
    key = receive()
    arrivals.arrived(CONVERSATION_ID)
    clock.advance(waited)
    arrivals.draining(True, for_seconds=25)

    with pytest.raises(Wait) as raised:
        held_back().replay(key, lock=CONVERSATION_ID)

    ends_in = 30 - waited  # the hold is 30 s
    assert ends_in <= (raised.value.retry_after or 0.0) < ends_in + 0.5
    assert "sent again when the drain ends" in str(raised.value)


def test_one_task_of_a_conversation_parks_its_pass_for_the_drain_the_others_end(
    held_back, receive, arrivals, clock, enqueuer
):
    first, second = receive(), receive()
    arrivals.arrived(CONVERSATION_ID)
    clock.advance(4)
    arrivals.draining(True, for_seconds=25)

    with pytest.raises(Wait) as turn:
        held_back().replay(first, lock=CONVERSATION_ID)
    assert held_back().replay(second, lock=CONVERSATION_ID) is ReplayOutcome.PARKED

    assert 26 <= (turn.value.retry_after or 0.0) < 26.5  # the hold ends at 30 s
    assert enqueuer.keys == []  # no task of the second comes back: the pass replays it
    assert arrivals.unpark() == [Parked(first, CONVERSATION_ID, None)]


def test_each_line_of_a_conversation_parks_a_pass_of_its_own(
    held_back, receive, arrivals, target, clock
):
    other_target = TARGET_ARN + "-crm"
    first, second = receive(), receive(target_arn=other_target)
    arrivals.arrived(CONVERSATION_ID)
    arrivals.draining(True, for_seconds=25)

    for key in (first, second):  # one line each: both take their line's turn
        with pytest.raises(Wait, match="sent again when the drain ends"):
            held_back().replay(key, lock=CONVERSATION_ID)
    arrivals.draining(False, for_seconds=25)
    sent = RecordingEnqueuer()
    assert resume_parked(arrivals, sent, after=2.0) == 2

    clock.advance(2.5)
    for key in sent.keys:
        assert held_back().replay(key, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED
    assert set(sent.keys) == {first, second}


def test_a_pass_past_its_own_item_that_stops_at_its_bound_sends_the_rest_on(
    held_back, receive, target, ledger, clock, enqueuer
):
    keys = conversation(receive, 4)
    target.on_send = lambda: clock.advance(40)

    outcome = held_back(attempt_bound_seconds=50, time_limit_seconds=120).replay(
        keys[0], lock=CONVERSATION_ID
    )

    # Attempts may start until 69 s in: at 0 and 40 s. Its own item (the first) is
    # replayed; the third, where it stopped, goes on in a new task (the line's other
    # tasks may have ended, left to this pass).
    assert outcome is ReplayOutcome.REPLAYED
    assert sent_ids(target) == [k.event_id for k in keys[:2]]
    assert enqueuer.keys == [keys[2]]


def waited_for_the_drain(held_back, receive, arrivals):
    """Two items of a conversation whose tasks came while the DLQ drains: the first
    parked the pass and waits, the second is left to it."""
    first, second = receive(), receive()
    arrivals.arrived(CONVERSATION_ID)
    arrivals.draining(True, for_seconds=25)
    with pytest.raises(Wait):
        held_back().replay(first, lock=CONVERSATION_ID)
    assert held_back().replay(second, lock=CONVERSATION_ID) is ReplayOutcome.PARKED
    return first, second


def test_the_receive_that_ends_the_drain_sends_each_parked_pass_once_a_quiet_period_later(
    held_back, receive, arrivals, clock, target
):
    first, second = waited_for_the_drain(held_back, receive, arrivals)
    sent = RecordingEnqueuer()

    assert arrivals.draining(False, for_seconds=25)  # the receive that found the DLQ empty
    assert resume_parked(arrivals, sent, after=2.0) == 1
    assert resume_parked(arrivals, sent, after=2.0) == 0  # taken once

    assert (sent.keys, sent.parked) == ([first], [True])
    assert 2.0 <= sent.countdowns[0] < 2.5
    clock.advance(2.5)  # the parked pass runs: both items, in order
    assert held_back().replay(first, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED
    assert sorted(sent_ids(target)) == sorted([first.event_id, second.event_id])


def parked_until_the_drain_ends(held_back, receive, arrivals, clock):
    """An older and a newer item of a conversation whose tasks came while the DLQ drained:
    the newer's parked the pass, the older's ended `parked`; the drain has ended."""
    older, newer = receive(age=20), receive(age=10)
    arrivals.arrived(CONVERSATION_ID)
    arrivals.draining(True, for_seconds=25)
    with pytest.raises(Wait):
        held_back().replay(newer, lock=CONVERSATION_ID)  # takes the turn, parks the pass
    assert held_back().replay(older, lock=CONVERSATION_ID) is ReplayOutcome.PARKED
    arrivals.draining(False, for_seconds=25)
    clock.advance(2.5)
    return older, newer


def test_a_parked_pass_sends_each_item_it_ended_failed_a_task_that_fails_on_its_record(
    held_back, receive, arrivals, clock, target, enqueuer
):
    older, newer = parked_until_the_drain_ends(held_back, receive, arrivals, clock)
    target.fail_with(rejected(), None)  # the older event is refused, the newer delivered

    outcome = held_back().replay(newer, lock=CONVERSATION_ID, parked=True)

    # The older one's own task ended `parked`: a new one reports its failure (Flower's
    # Failed counts one task per event that did not reach its target).
    assert outcome is ReplayOutcome.REPLAYED
    assert enqueuer.keys == [older]
    assert held_back().replay(older, lock=CONVERSATION_ID) is ReplayOutcome.FAILED
    assert len(target.calls) == 2


def test_a_parked_pass_whose_own_item_fails_for_now_still_reports_the_others(
    held_back, receive, arrivals, clock, target, enqueuer
):
    older, newer = parked_until_the_drain_ends(held_back, receive, arrivals, clock)
    target.fail_with(rejected(), unavailable())  # its own item: a retry, raised

    with pytest.raises(AttemptFailed):
        held_back().replay(newer, lock=CONVERSATION_ID, parked=True)

    assert enqueuer.keys == [older]


def test_the_parked_items_first_task_back_at_the_hold_end_ends_on_the_passs_record(
    held_back, receive, arrivals, clock, target, ledger, monkeypatch
):
    first, second = waited_for_the_drain(held_back, receive, arrivals)
    arrivals.draining(False, for_seconds=25)
    resume_parked(arrivals, RecordingEnqueuer(), after=2.0)
    clock.advance(2.5)
    assert held_back().replay(first, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED

    clock.advance(30)  # the hold's end: the parked item's first task comes back
    monkeypatch.setattr(ledger, "by_conversation", None)  # any pass would fail

    assert held_back().replay(first, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED
    assert sorted(sent_ids(target)) == sorted([first.event_id, second.event_id])  # once each


def test_a_drain_that_starts_again_before_the_parked_pass_runs_lets_it_park_again(
    held_back, receive, arrivals, clock
):
    key = receive()
    arrivals.arrived(CONVERSATION_ID)
    arrivals.draining(True, for_seconds=25)
    with pytest.raises(Wait):
        held_back().replay(key, lock=CONVERSATION_ID)
    arrivals.draining(False, for_seconds=25)
    resume_parked(arrivals, RecordingEnqueuer(), after=2.0)
    arrivals.draining(True, for_seconds=25)  # another poller's receive brings messages

    with pytest.raises(Wait, match="sent again when the drain ends"):
        held_back().replay(key, lock=CONVERSATION_ID)
    assert [parked.key for parked in arrivals.unpark()] == [key]


def test_a_pass_parked_by_a_worker_that_predates_lines_is_still_sent_and_its_turn_ended(
    arrivals, cache, receive
):
    key = receive()
    old_turn = f"dlq:arrival-turn:{CONVERSATION_ID}"
    cache.set(old_turn, "1")
    cache.hset("dlq:arrival:parked", CONVERSATION_ID, Parked(key, CONVERSATION_ID).to_json())

    assert [parked.key for parked in arrivals.unpark()] == [key]
    assert not cache.exists(old_turn)


def test_without_a_drain_every_task_waits_only_the_rest_of_the_quiet_period(
    held_back, receive, arrivals, clock
):
    first, second = receive(), receive()
    arrivals.arrived(CONVERSATION_ID)
    clock.advance(20)
    arrivals.arrived(CONVERSATION_ID)  # the Lambda front door: no drain to wait for
    clock.advance(1.5)

    for key in (first, second):
        with pytest.raises(Wait) as raised:
            held_back().replay(key, lock=CONVERSATION_ID)
        assert 0.5 <= (raised.value.retry_after or 0.0) < 1.0  # not the 21.5 s held


def test_a_workers_read_of_the_drain_flag_stands_for_its_holds_a_moment(cache, clock):
    from dlq.arrivals import Arrivals

    poller = Arrivals(cache, keep_seconds=30, clock=clock)
    worker = Arrivals(cache, keep_seconds=30, draining_reuse_seconds=0.5, clock=clock)
    poller.arrived(CONVERSATION_ID)
    poller.draining(True, for_seconds=25)
    clock.advance(5)
    assert worker.hold(CONVERSATION_ID, quiet_seconds=2).draining

    poller.draining(False, for_seconds=25)  # the drain ends
    clock.advance(0.4)
    assert worker.hold(CONVERSATION_ID, quiet_seconds=2).draining  # read 0.4 s ago
    assert not worker.is_draining()  # a race's re-check reads it afresh
    clock.advance(0.6)
    assert not worker.hold(CONVERSATION_ID, quiet_seconds=2).draining


def test_an_item_whose_hold_has_lapsed_goes_while_the_dlq_drains(
    held_back, receive, target, arrivals
):
    key = receive()  # its arrival note lapsed (or the reconciler sent it again)
    arrivals.draining(True, for_seconds=25)

    assert held_back().replay(key, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED


def test_a_wait_for_arrivals_takes_no_lock_and_reads_no_ledger(
    held_back, receive, arrivals, cache, ledger, monkeypatch
):
    key = receive()
    arrivals.arrived(CONVERSATION_ID)
    monkeypatch.setattr(ledger, "get", None)  # any ledger read would fail
    monkeypatch.setattr(ledger, "by_conversation", None)

    cache.set(f"dlq:lock:{CONVERSATION_ID}", "another pass")

    with pytest.raises(Wait, match="on their way from the DLQ"):  # not "busy"
        held_back().replay(key, lock=CONVERSATION_ID)


def test_the_hold_for_arrivals_ends_after_its_maximum_so_a_trickle_still_drains(
    held_back, receive, target, arrivals, clock
):
    key = receive()
    arrivals.arrived(CONVERSATION_ID)
    clock.advance(30)  # arrived 30 s ago; the poller has kept draining all along
    arrivals.draining(True, for_seconds=25)

    assert held_back().replay(key, lock=CONVERSATION_ID) is ReplayOutcome.REPLAYED


def test_status_counts_what_waits_for_genesys_by_its_code(
    make_replayer, receive, genesys, ledger, cache, clock
):
    from dlq.metrics.report import status_report

    waiting, forbidden, delivered = receive(), receive(), receive(conversation_id=None)
    genesys.script(CONVERSATION_ID, 503, 403)
    for key in (waiting, forbidden):
        with pytest.raises(Wait):
            make_replayer().replay(key)
    make_replayer().replay(delivered)

    report = status_report(ledger, cache, "ledger-t", now=clock.now())

    assert report["waiting_for_genesys"] == {"GenesysForbidden": 1, "GenesysUnavailable": 1}


def test_a_pass_parked_as_the_drain_ends_comes_back_after_the_quiet_period(
    held_back, receive, arrivals, monkeypatch
):
    key = receive()
    arrivals.arrived(CONVERSATION_ID)
    arrivals.draining(True, for_seconds=25)
    park = arrivals.park

    def park_as_the_drain_ends(conversation_id, replay):
        park(conversation_id, replay)
        arrivals.draining(False, for_seconds=25)  # its end may have sent the parked passes

    monkeypatch.setattr(arrivals, "park", park_as_the_drain_ends)

    with pytest.raises(Wait) as raised:
        held_back().replay(key, lock=CONVERSATION_ID)

    assert 2 <= (raised.value.retry_after or 0.0) < 2.5  # the quiet period, not the hold's 30 s


# --- the poller parks a line's pass itself while the DLQ drains -------------------------


@pytest.fixture()
def drained_in(ledger, arrivals, clock):
    """Admit a conversation event for `target_arn` as the poller does while the DLQ
    drains; answers its key."""

    def admit_one(enqueuer: RecordingEnqueuer, *, target_arn: str = TARGET_ARN, **kw):
        event = genesys_event(conversation_id=CONVERSATION_ID)
        event["time"] = event_time(clock.now())
        message = received_message(json.dumps(event), target_arn)
        result = admit(message, ledger=ledger, enqueuer=enqueuer, arrivals=arrivals, **kw)
        assert result.key is not None
        return result.key

    return admit_one


def test_while_the_dlq_drains_only_a_lines_first_event_gets_a_task_back_at_the_hold_end(
    drained_in, arrivals
):
    sent = RecordingEnqueuer()
    arrivals.draining(True, for_seconds=25)
    first, second, third = (drained_in(sent, draining=True) for _ in range(3))
    crm = drained_in(sent, draining=True, target_arn=TARGET_ARN + "-crm")

    # One task a line (the conversation's events for one target), parked: it comes back
    # when the hold (30 s) ends, in case the drain's end is never seen.
    assert sent.keys == [first, crm]
    assert sent.parked == [True, True]
    assert all(30 <= countdown < 30.5 for countdown in sent.countdowns)
    assert {p.key for p in arrivals.unpark()} == {first, crm}
    assert second != third  # both wait in the ledger for their line's pass


def test_the_lambda_front_door_cannot_tell_a_drain_and_sends_every_event(drained_in, arrivals):
    sent = RecordingEnqueuer()
    keys = [drained_in(sent) for _ in range(3)]  # draining=False: the Lambda's handler

    assert sent.keys == keys
    assert sent.countdowns == [0.0, 0.0, 0.0]
    assert arrivals.unpark() == []


def test_the_drains_end_sends_the_parked_pass_which_replays_the_whole_line_in_order(
    drained_in, arrivals, held_back, target, clock, cache
):
    sent = RecordingEnqueuer()
    arrivals.draining(True, for_seconds=25)
    keys = [drained_in(sent, draining=True) for _ in range(3)]

    assert arrivals.draining(False, for_seconds=25)  # the receive that found it empty
    passes = RecordingEnqueuer()
    assert resume_parked(arrivals, passes, after=2.0) == 1
    clock.advance(2.5)
    assert held_back().replay(passes.keys[0], lock=CONVERSATION_ID, parked=True) is (
        ReplayOutcome.REPLAYED
    )
    assert sorted(sent_ids(target)) == sorted(k.event_id for k in keys)

    clock.advance(30)  # the first event's own task, back at the hold's end: on the record
    assert held_back().replay(keys[0], lock=CONVERSATION_ID, parked=True) is (
        ReplayOutcome.REPLAYED
    )
    assert len(target.calls) == 3


def test_a_pass_that_runs_while_the_dlq_drains_lets_its_lines_next_events_park_again(
    drained_in, arrivals, held_back, target, clock
):
    sent = RecordingEnqueuer()
    arrivals.draining(True, for_seconds=25)
    first = drained_in(sent, draining=True)
    clock.advance(31)  # a long drain: the hold ends, the first task comes back
    arrivals.draining(True, for_seconds=25)

    assert held_back().replay(first, lock=CONVERSATION_ID, parked=True) is (ReplayOutcome.REPLAYED)
    later = drained_in(sent, draining=True)  # its line's pass has run: it parks a new one

    assert sent.keys == [first, later]
    assert [p.key for p in arrivals.unpark()] == [later]


def test_an_arrival_note_that_fails_costs_no_event_its_task(drained_in, arrivals, monkeypatch):
    def refused(*args, **kwargs):
        raise redis.exceptions.ConnectionError("Redis is away")

    monkeypatch.setattr(arrivals, "arrived", refused)
    sent = RecordingEnqueuer()
    keys = [drained_in(sent, draining=True) for _ in range(2)]

    assert sent.keys == keys  # each gets its task at once, as without the drain
    assert sent.parked == [False, False]


def test_an_empty_receive_sends_what_this_poller_parked_after_another_ended_the_drain(
    drained_in, arrivals, cache, clock
):
    from dlq.arrivals import Arrivals

    other_receiver = Arrivals(cache, keep_seconds=30, clock=clock)
    sent = RecordingEnqueuer()
    arrivals.draining(True, for_seconds=25)
    assert other_receiver.draining(False, for_seconds=25)  # ended the drain, took nothing
    assert resume_parked(other_receiver, RecordingEnqueuer(), after=2.0) == 0
    key = drained_in(sent, draining=True)  # this receive's message parks after that

    assert not arrivals.draining(False, for_seconds=25)  # the drain was ended already...
    assert arrivals.parked_here()  # ...but this process parked since: the door sends it
    assert [p.key for p in arrivals.unpark()] == [key]
    assert not arrivals.parked_here()


def test_a_lines_first_event_that_fails_is_reported_once_by_the_pass_not_again_at_the_hold_end(
    drained_in, arrivals, held_back, target, clock, enqueuer
):
    sent = RecordingEnqueuer()
    arrivals.draining(True, for_seconds=25)
    first, second = drained_in(sent, draining=True), drained_in(sent, draining=True)
    arrivals.draining(False, for_seconds=25)
    passes = RecordingEnqueuer()
    resume_parked(arrivals, passes, after=2.0)
    target.fail_with(rejected(), rejected())  # both refused for good
    clock.advance(2.5)

    # The parked pass's task answers its own item (a failed task in Flower) and sends the
    # other a task that fails on the record: one failed task for each event.
    assert held_back().replay(first, lock=CONVERSATION_ID, parked=True) is ReplayOutcome.FAILED
    assert enqueuer.keys == [second]
    assert held_back().replay(second, lock=CONVERSATION_ID) is ReplayOutcome.FAILED
    clock.advance(30)  # the first event's own task, back at the hold's end
    assert held_back().replay(first, lock=CONVERSATION_ID, parked=True) is ReplayOutcome.SKIPPED
    assert len(target.calls) == 2
