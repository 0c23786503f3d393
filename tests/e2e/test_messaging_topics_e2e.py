"""A messaging-topic event end to end: DLQ -> ingest -> a real worker -> the target, and the
tracking PATCH on the conversation the topic names.

In `v2.conversations.{media}.{id}.messages` the conversation is the topic's `{id}`;
`eventBody.id`, when there, is the message. The stand-ins are real: Redis, moto, the
Genesys simulator (which 404s an id it does not know, such as a message's).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from helpers import FIXTURES
from stack import Stack, configured, in_process_worker, sim_env

from devstack.sim_admin import GET_CONVERSATION, PATCH_ATTRIBUTES
from dlq.ledger import Status

pytestmark = pytest.mark.slow

FIXTURE = FIXTURES / "genesys-chat-message-event.json"


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


def message_event(conversation: str, *, message_id: str | None) -> dict[str, Any]:
    """A `v2.conversations.messages.{id}.messages` event: the message in the body (its id
    only if `message_id`), the conversation in the topic alone."""
    event: dict[str, Any] = json.loads(FIXTURE.read_text())
    event["id"] = str(uuid.uuid4())
    event["time"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # within the age budget
    event["detail-type"] = "v2.conversations.messages.{id}.messages"
    detail = event["detail"]
    detail["topicName"] = f"v2.conversations.messages.{conversation}.messages"
    body = detail["eventBody"]
    del body["conversation"]
    if message_id is None:
        del body["id"]
    else:
        body["id"] = message_id
    return event


def attribute_history(stack: Stack, conversation: str, timeout: float = 30.0) -> list[dict]:
    """The conversation's attribute PATCHes, once tracking has made one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        history = stack.sim.admin.attribute_history(conversation)
        if history:
            return history
        time.sleep(0.2)
    raise AssertionError(f"tracking did not reach conversation {conversation}")


@pytest.mark.parametrize("message_id", [str(uuid.uuid4()), None], ids=["with-id", "without-id"])
def test_a_message_event_is_delivered_and_tracked_on_the_conversation_of_its_topic(
    stack, message_id
):
    conversation = str(uuid.uuid4())
    stack.sim.admin.seed(conversation)
    event = message_event(conversation, message_id=message_id)
    stack.put_dlq(event)

    assert stack.ingest() == {"accepted": 1}
    [item] = stack.wait_final(1)

    assert item.status is Status.REPLAYED, item.last_error
    assert item.conversation_id == conversation
    assert stack.target_messages() == [json.dumps(event)]
    history = attribute_history(stack, conversation)
    customer = next(
        p["id"]
        for p in stack.sim.admin.conversation(conversation)["participants"]
        if p["purpose"] == "customer"
    )
    assert {h["participantId"] for h in history} == {customer}
    assert history[-1]["attributes"]["dlqReplayLastEventId"] == event["id"]
    stats = stack.sim.admin.stats()
    assert stats.status(404) == 0  # no lookup or PATCH of another id (the message's)
    assert stats.count(PATCH_ATTRIBUTES, 202) == len(history)
    assert stats.count(GET_CONVERSATION, 404) == 0
