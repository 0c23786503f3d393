"""Fuzzing both front doors and the Genesys client's id guard (hypothesis).

Properties, whatever arrives: the Lambda handler never raises; every message ends in
the ledger, accepted (`received`, body byte for byte) or `rejected` with a reason; the
queue empties; exactly the accepted keys reach the broker. And an id crafted to escape
the URL path never reaches the network, nor gets past the ingest as a conversation id.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from broker import queued_tasks
from helpers import (
    ORG,
    dlq_attributes,
    genesys_event,
    lambda_record,
    new_ledger,
    received_message,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlq.aws import aws_client
from dlq.events import DLQ_ATTRIBUTE_NAMES, InvalidMessage, parse_dlq_message
from dlq.genesys.client import build_genesys_client
from dlq.genesys.errors import InvalidRequest
from dlq.ingest import IngestOutcome, IngestResult
from dlq.ledger import Ledger, Status
from ingest.frontdoor import FrontDoor
from ingest.lambda_handler import handler
from ingest.poller import Poller
from tasks.application import app
from tasks.names import REPLAY_QUEUE
from tasks.producer import CeleryEnqueuer

TARGET = "arn:aws:sqs:us-east-1:111122223333:crm-events"
FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- strategies ---------------------------------------------------------------------------

#: The characters SQS accepts in a body or attribute value (#x9 #xA #xD #x20-#xD7FF ...).
sqs_text = st.text(
    st.characters(
        codec="utf-8", exclude_categories=["Cs"], exclude_characters="\x00\x0b\x0c\ufffe\uffff"
    ).filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20),
    max_size=60,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | sqs_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(sqs_text, inner, max_size=3),
    max_leaves=8,
)
#: Ids meant to escape `/api/v2/conversations/{id}`, plus near-UUIDs.
ESCAPES = [
    "../../oauth/token",
    "..%2F..%2Foauth%2Ftoken",
    "%2e%2e/%2e%2e/api/v2/users",
    "/",
    "",
    " ",
    "?x=1",
    "#frag",
    "a/b",
    "http://evil.example/",
    "\\..\\..",
    "0d1e2f3a-0000-4000-8000-000000000000/../../oauth/token",
    "0d1e2f3a-0000-4000-8000-000000000000\n",
    "0d1e2f3a-0000-4000-8000-000000000000?a=b",
    "0d1e2f3a-0000-4000-8000-00000000000g",
    "{0d1e2f3a-0000-4000-8000-000000000000}",
    "0d1e2f3a00004000800000000000000000000",
    "\uff10d1e2f3a-0000-4000-8000-000000000000",  # a full-width digit
]
_STRICT_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
crafted_ids = (
    st.sampled_from(ESCAPES)
    | st.text(max_size=50)
    | st.builds(lambda u, s: f"{u}{s}", st.uuids().map(str), st.sampled_from(ESCAPES))
    | st.builds(lambda s, u: f"{s}{u}", st.sampled_from(ESCAPES), st.uuids().map(str))
).filter(lambda value: not _STRICT_UUID.fullmatch(value))


@st.composite
def event_bodies(draw: st.DrawFn) -> str:
    """A DLQ body: a real event, one with a field broken or a crafted id, or anything."""
    kind = draw(st.sampled_from(["event"] * 3 + ["broken", "crafted_id", "json", "text"]))
    if kind == "json":
        return json.dumps(draw(json_values))
    if kind == "text":
        return draw(sqs_text.filter(bool))
    event = genesys_event(org=draw(st.sampled_from([ORG, ORG, ORG, str(uuid.uuid4())])))
    if kind == "broken":
        path = draw(
            st.sampled_from(
                [
                    ("id",),
                    ("source",),
                    ("time",),
                    ("detail",),
                    ("detail-type",),
                    ("detail", "topicName"),
                    ("detail", "eventBody"),
                    ("detail", "eventBody", "participantId"),
                ]
            )
        )
        parent = event
        for step in path[:-1]:
            parent = parent[step]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(json_values)
    elif kind == "crafted_id":
        event["detail"]["eventBody"]["conversationId"] = draw(crafted_ids.filter(bool))
    if draw(st.booleans()):
        event["id"] = draw(sqs_text.filter(bool))
    return json.dumps(event)


#: The six DLQ attributes, some missing or odd, and strangers.
random_attributes = st.dictionaries(
    st.sampled_from([*DLQ_ATTRIBUTE_NAMES, "Other", "target_arn"]),
    st.sampled_from([TARGET, "arn:x", "not-an-arn", "185", ""]) | sqs_text,
    max_size=8,
)
EVENTBRIDGE_ATTRIBUTES = {
    name: value["StringValue"] for name, value in dlq_attributes(TARGET).items()
}
attribute_maps = st.one_of(
    st.just(EVENTBRIDGE_ATTRIBUTES),
    st.just(EVENTBRIDGE_ATTRIBUTES),
    st.builds(
        lambda name, value: {**EVENTBRIDGE_ATTRIBUTES, name: value},
        st.sampled_from(DLQ_ATTRIBUTE_NAMES),
        sqs_text,
    ),
    random_attributes,
)


@st.composite
def lambda_records(draw: st.DrawFn) -> Any:
    """An SQS-triggered Lambda record, or something shaped almost (or nothing) like one."""
    shape = draw(st.sampled_from(["record"] * 6 + ["odd_fields", "not_a_record"]))
    if shape == "not_a_record":
        return draw(json_values)
    attributes = draw(attribute_maps)
    record: dict[str, Any] = {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "handle",
        "body": draw(event_bodies()),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String"} for name, value in attributes.items()
        },
        "eventSource": "aws:sqs",
    }
    if shape == "odd_fields":
        name = draw(st.sampled_from(["body", "attributes", "messageAttributes", "messageId"]))
        record[name] = draw(json_values)
    return record


# --- the ledger's account of each message ---------------------------------------------------


@dataclass
class RecordingDoor:
    """A front door that keeps what became of every message it handled."""

    door: FrontDoor
    results: list[IngestResult] = field(default_factory=list)

    def handle(self, message: Any, *, draining: bool = False) -> IngestResult:
        result = self.door.handle(message, draining=draining)
        self.results.append(result)
        return result

    def received(self, count: int, *, wait_seconds: float) -> None:
        self.door.received(count, wait_seconds=wait_seconds)

    def flush_counts(self) -> None:
        self.door.flush_counts()


@pytest.fixture()
def fresh(moto_server, redis_client, make_settings):
    """A per-example ledger table and empty broker queue (returns a factory)."""
    settings_ = make_settings()

    def make() -> tuple[RecordingDoor, Ledger]:
        redis_client.delete(REPLAY_QUEUE)
        ledger = new_ledger(settings_, f"fuzz-{uuid.uuid4().hex[:12]}")
        door = FrontDoor(ledger=ledger, enqueuer=CeleryEnqueuer(app), org_id=ORG)
        return RecordingDoor(door), ledger

    return make


def assert_accounted(door: RecordingDoor, ledger: Ledger, bodies: dict[str, str], redis_client):
    """Every handled message is in the ledger as accepted or rejected; nothing else is.

    `bodies` maps each SQS message id to the body sent under it.
    """
    items = list(ledger.scan())
    accepted: set[tuple[str, str, str, str]] = set()
    rejected: list[IngestResult] = []
    for result in door.results:
        if result.outcome is IngestOutcome.REJECTED:
            assert result.reason
            rejected.append(result)
            continue
        assert result.key is not None
        item = ledger.get(result.key)
        assert item is not None
        if result.outcome is IngestOutcome.ACCEPTED:
            assert item.status is Status.RECEIVED
            if result.message_id:
                assert item.body == bodies[result.message_id]
            key = result.key
            lock = item.conversation_id or f"event:{key.event_id}|{key.target_arn}"
            accepted.add((key.event_id, key.target_arn, key.rule_arn, lock))
        else:
            assert item.duplicates >= 1
    kept = [i for i in items if i.status is Status.REJECTED]
    assert len(kept) == len(rejected)
    for result in rejected:
        matching = [i for i in kept if i.sqs_message_id == result.message_id]
        assert matching
        if result.message_id:  # a message id without a usable one is keyed by a fresh uuid
            [item] = matching
            assert item.reject_reason == (result.reason or "")[:1000]
            assert item.body == bodies[result.message_id]
    assert len(items) == len(accepted) + len(rejected)
    # Each task: the key, the lock and the item's generation (None until a redrive).
    assert {tuple(args) for _, args in queued_tasks(redis_client)} == {
        (*task, None) for task in accepted
    }


def body_of(record: Any) -> str:
    from dlq.events import DlqMessage

    return DlqMessage.from_lambda_record(record if isinstance(record, dict) else {}).body


# --- the front doors ------------------------------------------------------------------------


def test_the_lambda_accounts_for_every_record_and_never_raises(fresh, redis_client):
    totals: Counter[str] = Counter()

    @FUZZ
    @given(event=st.lists(lambda_records(), min_size=1, max_size=4).map(lambda r: {"Records": r}))
    def check(event: dict[str, Any]) -> None:
        door, ledger = fresh()
        result = handler(event, None, front_door=cast(FrontDoor, door))

        assert result == {"batchItemFailures": []}
        records = event["Records"]
        assert len(door.results) == len(records)
        bodies = {r.message_id: body_of(rec) for r, rec in zip(door.results, records, strict=True)}
        assert_accounted(door, ledger, bodies, redis_client)
        totals.update(r.outcome.value for r in door.results)

    check()
    print(f"\nfuzz lambda: {sum(totals.values())} records, {dict(totals)}, 0 failures")


def test_the_poller_empties_the_queue_and_accounts_for_every_message(
    fresh, redis_client, moto_server, make_settings
):
    sqs = aws_client("sqs", make_settings())
    totals: Counter[str] = Counter()
    messages_strategy = st.lists(
        st.tuples(event_bodies(), attribute_maps.map(lambda a: {k: v for k, v in a.items() if v})),
        min_size=1,
        max_size=6,
    )

    @FUZZ
    @given(messages=messages_strategy, copies=st.integers(min_value=1, max_value=2))
    def check(messages: list[tuple[str, dict[str, str]]], copies: int) -> None:
        door, ledger = fresh()
        queue_url = sqs.create_queue(QueueName=f"fuzz-{uuid.uuid4().hex[:12]}")["QueueUrl"]
        bodies: dict[str, str] = {}
        for body, attributes in messages * copies:  # copies: EventBridge's duplicates
            sent = sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=body,
                MessageAttributes={
                    name: {"StringValue": value, "DataType": "String"}
                    for name, value in attributes.items()
                },
            )
            bodies[sent["MessageId"]] = body
        door_ = cast(FrontDoor, door)
        stats = Poller(sqs=sqs, queue_url=queue_url, front_door=door_, wait_seconds=0).run(
            until_empty=True
        )

        assert "kept" not in stats.counts
        assert sorted(r.message_id for r in door.results) == sorted(bodies)
        queue = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
        assert queue["Attributes"]["ApproximateNumberOfMessages"] == "0"
        assert queue["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"
        assert_accounted(door, ledger, bodies, redis_client)
        sqs.delete_queue(QueueUrl=queue_url)
        totals.update(r.outcome.value for r in door.results)

    check()
    print(f"\nfuzz poller: {sum(totals.values())} messages, {dict(totals)}, 0 kept, 0 left")


# --- ids that would escape the URL path ----------------------------------------------------


@pytest.fixture()
def genesys_client(genesys_settings, redis_client):
    return build_genesys_client(genesys_settings, redis_client)


def test_crafted_ids_are_refused_before_any_request(genesys_client, sim_admin):
    tried: list[str] = []

    @settings(max_examples=300, deadline=None)
    @given(bad=crafted_ids, good=st.uuids().map(str))
    def check(bad: str, good: str) -> None:
        with pytest.raises(InvalidRequest):
            genesys_client.get_conversation(bad)
        with pytest.raises(InvalidRequest):
            genesys_client.patch_participant_attributes(bad, good, {"k": "v"})
        with pytest.raises(InvalidRequest):
            genesys_client.patch_participant_attributes(good, bad, {"k": "v"})
        tried.append(bad)

    check()
    stats = sim_admin.stats()
    assert stats.requests == 0  # not one API call, not even a token request
    print(f"\ncrafted ids: {len(tried)} ids x 3 calls refused; the simulator saw {stats.requests}")


@settings(max_examples=200, deadline=None)
@given(bad=crafted_ids.filter(bool), in_topic=st.booleans())
def test_the_ingest_rejects_every_conversation_id_that_is_not_a_uuid(bad, in_topic):
    event = genesys_event()
    if in_topic:
        # Without eventBody.conversationId, the id is read from the topic's 5th segment.
        del event["detail"]["eventBody"]["conversationId"]
        event["detail"]["topicName"] = f"v2.detail.events.conversation.{bad}.customer.end"
    else:
        event["detail"]["eventBody"]["conversationId"] = bad
    message = received_message(json.dumps(event), TARGET)
    try:
        parsed = parse_dlq_message(message)
    except InvalidMessage as exc:
        assert "not a UUID" in exc.reason
        return
    # What passes is a UUID in another spelling (uuid.UUID reads full-width digits, or
    # braces and hyphens in odd places), or a topic whose 5th dot-segment is one (or is
    # empty): either way the id that leaves the ingest is the canonical ASCII form.
    cid = parsed.conversation_id
    assert in_topic or cid is not None
    assert cid is None or (_STRICT_UUID.fullmatch(cid) and str(uuid.UUID(cid)) == cid)


@settings(max_examples=100, deadline=None)
@given(document=json_values, body_id=json_values)
def test_whatever_the_body_a_parsed_conversation_id_is_a_canonical_uuid(document, body_id):
    event = genesys_event()
    event["detail"]["eventBody"] = {"conversationId": body_id, "id": body_id}
    if isinstance(document, str):
        event["detail"]["topicName"] = document
    for body in (json.dumps(event), json.dumps(document)):
        try:
            parsed = parse_dlq_message(received_message(body, TARGET))
        except InvalidMessage:
            continue
        cid = parsed.conversation_id
        assert cid is None or (_STRICT_UUID.fullmatch(cid) and str(uuid.UUID(cid)) == cid)


@pytest.fixture()
def lambda_door(make_settings, moto_server, redis_client, unique) -> Iterator[FrontDoor]:
    ledger = new_ledger(make_settings(), f"ledger-{unique}")
    yield FrontDoor(ledger=ledger, enqueuer=CeleryEnqueuer(app), org_id=ORG)


@pytest.mark.parametrize("bad", ESCAPES[:4] + ESCAPES[11:14])
def test_a_crafted_conversation_id_is_kept_as_rejected_and_never_enqueued(
    lambda_door, redis_client, bad
):
    event = genesys_event()
    event["detail"]["eventBody"]["conversationId"] = bad
    body = json.dumps(event)
    record = lambda_record(body, TARGET)
    assert handler({"Records": [record]}, None, front_door=lambda_door) == {"batchItemFailures": []}
    [item] = list(lambda_door.ledger.scan())
    assert item.status is Status.REJECTED
    assert "not a UUID" in (item.reject_reason or "")
    assert item.body == body
    assert queued_tasks(redis_client) == []


@pytest.mark.parametrize("target", ["arn:aws:sqs:us-east-1:1:" + "q" * 1100, "x" * 1100])
def test_a_target_arn_too_long_for_the_ledger_key_is_kept_as_rejected(lambda_door, target):
    record = lambda_record(json.dumps(genesys_event()), target)
    result = handler({"Records": [record]}, None, front_door=lambda_door)
    assert result == {"batchItemFailures": []}
    [item] = list(lambda_door.ledger.scan())
    assert item.status is Status.REJECTED
    assert "TARGET_ARN" in (item.reject_reason or "")
