"""The DLQ message and the EventBridge event, as they arrive at the border."""

from __future__ import annotations

import json

import pytest
from helpers import FIXTURES

from dlq.events import DlqMessage, EventKey, InvalidMessage, parse_dlq_message, subscriber_record
from dlq.settings import MAX_EVENT_BYTES

ORG = "5b1f0d2e-8c34-4e1a-9a77-2d6c0e9f4b13"
TARGET = "arn:aws:sqs:us-east-1:111122223333:crm-events"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def message_with(body: str, **attributes: str) -> DlqMessage:
    values = {"TARGET_ARN": TARGET, **attributes}
    return DlqMessage.from_receive_message(
        {
            "MessageId": "m-1",
            "ReceiptHandle": "r-1",
            "Body": body,
            "MessageAttributes": {
                name: {"StringValue": value, "DataType": "String"} for name, value in values.items()
            },
        }
    )


def test_receive_message_and_lambda_record_normalise_to_the_same_message():
    received = DlqMessage.from_receive_message(fixture("dlq-receive-message.json")["Messages"][0])
    record = DlqMessage.from_lambda_record(fixture("dlq-lambda-sqs-event.json")["Records"][0])
    assert received.body == record.body
    assert received.error == record.error
    assert received.error.target_arn == "arn:aws:lambda:us-east-1:111122223333:function:crm-sync"
    assert received.error.error_code == "THROTTLING"
    assert received.error.exhausted_retry_condition == "MaximumEventAgeInSeconds"
    assert received.error.retry_attempts == 57
    assert received.receive_count == record.receive_count == 1
    assert received.message_id == "5f1c2b7e-0d3a-4b8e-9a61-3c2e9d7b1f40"


@pytest.mark.parametrize(
    ("name", "conversation", "participant"),
    [
        (
            "genesys-conversation-end-event.json",
            "7d3e9a41-2b6c-4f80-9c15-6a0b8e2f1d94",
            "c41a7e02-93d5-4b6f-8e21-0f5d9c3b7a68",
        ),
        ("genesys-queue-conversation-event.json", "7d3e9a41-2b6c-4f80-9c15-6a0b8e2f1d94", None),
        ("genesys-user-presence-event.json", None, None),
    ],
)
def test_each_topic_family_yields_its_conversation(name, conversation, participant):
    body = (FIXTURES / name).read_text()
    parsed = parse_dlq_message(message_with(body), org_id=ORG)
    assert parsed.conversation_id == conversation
    assert parsed.participant_id == participant
    assert parsed.key == EventKey(json.loads(body)["id"], TARGET)
    assert parsed.genesys is not None
    assert parsed.genesys.version == "2"


def test_every_lambda_fixture_record_is_either_parsed_or_rejected_with_a_reason():
    records = fixture("dlq-lambda-sqs-event.json")["Records"]
    outcomes = []
    for record in records:
        try:
            outcomes.append(parse_dlq_message(DlqMessage.from_lambda_record(record)).key.event_id)
        except InvalidMessage as exc:
            outcomes.append(exc.reason)
    assert outcomes[:2] == [
        "e2c6f0a8-4b1d-4c9e-8f3a-5d7b9e1c2a40",
        "4f1b8c2d-6e3a-4d5f-9b7c-0a2e4c6d8f11",
    ]
    assert outcomes[2].startswith("body is not JSON")


def test_the_conversation_id_falls_back_to_the_topic():
    event = fixture("genesys-conversation-end-event.json")
    del event["detail"]["eventBody"]["conversationId"]
    parsed = parse_dlq_message(message_with(json.dumps(event)))
    assert parsed.conversation_id == "7d3e9a41-2b6c-4f80-9c15-6a0b8e2f1d94"


def test_the_key_is_the_event_id_and_target_not_the_sqs_message_id():
    body = (FIXTURES / "genesys-conversation-end-event.json").read_text()
    first = message_with(body)
    second = DlqMessage.from_receive_message(
        {
            "MessageId": "m-2",
            "Body": body,
            "MessageAttributes": {"TARGET_ARN": {"StringValue": TARGET, "DataType": "String"}},
        }
    )
    assert parse_dlq_message(first).key == parse_dlq_message(second).key


def test_an_unknown_error_code_is_data():
    body = (FIXTURES / "genesys-user-presence-event.json").read_text()
    parsed = message_with(body, ERROR_CODE="SOMETHING_AWS_INVENTS_LATER")
    assert parsed.error.error_code == "SOMETHING_AWS_INVENTS_LATER"
    assert parse_dlq_message(parsed).key.target_arn == TARGET


def test_the_body_is_kept_byte_for_byte():
    body = (
        '{"id":"e1",  "detail-type":"x", "source":"s", '
        '"time":"2026-11-20T14:09:47Z", "detail":{"k":"é"}}'
    )
    message = message_with(body)
    parse_dlq_message(message)
    assert message.body == body


@pytest.mark.parametrize(
    ("body", "attributes", "reason"),
    [
        ("{not json", {}, "body is not JSON"),
        ('"a string"', {}, "not an EventBridge event"),
        ('{"detail-type":"x","source":"s","time":"2026-01-01T00:00:00Z","detail":{}}', {}, "id"),
        ("x" * (MAX_EVENT_BYTES + 1), {}, "larger than EventBridge"),
        ("{}", {"TARGET_ARN": ""}, "no TARGET_ARN"),
        ("{}", {"TARGET_ARN": "not-an-arn"}, "is not an ARN"),
    ],
)
def test_bad_input_is_refused_with_a_reason(body, attributes, reason):
    with pytest.raises(InvalidMessage) as caught:
        parse_dlq_message(message_with(body, **attributes))
    assert reason in caught.value.reason


def test_a_custom_bus_subscriber_record_is_named_as_such():
    body = (FIXTURES / "custom-bus-subscriber-dlq-record.json").read_text()
    with pytest.raises(InvalidMessage, match="custom-bus subscriber"):
        parse_dlq_message(message_with(body))


#: The record of the EventBridge user guide's "Retry policies and dead-letter queues"
#: page (eb-custom-bus-retry): two events that failed together in one batch.
GUIDE_SUBSCRIBER_RECORD = {
    "version": "1.0",
    "busArn": "arn:aws:events:us-east-1:111122223333:event-busv2/orders/EXAMPLE1234567890abcdef",
    "subscriberArn": (
        "arn:aws:events:us-east-1:111122223333:subscriber/large-orders/EXAMPLEabcdef1234567890"
    ),
    "targetArn": "arn:aws:sqs:us-east-1:111122223333:large-orders",
    "errorCode": "ACCESS_DENIED",
    "errorMessage": "The delivery role is not authorized to perform sqs:SendMessage on the target.",
    "exhaustedRetryCondition": "MaximumEventAgeInSeconds",
    "retryAttempts": 4,
    "failedMessages": [
        {"eventId": "a1b2c3d4-0001", "eventGroupId": "order-1001", "deduplicationId": None},
        {"eventId": "e5f6a7b8-0002", "eventGroupId": "order-1002", "deduplicationId": None},
    ],
}


def test_a_subscriber_record_names_one_key_per_failed_event_with_its_error():
    record = subscriber_record(json.dumps(GUIDE_SUBSCRIBER_RECORD))

    assert record is not None
    assert [k.event_id for k in record.keys] == ["a1b2c3d4-0001", "e5f6a7b8-0002"]
    assert {k.target_arn for k in record.keys} == {GUIDE_SUBSCRIBER_RECORD["targetArn"]}
    assert {k.rule_arn for k in record.keys} == {GUIDE_SUBSCRIBER_RECORD["subscriberArn"]}
    assert record.error.error_code == "ACCESS_DENIED"
    assert record.error.exhausted_retry_condition == "MaximumEventAgeInSeconds"
    assert record.error.retry_attempts == 4
    assert "archive" in record.reason


def test_the_fixture_subscriber_record_is_recognised():
    body = (FIXTURES / "custom-bus-subscriber-dlq-record.json").read_text()
    record = subscriber_record(body)
    assert record is not None and len(record.keys) == 1


@pytest.mark.parametrize(
    "body",
    ["not json", "[]", '{"id": "x", "failedMessages": []}', '{"failedMessages": [{}]}'],
)
def test_anything_else_is_not_a_subscriber_record(body):
    assert subscriber_record(body) is None


def test_an_event_of_another_org_is_refused_when_the_org_is_set():
    body = (FIXTURES / "genesys-conversation-end-event.json").read_text()
    with pytest.raises(InvalidMessage, match="not from GENESYS_ORG_ID"):
        parse_dlq_message(message_with(body), org_id="00000000-0000-0000-0000-000000000000")
    assert parse_dlq_message(message_with(body), org_id=None).conversation_id


@pytest.mark.parametrize("bad", ["../../users/me", "7d3e9a41/../x", "%2e%2e%2f", "x" * 36])
def test_a_conversation_id_that_is_not_a_uuid_is_refused(bad):
    event = fixture("genesys-conversation-end-event.json")
    event["detail"]["eventBody"]["conversationId"] = bad
    with pytest.raises(InvalidMessage, match="not a UUID"):
        parse_dlq_message(message_with(json.dumps(event)))


def test_a_message_of_any_shape_normalises_without_raising():
    message = DlqMessage.from_lambda_record({"body": {"not": "a string"}, "messageAttributes": 7})
    assert message.body == '{"not": "a string"}'
    assert message.error.target_arn is None
