"""Every Redis structure the fleet writes has a bound, also when no worker consumes it.

Against a real redis-server (and moto's server for the ledger the ingest writes first).
A long run is simulated with the project's `FakeClock`, never by sleeping: what expires
by Redis's own clock (the `dlq:verify:scheduled` flag, a minute) is made to lapse by
deleting it, which is all its TTL does. docs/operations.md lists the keys and bounds.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers import genesys_event, new_ledger, received_message
from stack import Stack, configured, in_process_worker, sim_env

from devstack.sim_admin import PATCH_ATTRIBUTES
from dlq.clock import FakeClock
from dlq.genesys.client import build_genesys_client
from dlq.genesys.directory import ConversationDirectory, PrefetchPending
from dlq.genesys.pending import PENDING_KEY, SCHEDULED_KEY, PendingVerifications
from dlq.ledger import FINAL_STATUSES
from dlq.settings import Settings
from ingest.frontdoor import FrontDoor
from tasks.application import app
from tasks.names import REPLAY_QUEUE, VERIFY_QUEUE
from tasks.producer import CeleryEnqueuer, VerifyScheduler

TARGET = "arn:aws:sqs:us-east-1:111122223333:crm-events"
HOLD = 600.0


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(start=time.time())


@pytest.fixture()
def door(
    moto_server, redis_client: redis.Redis, clock: FakeClock, make_settings, unique
) -> FrontDoor:
    """The real ingest core, on the real ledger and Redis, in a fleet whose `verify` queue
    nobody consumes: the runs it schedules stay in the broker's list."""
    pending = PendingVerifications(
        redis_client,
        VerifyScheduler(app, broker=redis_client),
        hold_seconds=HOLD,
        max_size=1_000,
        clock=clock,
    )
    ledger = new_ledger(make_settings(), f"ledger-{unique}")
    return FrontDoor(ledger=ledger, enqueuer=CeleryEnqueuer(app), verifications=pending)


def ingest(door: FrontDoor, count: int) -> list[str]:
    """`count` DLQ messages, each of a new conversation, through the ingest core."""
    conversations = [str(uuid.uuid4()) for _ in range(count)]
    for conversation in conversations:
        body = json.dumps(genesys_event(conversation_id=conversation))
        door.handle(received_message(body, TARGET))
    return conversations


def scores(client: redis.Redis) -> list[float]:
    return [score for _, score in client.zrange(PENDING_KEY, 0, -1, withscores=True)]


# --- the to-verify list, with no `verify` consumer ----------------------------------------


def test_a_fleet_without_a_verify_consumer_holds_only_the_last_hold_of_marks(
    door: FrontDoor, redis_client: redis.Redis, clock: FakeClock
):
    per_minute, minutes = 3, 180  # three hours of ingests: 540 conversations marked

    for _ in range(minutes):
        ingest(door, per_minute)
        clock.advance(60)
        redis_client.delete(SCHEDULED_KEY)  # its TTL (a minute, Redis's clock) ran out

    ingest(door, per_minute)
    held = scores(redis_client)
    assert len(held) <= per_minute * (HOLD / 60 + 1)
    assert min(held) >= clock.now() - HOLD
    assert 0 < redis_client.ttl(PENDING_KEY) <= HOLD


def test_a_fleet_without_a_verify_consumer_queues_one_verify_run_not_one_a_minute(
    door: FrontDoor, redis_client: redis.Redis, clock: FakeClock
):
    for _ in range(60):
        ingest(door, 2)
        clock.advance(60)
        redis_client.delete(SCHEDULED_KEY)

    assert redis_client.llen(VERIFY_QUEUE) == 1
    # The replay queue holds one message per ledger item: what the ledger bounds.
    assert redis_client.llen(REPLAY_QUEUE) == 120


def test_once_a_worker_takes_the_waiting_run_the_next_mark_queues_another(
    door: FrontDoor, redis_client: redis.Redis
):
    pending = door.verifications
    assert pending is not None
    ingest(door, 1)
    assert redis_client.llen(VERIFY_QUEUE) == 1
    redis_client.delete(VERIFY_QUEUE)  # a worker took it (and holds it until its countdown)
    pending.starting()  # the run begins

    ingest(door, 1)

    assert redis_client.llen(VERIFY_QUEUE) == 1


def test_the_list_expires_a_hold_after_the_latest_mark(door: FrontDoor, redis_client: redis.Redis):
    ingest(door, 5)

    assert 0 < redis_client.ttl(PENDING_KEY) <= HOLD


# --- beyond its size: the single GET -------------------------------------------------------


@pytest.fixture()
def directory(
    genesys_settings: Settings, redis_client: redis.Redis, clock: FakeClock
) -> Iterator[tuple[PendingVerifications, ConversationDirectory]]:
    pending = PendingVerifications(
        redis_client, lambda delay: None, hold_seconds=HOLD, max_size=20, clock=clock
    )
    client = build_genesys_client(genesys_settings, redis_client)
    yield pending, ConversationDirectory(
        client, redis_client, pending=pending, verify_wait_seconds=15.0, block_seconds=0.0,
        clock=clock,
    )  # fmt: skip


def test_a_burst_beyond_the_size_keeps_the_oldest_and_leaves_the_rest_to_the_single_get(
    directory: tuple[PendingVerifications, ConversationDirectory],
    redis_client: redis.Redis,
    sim_admin,
):
    pending, conversations = directory
    ids = [str(uuid.uuid4()) for _ in range(30)]
    sim_admin.seed(*ids)

    kept = [pending.add(conversation_id) for conversation_id in ids]

    assert kept == [True] * 20 + [False] * 10
    assert redis_client.zcard(PENDING_KEY) == 20
    with pytest.raises(PrefetchPending):  # a kept one waits for its batch
        conversations.lookup(ids[0], await_prefetch=True)
    overflow = conversations.lookup(ids[-1], await_prefetch=True)
    assert overflow.exists  # looked up at once, on its own
    assert sim_admin.reads(ids[-1]) == 1


# --- every key a run leaves behind ----------------------------------------------------------

#: Celery's and kombu's own keys without an expiry, each bounded another way
#: (docs/operations.md): the queues, by what the ledger holds; bindings, by the queues.
STRUCTURAL = ("_kombu.binding", "unacked")
QUEUES = {"replay", "track", "verify"}


@pytest.fixture()
def stack(redis_server, moto_server, sim, unique, redis_url) -> Iterator[Stack]:
    sim.admin.reset()
    sim.admin.configure(rate_limit=100_000)
    with configured({**sim_env(sim), "LEDGER_TABLE": f"ledger-{unique}"}):
        yield Stack(unique, sim)


@pytest.mark.slow
def test_every_key_a_replay_run_leaves_in_redis_has_an_expiry_or_a_known_bound(
    stack: Stack, redis_client: redis.Redis
):
    conversations = [str(uuid.uuid4()) for _ in range(6)]
    stack.sim.admin.seed(*conversations)
    for conversation in conversations:
        event = genesys_event(conversation_id=conversation)
        del event["detail"]["eventBody"]["participantId"]  # annotate the customer
        stack.put_dlq(event)
    stack.ingest()

    with in_process_worker():
        items = stack.wait_final(6, timeout=120)
        deadline = time.monotonic() + 60
        while stack.sim.admin.stats().count(PATCH_ATTRIBUTES) < len(conversations):
            assert time.monotonic() < deadline, "tracking did not run"
            time.sleep(0.2)

    assert all(i.status in FINAL_STATUSES for i in items)
    keys = [raw.decode() for raw in redis_client.scan_iter(count=1000)]
    unbounded = [
        key
        for key in keys
        if key not in QUEUES and not key.startswith(STRUCTURAL) and redis_client.ttl(key) < 0
    ]
    assert unbounded == []
    patterns = documented_patterns()
    assert [key for key in keys if key.startswith("dlq:") and not documented(key, patterns)] == []


def documented_patterns() -> list[str]:
    """The key patterns in the first column of docs/operations.md's Redis table."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "operations.md").read_text()
    patterns: list[str] = []
    for line in text.splitlines():
        if line.startswith("| `dlq:"):
            first_cell = line.split(" | ")[0]
            patterns += re.findall(r"`([^`]+)`", first_cell)
    return patterns


def documented(key: str, patterns: list[str]) -> bool:
    """Whether `key` matches a pattern: exactly, or by the text before its first
    `<placeholder>` (`dlq:conv:<conversation id>` covers every `dlq:conv:...` key)."""
    for pattern in patterns:
        prefix, placeholder, _ = pattern.partition("<")
        if key == pattern or (placeholder and key.startswith(prefix)):
            return True
    return False
