"""One queue listed twice by a rule, against real parts: moto's EventBridge and SQS over
HTTP, its DynamoDB for the ledger, and the test Redis.

A DLQ message names the target's ARN, not its id. When the rule lists that ARN twice with
different inputs, nothing is sent and the item ends `failed`, coded `AmbiguousTarget`;
listed twice alike, the event is sent once. The decision itself is unit-tested in
tests/unit/test_ambiguous_targets.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from helpers import genesys_event, new_ledger, received_message

from devstack.moto_server import MotoServer
from dlq.aws import aws_client
from dlq.errors import GiveUp
from dlq.events import parse_dlq_message
from dlq.ledger import LedgerItem, Status
from dlq.locks import ConversationLocks
from dlq.replay import Replayer, ReplayOptions, ReplayOutcome
from dlq.retry import RetryPolicy
from dlq.settings import Settings
from dlq.targets import Redeliverer
from dlq.targets.rules import RuleTargetError

REGION = "us-east-1"
PATTERN = json.dumps({"source": [{"prefix": "aws.partner/genesys.com"}]})


@pytest.fixture()
def settings(moto_server: MotoServer, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(aws_region=REGION)


@pytest.fixture()
def redeliverer(settings: Settings, redis_client) -> Redeliverer:
    return Redeliverer(settings, cache=redis_client)


def new_queue(settings: Settings, name: str) -> tuple[str, str]:
    """A queue's URL and ARN."""
    sqs = aws_client("sqs", settings)
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, str(attributes["Attributes"]["QueueArn"])


def new_rule(settings: Settings, unique: str, targets: list[dict[str, Any]]) -> str:
    """A rule on a bus of its own with `targets`; its ARN."""
    events = aws_client("events", settings)
    bus = f"genesys-{unique}"
    events.create_event_bus(Name=bus)
    name = f"crm-sync-{unique}"
    rule_arn = str(events.put_rule(Name=name, EventBusName=bus, EventPattern=PATTERN)["RuleArn"])
    answer = events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    assert answer["FailedEntryCount"] == 0, answer["FailedEntries"]
    return rule_arn


def twice(queue: str, *inputs: str) -> list[dict[str, Any]]:
    """`queue` as the rule's target once per input, each under its own id."""
    return [{"Id": f"crm-{n}", "Arn": queue, "Input": text} for n, text in enumerate(inputs)]


def bodies(settings: Settings, url: str) -> list[str]:
    """Every body on the queue (received, so hidden from the next call)."""
    sqs = aws_client("sqs", settings)
    out: list[str] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
        "Messages", []
    ):
        out.extend(m["Body"] for m in batch)
    return out


def redeliver(redeliverer: Redeliverer, queue: str, rule_arn: str, **routing: Any):
    event = genesys_event()
    body = json.dumps(event)
    delivery = redeliverer.redeliver(
        target_arn=queue, rule_arn=rule_arn, event_id=event["id"], body=body, **routing
    )
    return delivery, body


def test_moto_lists_one_arn_put_twice_under_two_ids(settings, unique):
    _, queue = new_queue(settings, f"crm-{unique}")
    new_rule(settings, unique, twice(queue, '{"crm": "a"}', '{"crm": "b"}'))

    listed = aws_client("events", settings).list_targets_by_rule(
        Rule=f"crm-sync-{unique}", EventBusName=f"genesys-{unique}"
    )["Targets"]

    assert [(t["Id"], t["Arn"], t["Input"]) for t in listed] == [
        ("crm-0", queue, '{"crm": "a"}'),
        ("crm-1", queue, '{"crm": "b"}'),
    ]


def test_a_queue_listed_twice_with_different_inputs_receives_nothing_and_says_why(
    settings, redeliverer, unique
):
    url, queue = new_queue(settings, f"crm-{unique}")
    rule_arn = new_rule(settings, unique, twice(queue, '{"crm": "a"}', '{"crm": "b"}'))

    with pytest.raises(RuleTargetError) as refused:
        redeliver(redeliverer, queue, rule_arn)

    assert bodies(settings, url) == []
    assert refused.value.code == "AmbiguousTarget"
    assert isinstance(refused.value, GiveUp)
    assert refused.value.target_arn == queue
    message = str(refused.value)
    assert rule_arn in message and "crm-0, crm-1" in message
    assert f"--target-override {queue}" in message


def test_a_queue_listed_twice_with_identical_inputs_receives_the_event_once(
    settings, redeliverer, unique
):
    url, queue = new_queue(settings, f"crm-{unique}")
    rule_arn = new_rule(settings, unique, twice(queue, '{"crm": "a"}', '{"crm": "a"}'))

    delivery, _ = redeliver(redeliverer, queue, rule_arn)

    assert bodies(settings, url) == ['{"crm": "a"}']
    assert (delivery.route, delivery.transformed) == ("rule", True)


def test_an_override_sends_an_ambiguous_event_as_it_is(settings, redeliverer, unique):
    url, queue = new_queue(settings, f"crm-{unique}")
    rule_arn = new_rule(settings, unique, twice(queue, '{"crm": "a"}', '{"crm": "b"}'))

    delivery, body = redeliver(redeliverer, queue, rule_arn, override=queue)

    assert bodies(settings, url) == [body]
    assert (delivery.route, delivery.transformed) == ("override", False)


# --- through the ledger ---------------------------------------------------------------------


class NoNews:
    def mark(self, conversation_id: str, *, snapshot: Sequence[LedgerItem] = ()) -> None:
        pass


def test_an_ambiguous_item_ends_failed_with_its_code_in_the_ledger(
    settings, redeliverer, redis_client, unique
):
    url, queue = new_queue(settings, f"crm-{unique}")
    rule_arn = new_rule(settings, unique, twice(queue, '{"crm": "a"}', '{"crm": "b"}'))
    ledger = new_ledger(settings, f"ledger-{unique}")
    message = received_message(json.dumps(genesys_event()), queue, rule_arn=rule_arn)
    parsed = parse_dlq_message(message)
    ledger.put_received(parsed, message)
    replayer = Replayer(
        ledger=ledger,
        redeliverer=redeliverer,
        locks=ConversationLocks(redis_client, ttl_seconds=30),
        directory=None,
        news=NoNews(),
        policy=RetryPolicy(),
        options=ReplayOptions(verify_conversation=False, in_order=False),
    )

    outcome = replayer.replay(parsed.key)

    item = ledger.get(parsed.key)
    assert outcome is ReplayOutcome.FAILED
    assert item is not None and item.status is Status.FAILED
    assert item.last_error_code == "AmbiguousTarget"
    assert "--target-override" in (item.last_error or "")
    assert item.attempts == 1
    assert bodies(settings, url) == []
