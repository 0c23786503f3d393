"""`Tracker` and `TrackingNews`: one PATCH per conversation, deferred while siblings finish."""

from __future__ import annotations

import pytest

from dlq.clock import moment
from dlq.genesys.errors import GenesysServerError, RateLimitWait
from dlq.ingest import resume_parked
from dlq.ledger import IMMINENT_SECONDS as IMMINENT_RETRY_SECONDS
from dlq.ledger import Status
from dlq.ratelimit import Priority
from dlq.tracking import (
    AT_REST_DELAY_SECONDS,
    MAX_DEFER_SECONDS,
    PENDING_PREFIX,
    SNAPSHOT_PREFIX,
    TrackingOutcome,
)

from .fakes import (
    CONVERSATION_ID,
    CUSTOMER_ID,
    DEBOUNCE_SECONDS,
    LEASE_SECONDS,
    QUIET_SECONDS,
    RecordingEnqueuer,
    patches,
    settle,
)

PENDING = PENDING_PREFIX + CONVERSATION_ID
SNAPSHOT = SNAPSHOT_PREFIX + CONVERSATION_ID


def finished(ledger, clock, key, status=Status.REPLAYED, **kwargs):
    """End the item's attempt with `status` one second later (outcomes stay ordered)."""
    clock.advance(1)
    return settle(ledger, key, status, **kwargs)


def attributes_of(request) -> dict[str, str]:
    return request.json["attributes"]


# --- the PATCH --------------------------------------------------------------------------


def test_one_patch_writes_the_conversations_summary_onto_its_participant(
    tracker, receive, ledger, clock, transport, settings
):
    first, second = receive(), receive()
    finished(ledger, clock, first)
    finished(
        ledger,
        clock,
        second,
        Status.FAILED,
        error="arn:aws:sqs:us-east-1:111122223333:crm-sync is gone (a target's own text)",
        error_code="AWS.SimpleQueueService.NonExistentQueue",
    )

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED

    # The lookup that proves the event's participant is one of the conversation's, then:
    [lookup, patch] = transport.requests
    assert (lookup.method, patch.method) == ("GET", "PATCH")
    assert patch.url == (
        f"{settings.genesys_api_url}/api/v2/conversations/{CONVERSATION_ID}"
        f"/participants/{CUSTOMER_ID}/attributes"
    )
    assert attributes_of(patch) == {
        "dlqReplayStatus": "failed",
        "dlqReplayEvents": "2",
        "dlqReplayReplayed": "1",
        "dlqReplayRetrying": "0",
        "dlqReplayFailed": "1",
        "dlqReplayExhausted": "0",
        "dlqReplayResolved": "0",
        "dlqReplayLastEventId": second.event_id,
        # The code, never the text: agents can read participant attributes.
        "dlqReplayLastErrorCode": "AWS.SimpleQueueService.NonExistentQueue",
        "dlqReplayUpdatedAt": moment(clock.now()).isoformat(timespec="seconds"),
    }


def test_a_participant_id_that_is_not_in_the_conversation_is_ignored_for_the_customer(
    tracker, receive, ledger, clock, transport, caplog
):
    forged = "00000000-0000-4000-8000-000000000000"
    finished(ledger, clock, receive(participant=forged))

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED

    patch = next(r for r in transport.requests if r.method == "PATCH")
    assert f"/participants/{CUSTOMER_ID}/attributes" in patch.url
    assert forged not in patch.url
    assert "not a participant of its conversation" in caplog.text


def test_tracking_calls_genesys_at_low_priority(tracker, receive, ledger, clock, limiter):
    finished(ledger, clock, receive(participant=False))

    tracker.track(CONVERSATION_ID)

    assert limiter.asked == [Priority.LOW, Priority.LOW]  # the lookup and the PATCH


def test_an_unchanged_summary_is_not_patched_again(tracker, receive, ledger, clock, transport):
    finished(ledger, clock, receive())
    tracker.track(CONVERSATION_ID)
    clock.advance(60)  # the UpdatedAt stamp alone is no change

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.UNCHANGED
    assert len(patches(transport.requests)) == 1


def test_a_changed_summary_is_patched_again(tracker, receive, ledger, clock, transport):
    finished(ledger, clock, receive())
    tracker.track(CONVERSATION_ID)
    finished(ledger, clock, receive())

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED
    assert [attributes_of(p)["dlqReplayEvents"] for p in patches(transport.requests)] == ["1", "2"]


def test_a_run_records_what_it_covered(tracker, receive, ledger, clock):
    item = finished(ledger, clock, receive())

    tracker.track(CONVERSATION_ID)

    record = tracker.last_tracked(CONVERSATION_ID)
    assert record["covered"] == item.updated_at
    assert record["error"] is None


def test_a_conversation_without_ledger_items_has_nothing_to_track(tracker, transport):
    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.NOTHING
    assert transport.requests == []


# --- waiting for siblings ---------------------------------------------------------------


def _received(ledger, clock, key):
    """Left as the ingest put it."""


def _in_progress(ledger, clock, key):
    ledger.claim(key, lease_seconds=LEASE_SECONDS)


def _retry_due_soon(ledger, clock, key):
    due = clock.now() + IMMINENT_RETRY_SECONDS
    settle(ledger, key, Status.RETRY_SCHEDULED, error="503", next_attempt_at=due)


@pytest.mark.parametrize(
    "sibling", [_received, _in_progress, _retry_due_soon], ids=lambda f: f.__name__[1:]
)
def test_a_sibling_about_to_finish_defers_the_run(
    tracker, receive, ledger, clock, transport, cache, sibling
):
    finished(ledger, clock, receive())
    sibling(ledger, clock, receive())

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.DEFERRED
    assert transport.requests == []
    assert float(cache.get(PENDING)) == clock.now()  # the first mark, kept for the bound


def test_a_retry_due_later_is_news_to_show_not_a_reason_to_wait(
    tracker, receive, ledger, clock, transport
):
    finished(ledger, clock, receive())
    later = clock.now() + IMMINENT_RETRY_SECONDS + 5  # `finished` moves the clock 1 s
    finished(ledger, clock, receive(), Status.RETRY_SCHEDULED, error="503", next_attempt_at=later)

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED
    [patch] = patches(transport.requests)
    assert attributes_of(patch)["dlqReplayStatus"] == "retry_scheduled"
    assert attributes_of(patch)["dlqReplayRetrying"] == "1"


def test_a_run_deferred_for_max_defer_seconds_patches_anyway(
    tracker, tracking_news, receive, ledger, clock, transport
):
    finished(ledger, clock, receive())
    receive()  # a sibling that never gets an outcome
    tracking_news.mark(CONVERSATION_ID)
    clock.advance(DEBOUNCE_SECONDS)
    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.DEFERRED

    clock.advance(MAX_DEFER_SECONDS - DEBOUNCE_SECONDS)

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED
    [patch] = patches(transport.requests)
    assert attributes_of(patch)["dlqReplayRetrying"] == "1"


def test_an_event_just_taken_from_the_dlq_defers_the_run_until_it_is_quiet(
    tracker, arriving, tracking_news, receive, ledger, clock, transport
):
    finished(ledger, clock, receive())
    tracking_news.mark(CONVERSATION_ID)
    arriving.arrived(CONVERSATION_ID)  # a later event of it, still to be replayed

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.DEFERRED
    assert patches(transport.requests) == []

    clock.advance(QUIET_SECONDS)
    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED


def test_a_draining_dlq_defers_a_conversation_at_rest_at_most_max_defer_seconds(
    tracker, arriving, tracking_news, receive, ledger, clock, transport
):
    finished(ledger, clock, receive())
    tracking_news.mark(CONVERSATION_ID)
    arriving.draining(True, for_seconds=3600)

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PARKED
    clock.advance(MAX_DEFER_SECONDS)  # a steady trickle: tracked all the same
    tracking_news.mark(CONVERSATION_ID)  # news of the conversation (or the catch-up's)

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED
    assert len(patches(transport.requests)) == 1


def test_a_run_deferred_for_a_drain_parks_and_the_next_news_runs_it(
    tracker, arriving, tracking_news, receive, ledger, clock, schedule, transport
):
    finished(ledger, clock, receive())
    tracking_news.mark(CONVERSATION_ID)
    arriving.draining(True, for_seconds=3600)
    scheduled = len(schedule.runs)

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PARKED
    # No task waits for it; the reconciler's catch-up counts it as coming all the same.
    assert tracking_news.is_pending(CONVERSATION_ID)
    assert len(schedule.runs) == scheduled
    arriving.draining(False, for_seconds=0)  # the receive that ends the drain...
    resume_parked(arriving, RecordingEnqueuer(), after=2.0, news=tracking_news.wake)
    assert len(schedule.runs) == scheduled + 1  # ...brings news: one run
    assert arriving.unpark_tracking() == []  # taken once

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED
    assert not tracking_news.is_pending(CONVERSATION_ID)
    assert len(patches(transport.requests)) == 1


def test_a_run_parked_as_the_drain_ends_defers_on_a_timer_instead(
    tracker, arriving, tracking_news, receive, ledger, clock, monkeypatch
):
    finished(ledger, clock, receive())
    tracking_news.mark(CONVERSATION_ID)
    arriving.draining(True, for_seconds=3600)
    park = arriving.park_tracking

    def park_as_the_drain_ends(conversation_id):
        park(conversation_id)
        arriving.draining(False, for_seconds=0)  # its wake may have gone already

    monkeypatch.setattr(arriving, "park_tracking", park_as_the_drain_ends)

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.DEFERRED


def test_nothing_arriving_lets_a_conversation_at_rest_be_tracked_at_once(
    tracker, arriving, tracking_news, receive, ledger, clock, transport
):
    finished(ledger, clock, receive())
    tracking_news.mark(CONVERSATION_ID)
    arriving.arrived("another-conversation")
    arriving.draining(False, for_seconds=0)

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED


def test_a_mark_set_by_a_new_outcome_during_the_run_supersedes_the_deferral(
    tracker, tracking_news, receive, ledger, clock, transport, schedule, monkeypatch
):
    finished(ledger, clock, receive())
    receive()
    read = ledger.by_conversation

    def outcome_lands_meanwhile(conversation_id):
        tracking_news.mark(conversation_id)
        return read(conversation_id)

    monkeypatch.setattr(ledger, "by_conversation", outcome_lands_meanwhile)

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.SUPERSEDED
    assert schedule.runs == [(CONVERSATION_ID, DEBOUNCE_SECONDS)]  # that outcome's own run
    assert transport.requests == []


def test_deferrals_double_until_max_defer_seconds_then_one_patch(
    tracker, tracking_news, receive, ledger, clock, transport
):
    finished(ledger, clock, receive())
    receive()
    tracking_news.mark(CONVERSATION_ID)
    first_mark = clock.now()
    waits: list[float] = []

    countdown = DEBOUNCE_SECONDS
    while True:
        clock.advance(countdown)
        if tracker.track(CONVERSATION_ID) is not TrackingOutcome.DEFERRED:
            break
        countdown = tracker.deferral(CONVERSATION_ID, minimum=DEBOUNCE_SECONDS)
        waits.append(countdown)

    assert waits == [5.0, 10.0, 20.0, 40.0, 40.0]
    assert clock.now() - first_mark == MAX_DEFER_SECONDS
    assert len(patches(transport.requests)) == 1


def test_a_deferral_waits_as_long_as_the_run_has_waited(tracker, tracking_news, clock):
    tracking_news.mark(CONVERSATION_ID)
    clock.advance(30)

    assert tracker.deferral(CONVERSATION_ID, minimum=DEBOUNCE_SECONDS) == 30


def test_a_deferral_ends_at_max_defer_seconds_after_the_first_mark(tracker, tracking_news, clock):
    tracking_news.mark(CONVERSATION_ID)
    clock.advance(100)

    assert tracker.deferral(CONVERSATION_ID, minimum=DEBOUNCE_SECONDS) == MAX_DEFER_SECONDS - 100


@pytest.mark.parametrize("waited", [1.0, MAX_DEFER_SECONDS, MAX_DEFER_SECONDS + 30])
def test_a_deferral_is_never_shorter_than_the_minimum(tracker, tracking_news, clock, waited):
    tracking_news.mark(CONVERSATION_ID)
    clock.advance(waited)

    assert tracker.deferral(CONVERSATION_ID, minimum=DEBOUNCE_SECONDS) == DEBOUNCE_SECONDS


def test_a_deferral_without_a_pending_mark_is_the_minimum(tracker):
    assert tracker.deferral(CONVERSATION_ID, minimum=DEBOUNCE_SECONDS) == DEBOUNCE_SECONDS


# --- whom to annotate, and giving up -----------------------------------------------------


def test_without_a_participant_on_the_events_the_customer_is_looked_up(
    tracker, receive, ledger, clock, transport
):
    finished(ledger, clock, receive(participant=False))

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED
    get, patch = transport.requests
    assert get.method == "GET" and get.url.endswith(f"/api/v2/conversations/{CONVERSATION_ID}")
    assert patch.url.endswith(f"/participants/{CUSTOMER_ID}/attributes")


def test_a_conversation_gone_from_genesys_is_recorded_as_given_up(
    tracker, receive, ledger, clock, transport, genesys
):
    finished(ledger, clock, receive(participant=False))
    del genesys.conversations[CONVERSATION_ID]

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.GAVE_UP
    assert "no longer exists" in tracker.last_tracked(CONVERSATION_ID)["error"]
    assert patches(transport.requests) == []


def test_a_given_up_conversation_is_not_tried_again_until_its_summary_changes(
    tracker, receive, ledger, clock, transport, genesys
):
    finished(ledger, clock, receive(participant=False))
    del genesys.conversations[CONVERSATION_ID]
    tracker.track(CONVERSATION_ID)
    calls = len(transport.requests)

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.UNCHANGED
    assert len(transport.requests) == calls


def test_a_conversation_without_a_customer_is_given_up(
    tracker, receive, ledger, clock, transport, genesys
):
    finished(ledger, clock, receive(participant=False))
    body = genesys.conversations[CONVERSATION_ID]
    body["participants"] = [p for p in body["participants"] if p["purpose"] == "agent"]

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.GAVE_UP
    assert "no customer participant" in tracker.last_tracked(CONVERSATION_ID)["error"]
    assert patches(transport.requests) == []


def test_a_patch_refused_with_a_4xx_is_recorded_as_given_up(
    tracker, receive, ledger, clock, genesys
):
    finished(ledger, clock, receive())
    genesys.script(CONVERSATION_ID, 404, method="PATCH")

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.GAVE_UP
    assert "404" in tracker.last_tracked(CONVERSATION_ID)["error"]


def test_a_genesys_outage_raises_for_a_retry_and_remembers_nothing(
    tracker, receive, ledger, clock, transport, genesys
):
    finished(ledger, clock, receive())
    genesys.script(CONVERSATION_ID, 503, method="PATCH")

    with pytest.raises(GenesysServerError):
        tracker.track(CONVERSATION_ID)

    assert tracker.last_tracked(CONVERSATION_ID) == {}
    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED


def test_a_rate_limiter_wait_raises_before_any_request(
    tracker, receive, ledger, clock, transport, limiter
):
    finished(ledger, clock, receive())
    limiter.waits = [3.0]

    with pytest.raises(RateLimitWait) as raised:
        tracker.track(CONVERSATION_ID)

    assert raised.value.retry_after == 3.0
    assert transport.requests == []
    assert tracker.last_tracked(CONVERSATION_ID) == {}


def test_a_run_waits_in_its_thread_for_turns_that_add_up_to_a_second(
    tracker, receive, ledger, clock, transport, limiter
):
    finished(ledger, clock, receive())
    # The participant's lookup goes; the PATCH is given two turns (a HIGH caller took the
    # first), then its slot.
    limiter.waits = [0.0, 0.4, 0.4]
    before = clock.now()

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED
    assert clock.now() - before == pytest.approx(0.8)
    assert len(limiter.asked) == 4
    assert [r.method for r in transport.requests][-1] == "PATCH"


def test_a_turn_that_would_take_the_wait_past_a_second_hands_the_task_back(
    tracker, receive, ledger, clock, transport, limiter
):
    finished(ledger, clock, receive())
    limiter.waits = [0.0, 0.4, 0.7]

    with pytest.raises(RateLimitWait) as raised:
        tracker.track(CONVERSATION_ID)

    assert raised.value.retry_after == 0.7
    assert "PATCH" not in [r.method for r in transport.requests]


# --- TrackingNews -----------------------------------------------------------------------


def test_news_schedules_one_run_per_pending_window(tracking_news, schedule):
    tracking_news.mark(CONVERSATION_ID)
    tracking_news.mark(CONVERSATION_ID)
    tracking_news.mark(CONVERSATION_ID)

    assert schedule.runs == [(CONVERSATION_ID, DEBOUNCE_SECONDS)]
    assert tracking_news.is_pending(CONVERSATION_ID)


def test_news_after_a_run_started_schedules_the_next_run(
    tracking_news, tracker, receive, ledger, clock, schedule
):
    finished(ledger, clock, receive())
    tracking_news.mark(CONVERSATION_ID)
    tracker.track(CONVERSATION_ID)  # clears the pending mark first
    assert not tracking_news.is_pending(CONVERSATION_ID)

    tracking_news.mark(CONVERSATION_ID)

    assert schedule.runs == [(CONVERSATION_ID, DEBOUNCE_SECONDS)] * 2


def test_news_of_two_conversations_schedules_two_runs(tracking_news, schedule):
    other = "0b6f3c1e-2d4a-4e8f-9a1b-3c5d7e9f1a2b"
    tracking_news.mark(CONVERSATION_ID)
    tracking_news.mark(other)

    assert [run[0] for run in schedule.runs] == [CONVERSATION_ID, other]


def test_a_pending_mark_outlives_the_longest_deferral(tracking_news, cache):
    tracking_news.mark(CONVERSATION_ID)

    assert tracking_news.pending_ttl > MAX_DEFER_SECONDS + 4 * DEBOUNCE_SECONDS
    assert cache.ttl(PENDING) == tracking_news.pending_ttl


def test_the_first_mark_records_when_the_news_arrived(tracking_news, cache, clock):
    tracking_news.mark(CONVERSATION_ID)
    first = clock.now()
    clock.advance(3)
    tracking_news.mark(CONVERSATION_ID)

    assert float(cache.get(PENDING)) == first


# --- a snapshot instead of a ledger query -------------------------------------------------


def test_a_run_summarises_the_snapshot_its_news_carried_without_a_ledger_query(
    tracker, tracking_news, receive, ledger, clock, transport, monkeypatch
):
    first, second = receive(), receive()
    items = [
        finished(ledger, clock, first),
        finished(ledger, clock, second, Status.FAILED, error="gone", error_code="Gone"),
    ]
    tracking_news.mark(CONVERSATION_ID, snapshot=items)

    def no_query(conversation_id):
        raise AssertionError("the ledger was queried")

    monkeypatch.setattr(ledger, "by_conversation", no_query)
    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED

    [patch] = patches(transport.requests)
    attributes = attributes_of(patch)
    assert attributes["dlqReplayEvents"] == "2"
    assert attributes["dlqReplayFailed"] == "1"
    assert attributes["dlqReplayLastErrorCode"] == "Gone"
    assert attributes["dlqReplayLastEventId"] == second.event_id


def test_a_run_deferred_for_arrivals_keeps_its_snapshot_for_the_run_that_comes_back(
    tracker, arriving, tracking_news, receive, ledger, clock, transport, monkeypatch
):
    items = [finished(ledger, clock, receive())]
    tracking_news.mark(CONVERSATION_ID, snapshot=items)
    arriving.draining(True, for_seconds=3600)
    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PARKED

    def no_query(conversation_id):
        raise AssertionError("the ledger was queried")

    monkeypatch.setattr(ledger, "by_conversation", no_query)
    arriving.draining(False, for_seconds=0)
    resume_parked(arriving, RecordingEnqueuer(), after=2.0, news=tracking_news.wake)
    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED


def test_a_run_told_to_wait_keeps_its_snapshot_and_mark_for_the_run_that_comes_back(
    tracker, tracking_news, receive, ledger, clock, transport, limiter, cache, monkeypatch
):
    items = [finished(ledger, clock, receive())]
    tracking_news.mark(CONVERSATION_ID, snapshot=items)
    first_mark = cache.get(PENDING)
    limiter.waits = [3.0]

    with pytest.raises(RateLimitWait):
        tracker.track(CONVERSATION_ID)

    assert cache.get(PENDING) == first_mark

    def no_query(conversation_id):
        raise AssertionError("the ledger was queried")

    monkeypatch.setattr(ledger, "by_conversation", no_query)
    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED
    assert len(patches(transport.requests)) == 1
    assert cache.get(PENDING) is None
    assert cache.get(SNAPSHOT) is None


def test_news_during_a_waiting_run_is_not_overwritten_by_what_that_run_was_told(
    tracker, tracking_news, receive, ledger, clock, transport, limiter, schedule, monkeypatch
):
    first, second = receive(), receive()
    done = finished(ledger, clock, first)
    tracking_news.mark(CONVERSATION_ID, snapshot=[done])
    fresh = [done, finished(ledger, clock, second)]

    def news_meanwhile(priority):
        tracking_news.mark(CONVERSATION_ID, snapshot=fresh)  # lands while the run is on
        return 3.0

    monkeypatch.setattr(limiter, "acquire", news_meanwhile)
    with pytest.raises(RateLimitWait):
        tracker.track(CONVERSATION_ID)
    monkeypatch.undo()

    assert len(schedule.runs) == 2  # the news scheduled a run of its own
    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED
    [patch] = patches(transport.requests)
    assert attributes_of(patch)["dlqReplayEvents"] == "2"


def test_news_without_a_snapshot_drops_an_earlier_one_it_may_have_made_stale(
    tracker, tracking_news, receive, ledger, clock, transport
):
    first, second = receive(), receive()
    stale = [finished(ledger, clock, first)]
    tracking_news.mark(CONVERSATION_ID, snapshot=stale)
    finished(ledger, clock, second, Status.FAILED, error="gone", error_code="Gone")
    tracking_news.mark(CONVERSATION_ID)  # e.g. a retry far off, or the reconciler

    tracker.track(CONVERSATION_ID)

    [patch] = patches(transport.requests)
    assert attributes_of(patch)["dlqReplayEvents"] == "2"


def test_news_from_a_conversation_whose_items_are_all_final_schedules_its_run_at_once(
    tracking_news, schedule, receive, ledger, clock
):
    item = finished(ledger, clock, receive())

    tracking_news.mark(CONVERSATION_ID, snapshot=[item])

    assert schedule.runs == [(CONVERSATION_ID, 0.0)]


def test_news_from_a_conversation_at_rest_with_a_far_retry_waits_briefly_not_the_debounce(
    tracking_news, schedule, receive, ledger, clock
):
    done = finished(ledger, clock, receive())
    later = finished(
        ledger, clock, receive(), Status.RETRY_SCHEDULED, next_attempt_at=clock.now() + 3600
    )

    tracking_news.mark(CONVERSATION_ID, snapshot=[done, later])

    assert schedule.runs == [(CONVERSATION_ID, min(DEBOUNCE_SECONDS, AT_REST_DELAY_SECONDS))]


def test_a_resolved_event_is_counted_and_can_be_the_latest_status(
    tracker, receive, ledger, clock, transport
):
    listed = finished(ledger, clock, receive(), Status.FAILED, error="400", error_code="HTTP400")
    clock.advance(1)
    ledger.resolve(listed, reason="sent by hand", operator="ops")

    assert tracker.track(CONVERSATION_ID) is TrackingOutcome.PATCHED

    patch = next(r for r in transport.requests if r.method == "PATCH")
    attributes = attributes_of(patch)
    assert (attributes["dlqReplayStatus"], attributes["dlqReplayResolved"]) == ("resolved", "1")
    assert attributes["dlqReplayReplayed"] == "0"
