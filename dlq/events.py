"""What arrives from the dead-letter queue: the SQS message, the EventBridge event, the key.

A DLQ message comes in two shapes (`sqs.receive_message` and an SQS-triggered Lambda
record); both normalise into `DlqMessage`. Its body is the original EventBridge event,
kept byte for byte; `parse_dlq_message` validates it into a `ParsedEvent` or raises
`InvalidMessage` with a reason fit for the ledger.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dlq.settings import MAX_EVENT_BYTES
from dlq.topics import GenesysDetail, NotAConversationId, conversation_id_of, genesys_org_of

#: Longest TARGET_ARN accepted (ARNs stay well below it; DynamoDB keys stop at 1024 bytes).
MAX_ARN_BYTES = 1024

#: The six message attributes EventBridge puts on a rule-target DLQ message.
DLQ_ATTRIBUTE_NAMES = (
    "RULE_ARN",
    "TARGET_ARN",
    "ERROR_CODE",
    "ERROR_MESSAGE",
    "EXHAUSTED_RETRY_CONDITION",
    "RETRY_ATTEMPTS",
)


class InvalidMessage(ValueError):
    """A DLQ message that cannot be replayed; `reason` says why, for the ledger, and
    `code` in a word when there is one (`ForeignOrg`, `BusNotAllowed`...)."""

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass(frozen=True, slots=True)
class EventKey:
    """The idempotency key: one ledger item per (event id, rule ARN, target ARN).

    As EventBridge counts deliveries: the same event failing at one target under two
    rules is two deliveries, while EventBridge's own duplicates of one rule-target pair
    (the same event in the DLQ twice, under two SQS message ids) are one. The SQS
    message id is therefore not part of it. `rule_arn` is empty when the DLQ message
    named no rule.
    """

    event_id: str
    target_arn: str
    rule_arn: str = ""


@dataclass(frozen=True, slots=True)
class DlqError:
    """The DLQ's account of why EventBridge gave up (an unknown code is data, not an error)."""

    rule_arn: str | None = None
    target_arn: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    exhausted_retry_condition: str | None = None
    retry_attempts: int | None = None


@dataclass(frozen=True, slots=True)
class DlqMessage:
    """One DLQ message, whichever front door it came through."""

    message_id: str
    receipt_handle: str
    body: str
    error: DlqError
    receive_count: int
    sent_at: datetime | None

    @classmethod
    def from_receive_message(cls, message: Mapping[str, Any]) -> DlqMessage:
        """Normalise a message of `sqs.receive_message` (`StringValue`/`DataType`)."""
        return cls._build(
            message_id=message.get("MessageId"),
            receipt_handle=message.get("ReceiptHandle"),
            body=message.get("Body"),
            system=message.get("Attributes"),
            attributes=message.get("MessageAttributes"),
            value_key="StringValue",
        )

    @classmethod
    def from_lambda_record(cls, record: Mapping[str, Any]) -> DlqMessage:
        """Normalise a record of an SQS-triggered Lambda event (`stringValue`/`dataType`)."""
        return cls._build(
            message_id=record.get("messageId"),
            receipt_handle=record.get("receiptHandle"),
            body=record.get("body"),
            system=record.get("attributes"),
            attributes=record.get("messageAttributes"),
            value_key="stringValue",
        )

    @classmethod
    def _build(
        cls,
        *,
        message_id: object,
        receipt_handle: object,
        body: object,
        system: object,
        attributes: object,
        value_key: str,
    ) -> DlqMessage:
        # Lenient on purpose: whatever the shape, the message must reach the ledger,
        # so anything odd is kept as text and judged later by parse_dlq_message.
        system = system if isinstance(system, Mapping) else {}
        attributes = attributes if isinstance(attributes, Mapping) else {}

        def attribute(name: str) -> str | None:
            entry = attributes.get(name)
            if isinstance(entry, Mapping):
                value = entry.get(value_key, entry.get("StringValue", entry.get("stringValue")))
                return value if isinstance(value, str) else None
            return None

        retry_attempts = attribute("RETRY_ATTEMPTS")
        return cls(
            message_id=_text(message_id),
            receipt_handle=_text(receipt_handle),
            body=body if isinstance(body, str) else json.dumps(body, default=str),
            error=DlqError(
                rule_arn=attribute("RULE_ARN"),
                target_arn=attribute("TARGET_ARN"),
                error_code=attribute("ERROR_CODE"),
                error_message=attribute("ERROR_MESSAGE"),
                exhausted_retry_condition=attribute("EXHAUSTED_RETRY_CONDITION"),
                retry_attempts=_int_or_none(retry_attempts),
            ),
            receive_count=_int_or_none(system.get("ApproximateReceiveCount")) or 1,
            sent_at=_epoch_ms(system.get("SentTimestamp")),
        )


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    """A custom-bus subscriber's dead-letter record: a JSON document naming the events
    that failed, not the events themselves.

    EventBridge User Guide, "Retry policies and dead-letter queues" (eb-custom-bus-retry):
    `busArn`, `subscriberArn`, `targetArn`, `errorCode`, `errorMessage`,
    `exhaustedRetryCondition`, `retryAttempts`, `failedMessages[]` with `eventId`.
    """

    keys: tuple[EventKey, ...]
    error: DlqError

    @property
    def reason(self) -> str:
        return (
            f"named by a custom-bus subscriber dead-letter record ({self.error.error_code}), "
            "which does not carry the event: it cannot be redelivered from here; replay it "
            f"from the bus's archive to {self.error.target_arn} (subscriber "
            f"{self.error.rule_arn})"
        )


def subscriber_record(body: str) -> SubscriberRecord | None:
    """The subscriber record in `body`, or None when the body is not one."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict) or "id" in document:
        return None
    failed = document.get("failedMessages")
    target = document.get("targetArn")
    subscriber = document.get("subscriberArn")
    if not isinstance(failed, list) or not isinstance(target, str) or not target:
        return None
    subscriber = subscriber if isinstance(subscriber, str) else ""
    ids = [m.get("eventId") for m in failed if isinstance(m, dict)]
    keys = tuple(
        EventKey(str(i)[:256], target[:MAX_ARN_BYTES], subscriber[:MAX_ARN_BYTES])
        for i in ids
        if isinstance(i, str) and i
    )
    error = DlqError(
        rule_arn=subscriber or None,
        target_arn=target,
        error_code=_str_or_none(document.get("errorCode")),
        error_message=_str_or_none(document.get("errorMessage")),
        exhausted_retry_condition=_str_or_none(document.get("exhaustedRetryCondition")),
        retry_attempts=_int_or_none(document.get("retryAttempts")),
    )
    return SubscriberRecord(keys=keys, error=error) if keys else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


class EventBridgeEvent(BaseModel):
    """The envelope of an EventBridge event, as the DLQ body carries it."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    id: str = Field(min_length=1, max_length=256)
    detail_type: str = Field(alias="detail-type")
    source: str = Field(min_length=1)
    time: datetime
    detail: dict[str, Any]
    account: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """A DLQ message that can be replayed: its key, envelope and Genesys context."""

    key: EventKey
    event: EventBridgeEvent
    genesys: GenesysDetail | None
    conversation_id: str | None
    participant_id: str | None

    @property
    def correlation_id(self) -> str | None:
        if self.genesys is None or self.genesys.metadata is None:
            return None
        return self.genesys.metadata.correlation_id


def parse_dlq_message(message: DlqMessage, *, org_id: str | None = None) -> ParsedEvent:
    """Validate a DLQ message into a replayable event, or raise `InvalidMessage`."""
    size = len(message.body.encode("utf-8", errors="surrogatepass"))
    if size > MAX_EVENT_BYTES:
        raise InvalidMessage(
            f"body is {size} bytes, larger than EventBridge's {MAX_EVENT_BYTES}-byte event limit"
        )
    target_arn = message.error.target_arn
    if not target_arn:
        raise InvalidMessage(
            "no TARGET_ARN message attribute: not a message from an EventBridge rule-target DLQ"
        )
    if not target_arn.startswith("arn:"):
        raise InvalidMessage(f"TARGET_ARN {target_arn[:200]!r} is not an ARN")
    if len(target_arn.encode()) > MAX_ARN_BYTES:
        raise InvalidMessage(f"TARGET_ARN is longer than any ARN ({MAX_ARN_BYTES} bytes)")
    try:
        document = json.loads(message.body)
    except ValueError as exc:
        raise InvalidMessage(f"body is not JSON: {exc}") from None
    if isinstance(document, dict) and "failedMessages" in document and "id" not in document:
        raise InvalidMessage(
            "a custom-bus subscriber DLQ record: it names failed event ids but does not carry "
            "the events; replay those from the bus archive"
        )
    try:
        event = EventBridgeEvent.model_validate(document)
    except ValidationError as exc:
        raise InvalidMessage(f"not an EventBridge event: {_first_error(exc)}") from None

    if org_id is not None:
        source_org = genesys_org_of(event.source)
        if source_org != org_id:
            named = f"org {source_org}" if source_org else f"source {event.source[:200]!r}"
            raise InvalidMessage(
                f"event from {named}, not from GENESYS_ORG_ID {org_id} (the ingest's setting: "
                "the poller or the Lambda reads it)",
                code="ForeignOrg",
            )

    genesys: GenesysDetail | None = None
    conversation_id = participant_id = None
    if "topicName" in event.detail:
        try:
            genesys = GenesysDetail.model_validate(event.detail)
        except ValidationError as exc:
            raise InvalidMessage(f"not a Genesys event detail: {_first_error(exc)}") from None
        try:
            conversation_id = conversation_id_of(genesys)
        except NotAConversationId as exc:
            raise InvalidMessage(str(exc)) from None
        participant_id = _checked_uuid(genesys.event_body.get("participantId"), "participantId")

    return ParsedEvent(
        key=EventKey(
            event_id=event.id, target_arn=target_arn, rule_arn=message.error.rule_arn or ""
        ),
        event=event,
        genesys=genesys,
        conversation_id=conversation_id,
        participant_id=participant_id,
    )


def _checked_uuid(value: object, what: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str) and len(value) == 36:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise InvalidMessage(f"{what} {str(value)[:80]!r} is not a UUID")


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "body"
    return f"{where}: {error['msg']}"


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload, no-any-return]
    except (TypeError, ValueError):
        return None


def _epoch_ms(value: object) -> datetime | None:
    millis = _int_or_none(value)
    if millis is None:
        return None
    try:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
