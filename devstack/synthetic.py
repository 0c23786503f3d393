"""Synthetic but realistic DLQ messages: for `dlq-replay seed`, the demo and the benchmarks.

Conversation topics come in families (a conversation's start, its ACD and agent legs,
its end), so the workload is N conversations with a few events each, plus events with
no conversation (user presence), EventBridge's duplicates and some malformed messages.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from devstack.sim_conversations import participant_id

DEFAULT_ORG = "5b1f0d2e-8c34-4e1a-9a77-2d6c0e9f4b13"
CONVERSATION_TOPICS = ("customer.start", "acd.end", "agent.end", "customer.end")
#: How far apart a conversation's events happened. EventBridge's `time` has whole seconds,
#: so events a second or more apart have distinct, increasing times: what an ordered
#: replay sorts by, and what a benchmark checks the arrival order against.
EVENT_SPACING = timedelta(seconds=30)
ERRORS = (
    ("THROTTLING", "Rate Exceeded.", "MaximumEventAgeInSeconds", "57"),
    ("ERROR_FROM_TARGET", "Function returned an error.", "MaximumRetryAttempts", "185"),
    (
        "NO_PERMISSIONS",
        "Not authorized to send messages to the queue.",
        "MaximumRetryAttempts",
        "0",
    ),
    ("TIMEOUT", "Timeout.", "MaximumRetryAttempts", "185"),
)
MALFORMED_BODIES = (
    "{not json",
    '{"detail-type": "x", "source": "aws.partner/genesys.com", "detail": {}}',
    '"just a string"',
)


@dataclass(frozen=True, slots=True)
class SyntheticMessage:
    """One DLQ message to send: its body and the six EventBridge attributes."""

    body: str
    attributes: dict[str, str]
    event_id: str | None
    conversation_id: str | None

    def send_entry(self, entry_id: str) -> dict[str, Any]:
        """This message as an entry of `send_message_batch`."""
        return {
            "Id": entry_id,
            "MessageBody": self.body,
            "MessageAttributes": {
                name: {"DataType": "String", "StringValue": value}
                for name, value in self.attributes.items()
            },
        }


@dataclass(frozen=True, slots=True)
class Workload:
    """What `generate` made: the messages and what a correct drain should end with."""

    messages: list[SyntheticMessage]
    conversation_ids: list[str]
    unique_events: int
    duplicates: int
    malformed: int


#: The targets the synthetic messages name unless told otherwise.
DEFAULT_TARGETS = ("arn:aws:sqs:us-east-1:111122223333:crm-events",)
#: The rule the synthetic messages name unless told otherwise (devstack.rules creates it).
DEFAULT_RULE = "arn:aws:events:us-east-1:123456789012:rule/genesys/conversation-to-crm"


def generate(
    *,
    conversations: int,
    events_per_conversation: int = 4,
    presence_events: int = 0,
    duplicates: int = 0,
    malformed: int = 0,
    target_arns: Iterable[str] = DEFAULT_TARGETS,
    org_id: str = DEFAULT_ORG,
    seed: int | None = None,
    rule_arn: str = DEFAULT_RULE,
) -> Workload:
    """A shuffled DLQ workload; targets are assigned round-robin by conversation, all of
    them under `rule_arn` (create that rule with those targets for routing to accept them).
    """
    rng = random.Random(seed)
    targets = list(target_arns)
    conversation_ids = [_uuid(rng) for _ in range(conversations)]
    messages: list[SyntheticMessage] = []
    # Every conversation started long enough ago for all of its events to be in the past.
    started = _whole_seconds(datetime.now(UTC)) - EVENT_SPACING * events_per_conversation
    for n, conversation_id in enumerate(conversation_ids):
        # The customer as the simulator's generated conversation names it, so tracking
        # annotates a participant that exists.
        participant = participant_id(conversation_id, "customer")
        for k in range(events_per_conversation):
            topic = CONVERSATION_TOPICS[k % len(CONVERSATION_TOPICS)]
            event = conversation_event(
                rng, org_id, conversation_id, participant, topic, at=started + EVENT_SPACING * k
            )
            messages.append(
                _message(rng, event, targets[n % len(targets)], conversation_id, rule_arn)
            )
    for _ in range(presence_events):
        messages.append(_message(rng, presence_event(rng, org_id), targets[0], None, rule_arn))
    originals = list(messages)
    for _ in range(min(duplicates, len(originals))):
        messages.append(rng.choice(originals))
    for k in range(malformed):
        body = MALFORMED_BODIES[k % len(MALFORMED_BODIES)]
        messages.append(SyntheticMessage(body, _attributes(rng, targets[0], rule_arn), None, None))
    rng.shuffle(messages)
    return Workload(
        messages=messages,
        conversation_ids=conversation_ids,
        unique_events=len(originals),
        duplicates=min(duplicates, len(originals)),
        malformed=malformed,
    )


def conversation_event(
    rng: random.Random,
    org_id: str,
    conversation_id: str,
    participant_id: str,
    topic: str,
    *,
    at: datetime | None = None,
) -> dict[str, Any]:
    """A `v2.detail.events.conversation.{id}.*` event as EventBridge delivers it, that
    happened `at` (now by default)."""
    when = at or datetime.now(UTC)
    return _envelope(
        rng,
        org_id,
        detail_type=f"v2.detail.events.conversation.{{id}}.{topic}",
        topic=f"v2.detail.events.conversation.{conversation_id}.{topic}",
        at=when,
        body={
            "eventTime": int(when.timestamp() * 1000),
            "conversationId": conversation_id,
            "participantId": participant_id,
            "sessionId": _uuid(rng),
            "mediaType": rng.choice(["VOICE", "MESSAGE", "EMAIL"]),
            "provider": "Edge",
            "direction": rng.choice(["INBOUND", "OUTBOUND"]),
            "disconnectType": "CLIENT",
        },
    )


def presence_event(rng: random.Random, org_id: str) -> dict[str, Any]:
    """A user presence event: replayable, but with no conversation to track."""
    user = _uuid(rng)
    return _envelope(
        rng,
        org_id,
        detail_type="v2.users.{id}.presence",
        topic=f"v2.users.{user}.presence",
        body={
            "source": "PURECLOUD",
            "presenceDefinition": {
                "id": "6a3af858-942f-489d-9700-5f9bcdcdae9b",
                "systemPresence": rng.choice(["Available", "Away", "Busy"]),
            },
            "modifiedDate": datetime.now(UTC).isoformat(timespec="milliseconds"),
        },
    )


def send_batches(sqs: Any, queue_url: str, messages: Iterable[SyntheticMessage]) -> int:
    """Send messages ten at a time; returns how many were sent."""
    sent = 0
    for batch in _chunks(list(messages), 10):
        response = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[m.send_entry(str(n)) for n, m in enumerate(batch)]
        )
        if response.get("Failed"):
            raise RuntimeError(f"SQS refused {len(response['Failed'])} messages: {response}")
        sent += len(batch)
    return sent


def _envelope(
    rng: random.Random,
    org_id: str,
    *,
    detail_type: str,
    topic: str,
    body: dict[str, Any],
    at: datetime | None = None,
) -> dict[str, Any]:
    now = at or datetime.now(UTC)
    return {
        "version": "0",
        "id": _uuid(rng),
        "detail-type": detail_type,
        "source": f"aws.partner/genesys.com/cloud/{org_id}/dlq-replay-demo",
        "account": "111122223333",
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "topicName": topic,
            "version": "2",
            "eventBody": body,
            "metadata": {"CorrelationId": _uuid(rng)},
            "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        },
    }


def _message(
    rng: random.Random,
    event: dict[str, Any],
    target_arn: str,
    conversation_id: str | None,
    rule_arn: str,
) -> SyntheticMessage:
    return SyntheticMessage(
        body=json.dumps(event, separators=(",", ":")),
        attributes=_attributes(rng, target_arn, rule_arn),
        event_id=event["id"],
        conversation_id=conversation_id,
    )


def _attributes(rng: random.Random, target_arn: str, rule_arn: str) -> dict[str, str]:
    code, message, condition, attempts = rng.choice(ERRORS)
    return {
        "RULE_ARN": rule_arn,
        "TARGET_ARN": target_arn,
        "ERROR_CODE": code,
        "ERROR_MESSAGE": message,
        "EXHAUSTED_RETRY_CONDITION": condition,
        "RETRY_ATTEMPTS": attempts,
    }


def _chunks(items: list[SyntheticMessage], size: int) -> Iterator[list[SyntheticMessage]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _whole_seconds(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
