"""Batch verification end to end: Lambda ingest -> to-verify list -> a real worker's
`dlq.verify` runs (analytics multi-get) -> replays that find their conversation cached.

The backlog is ingested before the worker starts, as when a worker fleet comes up on a
full DLQ: the to-verify list then holds every conversation, and the batches are full.
The simulator counts every Genesys call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis
from helpers import dlq_attributes, genesys_event
from stack import Stack, configured, in_process_worker, sim_env

from devstack.sim_admin import ANALYTICS_DETAILS, GET_CONVERSATION, PATCH_ATTRIBUTES, TOKEN
from dlq.genesys.directory import BATCH_SIZE_KEY
from dlq.genesys.pending import PENDING_KEY
from dlq.ledger import Status
from ingest.frontdoor import FrontDoor
from ingest.lambda_handler import handler

pytestmark = pytest.mark.slow

#: The backlog was ingested before the worker started: its conversations must still count
#: as about to be verified when the worker gets to them.
VERIFY_ENV = {"GENESYS_VERIFY_WAIT_SECONDS": "300"}


@pytest.fixture()
def stack(redis_server, moto_server, sim, unique, redis_url) -> Iterator[Stack]:
    sim.admin.reset()
    sim.admin.configure(rate_limit=100_000)
    with configured({**sim_env(sim), **VERIFY_ENV, "LEDGER_TABLE": f"ledger-{unique}"}):
        yield Stack(unique, sim)


def ingest_through_lambda(stack: Stack, conversations: list[str]) -> None:
    """One event per conversation through the Lambda front door, ten records a batch."""
    door = FrontDoor.from_settings(stack.settings)
    assert door.verifications is not None, "REPLAY_VERIFY_CONVERSATION is on by default"
    attributes = dlq_attributes(stack.target_arn, rule_arn=stack.rule_arn)
    records = []
    for conversation in conversations:
        event = genesys_event(conversation_id=conversation)
        del event["detail"]["eventBody"]["participantId"]  # annotate the customer
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": json.dumps(event),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {
                    name: {"stringValue": v["StringValue"], "dataType": "String"}
                    for name, v in attributes.items()
                },
                "eventSource": "aws:sqs",
            }
        )
    for start in range(0, len(records), 10):
        answer = handler({"Records": records[start : start + 10]}, None, front_door=door)
        assert answer == {"batchItemFailures": []}


def new_conversations(stack: Stack, count: int, *, age_seconds: float = 0.0) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    stack.sim.admin.seed(*ids, age_seconds=age_seconds)
    return ids


#: Conversations per analytics call in the batch test: 10, so that 25 conversations make
#: three calls, as 250 do at the default of 100, in a tenth of the time.
SMALL_BATCH = 10


def test_conversations_are_verified_in_full_batch_calls_without_a_single_get(
    stack, redis_client: redis.Redis
):
    count = int(2.5 * SMALL_BATCH)
    conversations = new_conversations(stack, count)
    with configured({"GENESYS_VERIFY_BATCH": str(SMALL_BATCH)}):
        ingest_through_lambda(stack, conversations)
        assert redis_client.zcard(PENDING_KEY) == count

        with in_process_worker():
            items = stack.wait_final(count, timeout=180)
            wait_for_tracking(stack, conversations)

    assert {i.status for i in items} == {Status.REPLAYED}
    assert len(stack.target_messages()) == count
    stats = stack.sim.admin.stats()
    analytics, singles = stats.count(ANALYTICS_DETAILS), stats.count(GET_CONVERSATION)
    patches, tokens = stats.count(PATCH_ATTRIBUTES), stats.count(TOKEN)
    print(
        f"{count} conversations: {analytics} analytics calls ({stats.analytics_ids} ids), "
        f"{singles} single GETs, {patches} PATCHes, {tokens} tokens: "
        f"{analytics + singles + patches + tokens} Genesys calls"
    )
    assert analytics <= 3  # ceil(25 / 10): every call but the last is full
    assert stats.analytics_ids == count
    assert singles == 0
    assert redis_client.zcard(PENDING_KEY) == 0
    # The batch's participant choice is tracking's: the customer got the attributes.
    for conversation in conversations[:5]:
        body = stack.sim.admin.conversation(conversation)
        customer = next(p for p in body["participants"] if p["purpose"] == "customer")
        assert customer["attributes"]["dlqReplayStatus"] == "replayed"


def test_only_conversations_analytics_has_not_caught_up_with_fall_back_to_a_single_get(stack):
    stack.sim.admin.configure(analytics_lag_seconds=600)
    settled = new_conversations(stack, 20, age_seconds=3600)
    lagging = new_conversations(stack, 5)
    ingest_through_lambda(stack, settled + lagging)

    with in_process_worker():
        items = stack.wait_final(25, timeout=120)

    assert {i.status for i in items} == {Status.REPLAYED}
    stats = stack.sim.admin.stats()
    assert stats.count(ANALYTICS_DETAILS) == 1
    assert stats.count(GET_CONVERSATION) == len(lagging)
    assert {c for c in settled + lagging if stack.sim.admin.reads(c)} == set(lagging)


def test_a_conversation_neither_api_knows_still_ends_failed(stack):
    known = new_conversations(stack, 3)
    gone = str(uuid.uuid4())
    ingest_through_lambda(stack, [*known, gone])

    with in_process_worker():
        items = stack.wait_final(4, timeout=120)

    by_conversation = {i.conversation_id: i for i in items}
    assert by_conversation[gone].status is Status.FAILED
    assert "404" in (by_conversation[gone].last_error or "")
    assert {by_conversation[c].status for c in known} == {Status.REPLAYED}
    stats = stack.sim.admin.stats()
    assert stats.count(GET_CONVERSATION) == 1  # the 404, and only for it
    assert stats.count(ANALYTICS_DETAILS) == 1


def test_a_400_for_too_many_ids_halves_the_batch_for_the_fleet(stack, redis_client: redis.Redis):
    stack.sim.admin.configure(analytics_max_ids=20)
    conversations = new_conversations(stack, 60)
    ingest_through_lambda(stack, conversations)

    with in_process_worker():
        items = stack.wait_final(60, timeout=120)

    assert {i.status for i in items} == {Status.REPLAYED}
    stats = stack.sim.admin.stats()
    assert stats.count(ANALYTICS_DETAILS, 400) >= 1
    assert stats.count(GET_CONVERSATION) == 0
    assert stats.analytics_ids == 60  # every id verified by a call that was answered
    learnt = int(redis_client.get(BATCH_SIZE_KEY) or 0)
    assert 0 < learnt <= 20


def wait_for_tracking(stack: Stack, conversations: list[str], timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    done: list[str] = []
    while time.monotonic() < deadline:
        done = [c for c in conversations if stack.sim.admin.attribute_history(c)]
        if len(done) == len(conversations):
            return
        time.sleep(0.5)
    raise AssertionError(f"tracking did not reach {len(conversations) - len(done)} conversations")
