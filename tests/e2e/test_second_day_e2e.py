"""The day after, end to end: redrives after a fix, a Genesys outage, a slow ingest.

Each test is a behaviour an operator meets once the backlog has run once: a failed item
redriven after its cause is fixed is delivered (whatever the fleet cached or recorded
about its first run), Genesys being down costs an item time, not attempts, and a
conversation's events reach their target in event-time order however slowly the ingest
drains the DLQ. Against the real stand-ins, waiting on the ledger.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from helpers import eventually, genesys_event
from stack import HttpSink, Stack, configured, in_process_worker, sim_env

from devstack.sim_admin import GET_CONVERSATION
from dlq.codes import GENESYS_UNAVAILABLE
from dlq.events import EventKey
from dlq.genesys.directory import CACHE_PREFIX
from dlq.ledger import FINAL_STATUSES, Status
from dlq.ledger.model import WAITING
from dlq.locks import ConversationLocks
from dlq.redrive import redrive
from dlq.replay import PassResults
from dlq.settings import load_settings
from ingest.frontdoor import FrontDoor
from ingest.poller import Poller
from tasks.application import app
from tasks.producer import CeleryEnqueuer

pytestmark = pytest.mark.slow
API_DESTINATION = "arn:aws:events:us-east-1:111122223333:api-destination/crm/5e6f7a"


@pytest.fixture(scope="module")
def worker(redis_server, moto_server, sim):
    with configured(sim_env(sim)), in_process_worker():
        yield


@pytest.fixture()
def stack(worker, sim, unique, redis_url):
    sim.admin.reset()
    sim.admin.configure(rate_limit=100_000)
    with configured({"LEDGER_TABLE": f"ledger-{unique}"}):
        yield Stack(unique, sim)


# --- A redrive after a fix ----------------------------------------------------------------


class RejectingSink(HttpSink):
    """An HttpSink that refuses chosen events for good (400) until they are let through."""

    def __init__(self) -> None:
        super().__init__()
        self.rejected: set[str] = set()

    def _status_for(self, body: bytes) -> int:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            if str(json.loads(body)["id"]) in self.rejected:
                return 400
        return super()._status_for(body)


class LosingEnqueuer:
    """The producer, except that the replay tasks of `lost` events never reach the broker:
    the ordered pass that another event's task runs over their conversation settles them."""

    def __init__(self, lost: set[str]) -> None:
        self._producer = CeleryEnqueuer(app)
        self._lost = lost

    def enqueue_replay(self, key: EventKey, **options: Any) -> None:
        if key.event_id not in self._lost:
            self._producer.enqueue_replay(key, **options)


def test_a_redrive_after_the_target_is_fixed_delivers_the_event_once_after_the_older_one(
    stack,
):
    [conversation], [first, second], _ = timed_conversations(stack, 1, 2)
    with RejectingSink() as sink, configured(http_target(sink)):
        sink.rejected.add(second["id"])
        for event in (first, second):
            stack.put_dlq(event, target_arn=API_DESTINATION)
        # The first event's task runs the conversation's pass over both: the second's
        # failure is recorded in Redis for the tasks of the items that pass settled.
        door = FrontDoor(
            ledger=stack.ledger,
            enqueuer=LosingEnqueuer({second["id"]}),
            boundary=stack.boundary,
        )
        with held_conversations(stack, [conversation]):
            assert drain(stack, door) == {"accepted": 2}
        items = by_event(stack.wait_final(2, timeout=30))
        assert items[second["id"]].status is Status.FAILED
        assert items[second["id"]].last_error_code == "HTTP400"
        failed_key = items[second["id"]].key
        recorded = PassResults(redis.Redis.from_url(stack.settings.redis_url))
        assert recorded.outcome(conversation, failed_key) == "failed"

        sink.rejected.clear()
        result = redrive(stack.ledger, CeleryEnqueuer(app), [items[second["id"]]])
        assert result.redriven == 1
        items = by_event(stack.wait_final(2, timeout=30))
        arrivals = sink.arrivals()

    assert arrivals == [first["id"], second["id"]]
    assert items[second["id"]].status is Status.REPLAYED
    assert items[second["id"]].attempts == 1
    assert items[first["id"]].status is Status.REPLAYED


# --- A Genesys outage ---------------------------------------------------------------------


def test_a_genesys_outage_longer_than_the_attempt_budget_spends_no_attempts(stack):
    conversations, events, in_order = timed_conversations(stack, 2, 2)
    max_attempts = 3
    outage = {
        "REPLAY_MAX_ATTEMPTS": str(max_attempts),
        "REPLAY_BACKOFF_BASE": "1",
        "REPLAY_BACKOFF_MAX": "2",
        "REPLAY_VERIFY_CONVERSATION": "true",
        # A replay never waits for a batch verification: its own GET is what fails.
        "GENESYS_VERIFY_WAIT_SECONDS": "0",
    }
    with configured(outage):
        stack.sim.admin.configure(reject_all=True)
        for event in events:
            stack.put_dlq(event)
        stack.ingest()
        oldest = [EventKey(ids[0], stack.target_arn, stack.rule_arn) for ids in in_order.values()]
        # Each conversation's oldest item has waited more times than it has attempts.
        waited = eventually(
            lambda: waited_beyond(stack, oldest, max_attempts),
            timeout=60,
            what=f"the oldest items waiting more than {max_attempts} times",
        )
        during = list(stack.ledger.scan())
        failed_lookups = stack.sim.admin.stats().count(GET_CONVERSATION, 503)
        stack.sim.admin.configure(reject_all=False)
        items = stack.wait_final(len(events), timeout=60)

    assert not [i.event_id for i in during if i.status in FINAL_STATUSES]
    for item in waited:
        assert item.attempts == 0
        assert item.last_error_code == GENESYS_UNAVAILABLE
        assert any(entry["outcome"] == WAITING for entry in item.history)
    assert failed_lookups > max_attempts * len(conversations)
    assert {i.status for i in items} == {Status.REPLAYED}
    assert {i.attempts for i in items} == {1}
    arrived = Counter(json.loads(body)["id"] for body in stack.target_messages())
    assert arrived == Counter(e["id"] for e in events)


def waited_beyond(stack, keys: list[EventKey], attempts: int) -> list | None:
    """The items of `keys`, once each waits for its retry after more than `attempts` waits;
    fails at once if one of them ends meanwhile."""
    items = [stack.ledger.get(key) for key in keys]
    ended = [
        (i.event_id, i.status, i.last_error) for i in items if i and i.status in FINAL_STATUSES
    ]
    assert not ended, f"ended during the Genesys outage: {ended}"
    if all(
        i is not None and i.status is Status.RETRY_SCHEDULED and i.waits > attempts for i in items
    ):
        return items
    return None


# --- A cached 404, then readable ----------------------------------------------------------


def test_a_conversation_cached_as_missing_then_readable_is_delivered_once_redriven(
    stack, redis_client
):
    conversation = str(uuid.uuid4())  # unknown to Genesys: its lookup answers 404
    event = genesys_event(conversation_id=conversation)
    stack.put_dlq(event)
    stack.ingest()
    [failed] = stack.wait_final(1, timeout=30)
    assert failed.status is Status.FAILED
    assert failed.last_error_code == "ConversationMissing"
    # The 404 is kept for minutes: far longer than this test waits below.
    assert redis_client.ttl(CACHE_PREFIX + conversation) > 60

    stack.sim.admin.seed(conversation)
    redrive(stack.ledger, CeleryEnqueuer(app), [failed])
    [item] = stack.wait_final(1, timeout=30)

    assert item.status is Status.REPLAYED
    [body] = stack.target_messages()
    assert json.loads(body)["id"] == event["id"]


# --- Order with a slow ingest -------------------------------------------------------------


class SlowSqs:
    """The SQS client, except that the DLQ gives one message per receive, a few a second."""

    def __init__(self, client: Any, *, pause: float) -> None:
        self._client = client
        self._pause = pause

    def receive_message(self, **request: Any) -> Any:
        time.sleep(self._pause)
        return self._client.receive_message(**{**request, "MaxNumberOfMessages": 1})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_conversation_keeps_its_event_order_when_the_ingest_is_slower_than_the_workers(
    stack,
):
    with shuffled_in_dlq(stack, 16, seed=7, hold_seconds=120) as (sink, events, in_order):
        door = FrontDoor.from_settings(load_settings(_env_file=None))
        poller = Poller(
            sqs=SlowSqs(stack.sqs, pause=0.1),
            queue_url=stack.dlq_url,
            front_door=door,
            wait_seconds=0,
        )
        counts: Counter[str] = Counter()
        ingest = threading.Thread(target=lambda: counts.update(poller.run(until_empty=True).counts))
        ingest.start()
        try:
            items = stack.wait_final(len(events), timeout=120)
        finally:
            poller.stop()
            ingest.join()
        arrivals = sink.arrivals()

    assert counts == {"accepted": len(events)}
    assert {i.status for i in items} == {Status.REPLAYED}
    assert Counter(arrivals) == Counter(e["id"] for e in events)
    assert out_of_order(arrivals, in_order) == []


def test_a_poller_stopped_mid_drain_leaves_its_parked_lines_to_their_tasks_at_the_hold_end(
    stack, redis_client
):
    with shuffled_in_dlq(stack, 8, seed=11, hold_seconds=8) as (sink, events, in_order):
        door = FrontDoor.from_settings(load_settings(_env_file=None))
        poller = Poller(sqs=stack.sqs, queue_url=stack.dlq_url, front_door=door, wait_seconds=0)
        taken = 0
        while taken < len(events) // 2:  # then it stops, as a crash would leave it: no
            taken += poller.poll_once()  # receive finds the DLQ empty, nobody unparks
        assert redis_client.hlen("dlq:arrival:parked") > 0
        items = stack.wait_final(taken, timeout=60)
        arrivals = sink.arrivals()

    # Each line's first event's task came back when the hold ended and ran the line's pass.
    assert {i.status for i in items} == {Status.REPLAYED}
    assert Counter(arrivals) == Counter(i.event_id for i in items)
    assert out_of_order(arrivals, in_order) == []


# --- helpers ------------------------------------------------------------------------------


@contextlib.contextmanager
def shuffled_in_dlq(stack, conversations: int, *, seed: int, hold_seconds: int):
    """`conversations` of four timed events, shuffled into the DLQ for an HTTP sink, with
    REPLAY_INGEST_MAX_HOLD_SECONDS set: (the sink, the events, their order by conversation)."""
    _, events, in_order = timed_conversations(stack, conversations, 4)
    random.Random(seed).shuffle(events)
    with (
        HttpSink() as sink,
        configured({**http_target(sink), "REPLAY_INGEST_MAX_HOLD_SECONDS": str(hold_seconds)}),
    ):
        for event in events:
            stack.put_dlq(event, target_arn=API_DESTINATION)
        yield sink, events, in_order


def out_of_order(arrivals: list[str], in_order: dict[str, list[str]]) -> list[str]:
    """The conversations whose events that arrived did not arrive in event-time order."""
    return [
        conversation
        for conversation, expected in in_order.items()
        if [a for a in arrivals if a in expected] != [e for e in expected if e in arrivals]
    ]


def timed_conversations(stack, conversations: int, per_conversation: int):
    """Seeded conversations with events a second apart within each: the conversation ids,
    the events, and by conversation their ids in event-time order."""
    topics = ["customer.start", "acd.start", "agent.end", "customer.end"]
    start = datetime.now(UTC) - timedelta(minutes=5)
    ids = [str(uuid.uuid4()) for _ in range(conversations)]
    stack.sim.admin.seed(*ids)
    events: list[dict] = []
    in_order: dict[str, list[str]] = {}
    for conversation in ids:
        in_order[conversation] = []
        for n in range(per_conversation):
            event = genesys_event(conversation_id=conversation, topic=topics[n % len(topics)])
            event["time"] = (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
            events.append(event)
            in_order[conversation].append(event["id"])
    return ids, events, in_order


def http_target(sink: HttpSink) -> dict[str, str]:
    return {"REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url})}


def drain(stack: Stack, door: FrontDoor) -> dict[str, int]:
    """Drain the DLQ through the poller and `door` (the stack's `ingest`, another door)."""
    poller = Poller(sqs=stack.sqs, queue_url=stack.dlq_url, front_door=door, wait_seconds=0)
    return dict(poller.run(until_empty=True).counts)


def by_event(items) -> dict[str, Any]:
    return {item.event_id: item for item in items}


@contextlib.contextmanager
def held_conversations(stack, conversations):
    """Hold every conversation's lock (as a busy worker would) while the block runs."""
    locks = ConversationLocks(redis.Redis.from_url(stack.settings.redis_url), ttl_seconds=60)
    with contextlib.ExitStack() as held:
        for conversation in conversations:
            assert held.enter_context(locks.hold(conversation))
        yield
