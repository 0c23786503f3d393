"""Batch verification: the directory's prefetch, the to-verify list and the prefetch run."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import uuid
from typing import Any

import fakeredis
import pytest
from helpers import genesys_event, received_message

from dlq.arrivals import DRAINING_KEY, Arrivals, Parked, Sent, first_arrival_key
from dlq.clock import FakeClock
from dlq.errors import BudgetWait
from dlq.events import EventKey
from dlq.genesys.client import GenesysClient
from dlq.genesys.directory import (
    BATCH_SIZE_KEY,
    ConversationDirectory,
    PrefetchPending,
)
from dlq.genesys.errors import BatchRefused
from dlq.genesys.models import AnalyticsConversation, Conversation, tracking_participant
from dlq.genesys.pending import PendingVerifications
from dlq.ingest import admit
from dlq.ledger import MemoryLedger, Status
from dlq.ratelimit import Priority
from dlq.replay import ReplayOutcome, Wait
from dlq.verify import BUSY_RETRY_SECONDS, LOCK_KEY, Prefetcher, PrefetchOutcome
from ingest.frontdoor import FrontDoor

from .fakes import (
    CONVERSATION_ID,
    CUSTOMER_ID,
    TARGET_ARN,
    RecordingEnqueuer,
    ScriptedGenesys,
    ScriptedLimiter,
    details_calls,
    error_response,
    lookups,
)

WAIT_SECONDS = 15.0


class Scheduled:
    """Records the prefetch runs scheduled (their delays)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture()
def scheduled() -> Scheduled:
    return Scheduled()


@pytest.fixture()
def pending(cache: fakeredis.FakeRedis, scheduled: Scheduled, clock: FakeClock):
    return PendingVerifications(cache, scheduled, gather_seconds=1.0, clock=clock)


@pytest.fixture()
def make_directory(client: GenesysClient, cache, pending, clock):
    def build(**overrides: Any) -> ConversationDirectory:
        parts: dict[str, Any] = {
            "pending": pending,
            "verify_batch": 100,
            "verify_wait_seconds": WAIT_SECONDS,
            # No waiting in the test's thread unless a test asks for it.
            "block_seconds": 0.0,
            "clock": clock,
        }
        parts.update(overrides)
        return ConversationDirectory(client, cache, **parts)

    return build


@pytest.fixture()
def verifying(make_directory) -> ConversationDirectory:
    return make_directory()


def known_ids(genesys: ScriptedGenesys, count: int) -> list[str]:
    return [genesys.add(str(uuid.uuid4())) for _ in range(count)]


# --- the directory's prefetch -----------------------------------------------------------


def test_prefetch_fills_the_entries_lookup_reads_so_a_verified_conversation_costs_no_get(
    verifying, genesys, transport
):
    report = verifying.prefetch([CONVERSATION_ID])

    assert report.found == (CONVERSATION_ID,)
    known = verifying.lookup(CONVERSATION_ID)
    assert known.exists
    assert known.participant_id == CUSTOMER_ID
    body = genesys.conversations[CONVERSATION_ID]
    assert known.participant_ids == tuple(p["id"] for p in body["participants"])
    assert lookups(transport.requests) == []
    assert details_calls(transport.requests) == [[CONVERSATION_ID]]


def test_prefetch_and_the_single_get_cache_the_same_entry(
    verifying, make_directory, genesys, cache
):
    verifying.prefetch([CONVERSATION_ID])
    from_batch = verifying.cached(CONVERSATION_ID)
    cache.flushall()
    from_get = make_directory().lookup(CONVERSATION_ID)
    assert from_batch == from_get


def test_prefetch_asks_at_the_priority_given(verifying, limiter: ScriptedLimiter):
    verifying.prefetch([CONVERSATION_ID], priority=Priority.HIGH)
    assert limiter.asked == [Priority.HIGH]


def test_ids_analytics_leaves_out_are_not_cached_and_fall_back_to_the_single_get(
    verifying, genesys, transport
):
    lagging, gone = known_ids(genesys, 1)[0], str(uuid.uuid4())
    genesys.analytics_hidden.add(lagging)

    report = verifying.prefetch([CONVERSATION_ID, lagging, gone])

    assert report.found == (CONVERSATION_ID,)
    assert set(report.absent) == {lagging, gone}
    assert verifying.cached(lagging) is None
    assert verifying.cached(gone) is None
    assert verifying.lookup(lagging).exists
    assert not verifying.lookup(gone).exists  # only the single GET's 404 says missing
    assert len(lookups(transport.requests)) == 2


def test_prefetch_skips_what_is_already_cached(verifying, transport):
    verifying.lookup(CONVERSATION_ID)
    report = verifying.prefetch([CONVERSATION_ID])
    assert (report.already_known, report.calls) == (1, 0)
    assert details_calls(transport.requests) == []


def test_prefetch_splits_into_batches_of_the_configured_size(make_directory, genesys, transport):
    ids = known_ids(genesys, 25)
    report = make_directory(verify_batch=10).prefetch(ids)
    assert len(report.found) == 25
    assert [len(call) for call in details_calls(transport.requests)] == [10, 10, 5]


def test_a_400_halves_the_batch_retries_the_same_ids_and_the_fleet_remembers(
    make_directory, genesys, transport, cache
):
    ids = known_ids(genesys, 100)
    genesys.analytics_limit = 30

    report = make_directory().prefetch(ids)

    assert set(report.found) == set(ids)
    sizes = [len(call) for call in details_calls(transport.requests)]
    assert sizes[:2] == [100, 50]  # refused, refused
    assert sizes[2:] == [25, 25, 25, 25]
    assert int(cache.get(BATCH_SIZE_KEY)) == 25
    transport.requests.clear()
    cache.delete(*[f"dlq:conv:{i}" for i in ids])

    another_worker = make_directory()
    assert another_worker.batch_size() == 25
    another_worker.prefetch(ids[:40])
    assert [len(call) for call in details_calls(transport.requests)] == [25, 15]


def test_a_single_id_refused_is_left_to_its_own_lookup(verifying, genesys):
    genesys.details_answers.append(error_response(400))
    report = verifying.prefetch([CONVERSATION_ID])
    assert report.absent == (CONVERSATION_ID,)
    assert verifying.cached(CONVERSATION_ID) is None


def test_the_client_raises_batch_refused_on_a_400(client, genesys):
    genesys.details_answers.append(error_response(400))
    with pytest.raises(BatchRefused) as refused:
        client.get_conversation_details([CONVERSATION_ID, str(uuid.uuid4())])
    assert refused.value.size == 2


def test_an_empty_answer_means_none_known(client, genesys):
    assert client.get_conversation_details([str(uuid.uuid4())]) == []


def test_the_tracked_participant_follows_one_rule_for_both_reads():
    pairs = [("a", "agent"), ("e", "external"), ("c", "customer")]
    assert tracking_participant(pairs) == "c"
    assert tracking_participant(pairs[:2]) == "e"
    assert tracking_participant(pairs[:1]) is None
    single = Conversation.model_validate(
        {"id": "x", "participants": [{"id": i, "purpose": p} for i, p in pairs[:2]]}
    )
    batch = AnalyticsConversation.model_validate(
        {
            "conversationId": "x",
            "participants": [{"participantId": i, "purpose": p} for i, p in pairs[:2]],
        }
    )
    assert single.customer_participant_id() == batch.customer_participant_id() == "e"


# --- waiting for an imminent batch ------------------------------------------------------


def test_a_replay_lookup_waits_for_an_imminent_batch_instead_of_its_own_get(
    verifying, pending, clock, transport
):
    pending.add(CONVERSATION_ID)
    clock.advance(3)
    with pytest.raises(PrefetchPending) as waiting:
        verifying.lookup(CONVERSATION_ID, await_prefetch=True)
    assert isinstance(waiting.value, BudgetWait)
    assert 0 < (waiting.value.retry_after or 0) <= WAIT_SECONDS - 3 + 0.5
    assert transport.requests == []


def test_a_replay_lookup_takes_the_batchs_answer_when_it_comes_within_the_short_wait(
    make_directory, verifying, pending, transport
):
    pending.add(CONVERSATION_ID)
    waiting = make_directory(block_seconds=10.0)

    def batch() -> None:
        time.sleep(0.3)  # the verify task runs while the replay waits
        verifying.prefetch([CONVERSATION_ID])
        pending.remove([CONVERSATION_ID])

    running = threading.Thread(target=batch)
    running.start()
    known = waiting.lookup(CONVERSATION_ID, await_prefetch=True)
    running.join(10)

    assert known.exists
    assert lookups(transport.requests) == []  # no GET of its own, no task sent back


def test_a_replay_lookup_goes_back_to_the_queue_when_the_batch_is_slower_than_the_wait(
    make_directory, pending, transport
):
    pending.add(CONVERSATION_ID)
    with pytest.raises(PrefetchPending):
        make_directory(block_seconds=0.2).lookup(CONVERSATION_ID, await_prefetch=True)
    assert transport.requests == []


def test_after_the_wait_the_single_get_goes_ahead(verifying, pending, clock, transport):
    pending.add(CONVERSATION_ID)
    clock.advance(WAIT_SECONDS)
    assert verifying.lookup(CONVERSATION_ID, await_prefetch=True).exists
    assert len(lookups(transport.requests)) == 1


def test_tracking_lookups_never_wait_for_a_batch(verifying, pending, transport):
    pending.add(CONVERSATION_ID)
    assert verifying.lookup(CONVERSATION_ID, priority=Priority.LOW).exists
    assert len(lookups(transport.requests)) == 1


def test_a_conversation_not_waiting_is_looked_up_at_once(verifying, transport):
    assert verifying.lookup(CONVERSATION_ID, await_prefetch=True).exists
    assert len(lookups(transport.requests)) == 1


def test_the_replayer_postpones_without_spending_an_attempt_while_a_batch_is_imminent(
    make_replayer, verifying, pending, receive, ledger: MemoryLedger, target, clock
):
    key = receive()
    pending.add(CONVERSATION_ID)
    with pytest.raises(Wait):
        make_replayer(directory=verifying).replay(key)
    item = ledger.get(key)
    assert (item.status, item.attempts) == (Status.RETRY_SCHEDULED, 0)
    assert target.calls == []

    verifying.prefetch([CONVERSATION_ID])
    pending.remove([CONVERSATION_ID])
    clock.advance(3)
    assert make_replayer(directory=verifying).replay(key) is ReplayOutcome.REPLAYED


# --- the to-verify list and the prefetch run --------------------------------------------


def test_a_burst_of_ingests_marks_each_conversation_once_and_schedules_one_run(
    pending, scheduled, ledger, receive_message_of, clock
):
    enqueuer = RecordingEnqueuer()
    ids = [str(uuid.uuid4()) for _ in range(3)]
    for conversation_id in ids * 2:
        clock.advance(0.1)
        admit(
            receive_message_of(conversation_id),
            ledger=ledger,
            enqueuer=enqueuer,
            verifications=pending,
        )
    assert [i for i, _ in pending.oldest(10)] == ids
    assert scheduled.delays == [pending.gather_seconds]


def test_a_duplicate_message_marks_nothing(pending, ledger, receive_message_of):
    message = receive_message_of(CONVERSATION_ID)
    admit(message, ledger=ledger, enqueuer=RecordingEnqueuer(), verifications=pending)
    pending.remove([CONVERSATION_ID])
    duplicate = dataclasses.replace(message, message_id=str(uuid.uuid4()))
    admit(duplicate, ledger=ledger, enqueuer=RecordingEnqueuer(), verifications=pending)
    assert pending.count() == 0


def test_a_conversations_later_events_in_one_hold_mark_it_once(
    pending, ledger, receive_message_of, cache, clock
):
    arrivals = Arrivals(cache, keep_seconds=60, clock=clock)
    sent: list[str] = []

    def arrive() -> None:
        admit(
            receive_message_of(CONVERSATION_ID),
            ledger=ledger,
            enqueuer=RecordingEnqueuer(),
            verifications=pending,
            arrivals=arrivals,
        )
        sent.append(CONVERSATION_ID)

    arrive()
    pending.remove([CONVERSATION_ID])  # a batch run verified it
    arrive()
    clock.advance(30)
    arrive()
    assert pending.count() == 0  # later events of the hold: verified (or marked) already

    cache.delete(first_arrival_key(CONVERSATION_ID))  # the hold ended (its note lapsed)
    arrive()  # the first of a new hold marks it again
    assert [i for i, _ in pending.oldest(10)] == [CONVERSATION_ID]
    assert len(sent) == 4


@pytest.fixture()
def prefetcher(verifying, pending, cache, clock) -> Prefetcher:
    return Prefetcher(
        directory=verifying, pending=pending, lock_client=cache, max_hold_seconds=5, clock=clock
    )


def marked_one_by_one(genesys, pending, clock, count: int) -> list[str]:
    """`count` known conversations marked to verify 10 ms apart, oldest first."""
    ids = known_ids(genesys, count)
    for conversation_id in ids:
        clock.advance(0.01)
        pending.add(conversation_id)
    return ids


def test_a_run_verifies_the_oldest_batch_and_schedules_the_next_while_ids_remain(
    make_directory, pending, cache, clock, genesys, scheduled, transport
):
    ids = marked_one_by_one(genesys, pending, clock, 25)
    scheduled.delays.clear()
    directory = make_directory(verify_batch=10)
    run = Prefetcher(
        directory=directory, pending=pending, lock_client=cache, clock=clock, max_batches=1
    ).run()

    assert (run.outcome, run.verified, run.again_in) == (PrefetchOutcome.VERIFIED, 10, 0.0)
    assert details_calls(transport.requests) == [ids[:10]]
    assert [i for i, _ in pending.oldest(100)] == ids[10:]
    assert scheduled.delays == [0.0]
    assert all(directory.cached(i) for i in ids[:10])


def test_a_run_takes_full_batches_one_after_another_and_leaves_a_fresh_partial_to_gather(
    make_directory, pending, cache, clock, genesys, scheduled, transport
):
    ids = marked_one_by_one(genesys, pending, clock, 25)
    scheduled.delays.clear()
    directory = make_directory(verify_batch=10)
    run = Prefetcher(directory=directory, pending=pending, lock_client=cache, clock=clock).run()

    # Two full batches in one run; the last five arrived just now and wait for their burst.
    assert (run.outcome, run.verified, run.calls) == (PrefetchOutcome.VERIFIED, 20, 2)
    assert details_calls(transport.requests) == [ids[:10], ids[10:20]]
    assert [i for i, _ in pending.oldest(100)] == ids[20:]
    assert run.again_in is not None and 0 < run.again_in <= 1.0
    assert scheduled.delays == [run.again_in]


def test_the_last_run_schedules_nothing(prefetcher, pending, scheduled, clock):
    pending.add(CONVERSATION_ID)
    scheduled.delays.clear()
    clock.advance(2)
    run = prefetcher.run()
    assert (run.outcome, run.again_in, pending.count()) == (PrefetchOutcome.VERIFIED, None, 0)
    assert scheduled.delays == []
    assert prefetcher.run().outcome is PrefetchOutcome.IDLE


def test_a_partial_batch_waits_for_its_burst_to_end(prefetcher, pending, clock, transport):
    pending.add(CONVERSATION_ID)
    clock.advance(0.4)
    run = prefetcher.run()
    assert run.outcome is PrefetchOutcome.GATHERING
    assert run.again_in == pytest.approx(0.6)
    assert transport.requests == []


def test_a_partial_batch_waits_no_longer_than_the_hold(prefetcher, pending, clock, genesys):
    for _ in range(6):
        pending.add(known_ids(genesys, 1)[0])
        clock.advance(0.9)  # a steady trickle: never quiet for a whole second
    assert prefetcher.run().outcome is PrefetchOutcome.VERIFIED


DRAIN_HOLD = 45.0


@pytest.fixture()
def arrivals(cache, clock) -> Arrivals:
    return Arrivals(cache, keep_seconds=60, clock=clock)


@pytest.fixture()
def drain_aware(verifying, pending, cache, clock, arrivals) -> Prefetcher:
    return Prefetcher(
        directory=verifying,
        pending=pending,
        lock_client=cache,
        max_hold_seconds=5,
        arrivals=arrivals,
        drain_hold_seconds=DRAIN_HOLD,
        clock=clock,
    )


def test_while_the_dlq_drains_a_partial_batch_gathers_up_to_the_drain_hold(
    drain_aware, pending, clock, genesys, arrivals, transport
):
    arrivals.draining(True, for_seconds=25)
    for _ in range(6):
        pending.add(known_ids(genesys, 1)[0])
        clock.advance(0.9)  # a steady trickle, past the 5 s hold of a burst

    run = drain_aware.run()

    assert run.outcome is PrefetchOutcome.GATHERING
    assert run.again_in == pytest.approx(DRAIN_HOLD - 6 * 0.9)
    assert transport.requests == []
    clock.advance(DRAIN_HOLD)
    assert drain_aware.run().outcome is PrefetchOutcome.VERIFIED


def test_a_partial_batch_held_for_the_drain_goes_when_it_ends(
    drain_aware, pending, clock, genesys, arrivals
):
    arrivals.draining(True, for_seconds=25)
    pending.add(known_ids(genesys, 1)[0])
    clock.advance(2)
    assert drain_aware.run().outcome is PrefetchOutcome.GATHERING

    assert arrivals.draining(False, for_seconds=25)  # the receive that ended the drain

    assert drain_aware.run().outcome is PrefetchOutcome.VERIFIED


def test_the_receive_that_ends_a_drain_kicks_a_verification_run(arrivals, pending, scheduled):
    door = FrontDoor(ledger=MemoryLedger(), enqueuer=None, verifications=pending, arrivals=arrivals)  # type: ignore[arg-type]
    door.received(10, wait_seconds=0)
    door.received(3, wait_seconds=0)
    assert scheduled.delays == []

    door.received(0, wait_seconds=0)
    door.received(0, wait_seconds=0)  # nothing drained since: no second run

    assert scheduled.delays == [0.0]


def test_when_the_budget_says_wait_the_ids_stay_and_the_run_comes_back_after_it(
    prefetcher, pending, clock, limiter, scheduled
):
    pending.add(CONVERSATION_ID)
    clock.advance(2)
    scheduled.delays.clear()
    limiter.waits.append(7.5)
    run = prefetcher.run()
    assert (run.outcome, run.again_in) == (PrefetchOutcome.WAITING, 7.5)
    assert pending.count() == 1
    assert scheduled.delays == [7.5]


def test_a_refused_batch_leaves_its_conversations_to_their_own_lookups(
    prefetcher, pending, clock, genesys
):
    pending.add(CONVERSATION_ID)
    clock.advance(2)
    genesys.details_answers.append(error_response(403))
    run = prefetcher.run()
    assert run.outcome is PrefetchOutcome.WAITING
    assert pending.count() == 0


def test_one_run_at_a_time_across_the_fleet(prefetcher, pending, peer_cache, clock, transport):
    pending.add(CONVERSATION_ID)
    clock.advance(2)
    other = peer_cache.lock(LOCK_KEY, timeout=60)
    assert other.acquire(blocking=False)
    run = prefetcher.run()
    assert run.outcome is PrefetchOutcome.BUSY
    assert transport.requests == []
    other.release()
    assert prefetcher.run().outcome is PrefetchOutcome.VERIFIED


def test_a_kick_that_finds_a_run_in_progress_still_gets_a_run_after_it(
    prefetcher, pending, peer_cache, clock, scheduled
):
    pending.add(CONVERSATION_ID)
    clock.advance(2)
    in_progress = peer_cache.lock(LOCK_KEY, timeout=60)  # a run that began before the kick
    assert in_progress.acquire(blocking=False)
    scheduled.delays.clear()
    pending.kick()  # the drain ended: its flag stands for the kicked run

    assert prefetcher.run().outcome is PrefetchOutcome.BUSY

    # The run in progress cannot schedule past the kick's flag: the kicked one comes back.
    assert scheduled.delays == [0.0, BUSY_RETRY_SECONDS]


def test_an_id_added_during_a_run_schedules_the_next_run(pending, scheduled):
    pending.add(CONVERSATION_ID)
    pending.add(str(uuid.uuid4()))
    assert len(scheduled.delays) == 1
    pending.starting()
    pending.add(str(uuid.uuid4()))
    assert len(scheduled.delays) == 2


@pytest.fixture()
def receive_message_of():
    def build(conversation_id: str):
        event = genesys_event(conversation_id=conversation_id, topic="customer.end")
        return received_message(json.dumps(event), TARGET_ARN)

    return build


def test_a_drain_whose_note_lapsed_still_kicks_a_run_and_sends_its_parked_passes(
    arrivals, pending, scheduled, cache
):
    sent = RecordingEnqueuer()
    door = FrontDoor(ledger=MemoryLedger(), enqueuer=sent, verifications=pending, arrivals=arrivals)
    door.received(10, wait_seconds=0)
    key = EventKey("e-1", TARGET_ARN, "rule")
    assert arrivals.arrived(CONVERSATION_ID, park=Parked(key, CONVERSATION_ID)).sent is Sent.PARKED
    cache.delete(DRAINING_KEY)  # a hand-off slower than the note's life: it lapsed

    door.received(0, wait_seconds=0)

    assert scheduled.delays == [0.0]
    assert (sent.keys, sent.parked) == ([key], [True])
