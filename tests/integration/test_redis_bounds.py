"""Every Redis structure the fleet writes has a bound, also when no worker consumes it.

Against a real redis-server (and moto's server for the ledger the ingest writes first).
A long run is simulated with the project's `FakeClock`, never by sleeping: what expires
by Redis's own clock (the `dlq:verify:scheduled` flag, a minute) is made to lapse by
deleting it, which is all its TTL does. docs/operations.md lists the keys and bounds;
tests/e2e/test_redis_bounds_e2e.py checks every key a real worker's run leaves.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from helpers import genesys_event, new_ledger, received_message

from dlq.clock import FakeClock
from dlq.genesys.client import build_genesys_client
from dlq.genesys.directory import ConversationDirectory, PrefetchPending
from dlq.genesys.pending import PENDING_KEY, SCHEDULED_KEY, PendingVerifications
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
    return [float(pair[1]) for pair in client.zrange(PENDING_KEY, 0, -1, withscores=True)]


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
