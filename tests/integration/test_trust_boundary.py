"""The trust boundary against real parts: moto's EventBridge, SQS and DynamoDB, the test
Redis, the poller as the front door and the workers' runtime built from the environment.

Anyone allowed sqs:SendMessage on the DLQ can write a message; the boundary decides which
the replay acts on: Genesys events of the org, named by rules meant for them (the org's
partner bus, or buses and rules an operator allows), that the rule's pattern matches.
Everything else ends `rejected` with the reason, and nothing reaches any target.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from helpers import ORG, SIM_CLIENT_ID, SIM_CLIENT_SECRET, dlq_attributes, genesys_event
from stack import BASE_ENV, Stack, configured

from dlq.boundary import TrustBoundary
from dlq.events import EventKey
from dlq.ledger import LedgerItem, Status
from dlq.replay import ReplayOutcome
from ingest.frontdoor import FrontDoor
from ingest.poller import Poller

OTHER_ORG = "0badc0de-0000-4000-8000-000000000000"
ACCOUNT = "123456789012"

ENV = {
    **BASE_ENV,  # REPLAY_ALLOWED_BUSES=genesys-*, GENESYS_ORG_ID=ORG
    "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
    "GENESYS_CLIENT_SECRET": SIM_CLIENT_SECRET,
    "REPLAY_VERIFY_CONVERSATION": "false",
}


@pytest.fixture()
def stack(moto_server, redis_url, unique) -> Iterator[Stack]:
    with configured({**ENV, "LEDGER_TABLE": f"ledger-{unique}"}):
        yield Stack(unique, None)


def replay(key: EventKey) -> ReplayOutcome:
    """The workers' replay of one item, as their runtime is built from the environment."""
    from tasks.runtime import runtime

    return runtime().replayer.replay(key)


def rule_with_queue(
    stack: Stack, bus: str, name: str, pattern: dict[str, Any] | None = None
) -> tuple[str, str, str]:
    """A rule on `bus` (created if need be) whose target is a new queue: (rule ARN, queue
    URL, queue ARN)."""
    # Not by listing the buses: one page of ListEventBuses does not hold them all once a
    # test process has made many.
    with contextlib.suppress(stack.events.exceptions.ResourceAlreadyExistsException):
        stack.events.create_event_bus(Name=bus)
    url = stack.queue(name)
    arn = stack.arn_of(url)
    pattern = pattern or {"source": [{"prefix": "aws.partner/genesys.com"}]}
    rule_arn = stack.events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    stack.events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return str(rule_arn["RuleArn"]), url, arn


def dead_letter(stack: Stack, body: dict[str, Any], *, rule_arn: str, target_arn: str) -> None:
    """A message on the DLQ naming `rule_arn` and `target_arn`: whoever wrote it."""
    stack.sqs.send_message(
        QueueUrl=stack.dlq_url,
        MessageBody=json.dumps(body),
        MessageAttributes=dlq_attributes(target_arn, rule_arn=rule_arn),
    )


def only_item(stack: Stack) -> LedgerItem:
    [item] = list(stack.ledger.scan())
    return item


def refund_requested() -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "RefundRequested",
        "source": "com.example.payments",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": {"orderId": "o-1", "amount": 100000, "to": "attacker"},
    }


# --- a forged message --------------------------------------------------------------------------


@pytest.mark.parametrize("body", [refund_requested, genesys_event], ids=["refund", "genesys"])
def test_a_forged_message_naming_a_payments_rule_sends_nothing_to_its_queue(stack, unique, body):
    rule_arn, refunds_url, refunds = rule_with_queue(
        stack,
        f"payments-{unique}",
        f"refund-requested-{unique}",
        {"source": ["com.example.payments"]},
    )
    dead_letter(stack, body(), rule_arn=rule_arn, target_arn=refunds)

    assert stack.ingest() == {"rejected": 1}

    item = only_item(stack)
    assert (item.status, item.last_error_code) == (Status.REJECTED, "BusNotAllowed")
    assert f"bus payments-{unique}" in (item.reject_reason or "")
    assert "sqs:SendMessage" in (item.reject_reason or "")
    assert stack.target_messages(refunds_url) == []


def test_a_forged_message_admitted_by_an_ingest_without_the_boundary_is_rejected_by_the_worker(
    stack, unique
):
    # An item admitted before the boundary existed, or by an ingest configured otherwise.
    rule_arn, refunds_url, refunds = rule_with_queue(
        stack, f"payments-{unique}", f"refund-requested-{unique}"
    )
    event = genesys_event()
    dead_letter(stack, event, rule_arn=rule_arn, target_arn=refunds)
    from tasks.application import app
    from tasks.producer import CeleryEnqueuer

    lax = TrustBoundary(org_id=ORG, buses=("*",))
    door = FrontDoor(ledger=stack.ledger, enqueuer=CeleryEnqueuer(app), boundary=lax)
    Poller(sqs=stack.sqs, queue_url=stack.dlq_url, front_door=door, wait_seconds=0).run(
        until_empty=True
    )

    outcome = replay(EventKey(event["id"], refunds, rule_arn))

    item = only_item(stack)
    assert outcome is ReplayOutcome.REJECTED
    assert (item.status, item.last_error_code) == (Status.REJECTED, "BusNotAllowed")
    assert item.reject_reason == item.last_error
    assert stack.target_messages(refunds_url) == []


# --- the org, the bus, the pattern --------------------------------------------------------------


def test_an_event_from_another_org_is_rejected_at_ingest(stack):
    stack.put_dlq(genesys_event(org=OTHER_ORG))

    assert stack.ingest() == {"rejected": 1}

    item = only_item(stack)
    assert (item.status, item.last_error_code) == (Status.REJECTED, "ForeignOrg")
    assert OTHER_ORG in (item.reject_reason or "")
    assert stack.target_messages() == []


def test_an_event_its_rule_does_not_match_is_rejected_by_the_worker_and_not_sent(stack, unique):
    ended = {"source": [{"prefix": "aws.partner/genesys.com"}], "detail-type": [{"suffix": ".end"}]}
    rule_arn, url, queue = rule_with_queue(stack, stack.bus, f"ended-{unique}", ended)
    event = genesys_event(topic="customer.start")
    dead_letter(stack, event, rule_arn=rule_arn, target_arn=queue)
    assert stack.ingest() == {"accepted": 1}  # the ingest calls no AWS API: it cannot tell

    outcome = replay(EventKey(event["id"], queue, rule_arn))

    item = only_item(stack)
    assert outcome is ReplayOutcome.REJECTED
    assert (item.status, item.last_error_code) == (Status.REJECTED, "PatternMismatch")
    assert rule_arn in (item.reject_reason or "")
    assert stack.target_messages(url) == []


def test_a_rule_on_a_custom_bus_that_is_not_allowed_is_rejected(stack, unique):
    rule_arn, url, queue = rule_with_queue(stack, f"crm-{unique}", f"crm-sync-{unique}")
    dead_letter(stack, genesys_event(), rule_arn=rule_arn, target_arn=queue)

    assert stack.ingest() == {"rejected": 1}

    item = only_item(stack)
    assert (item.status, item.last_error_code) == (Status.REJECTED, "BusNotAllowed")
    assert "REPLAY_ALLOWED_BUSES" in (item.reject_reason or "")
    assert stack.target_messages(url) == []


def test_a_rule_on_an_allowed_bus_whose_pattern_matches_still_delivers(stack):
    event = genesys_event()
    stack.put_dlq(event)
    assert stack.ingest() == {"accepted": 1}

    outcome = replay(EventKey(event["id"], stack.target_arn, stack.rule_arn))

    assert outcome is ReplayOutcome.REPLAYED
    assert only_item(stack).status is Status.REPLAYED
    assert stack.target_messages() == [json.dumps(event)]


def test_a_rule_allowed_by_its_arn_delivers_though_its_bus_is_not_allowed(
    moto_server, redis_url, unique
):
    # Stack's rule, named before it is made: REPLAY_ALLOWED_RULES instead of the bus.
    rule_arn = (
        f"arn:aws:events:us-east-1:{ACCOUNT}:rule/genesys-{unique}/conversations-to-crm-{unique}"
    )
    env = {
        **ENV,
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_ALLOWED_BUSES": "",
        "REPLAY_ALLOWED_RULES": json.dumps([rule_arn]),
    }
    with configured(env):
        stack = Stack(unique, None)
        assert stack.rule_arn == rule_arn
        event = genesys_event()
        stack.put_dlq(event)
        assert stack.ingest() == {"accepted": 1}

        assert replay(EventKey(event["id"], stack.target_arn, rule_arn)) is ReplayOutcome.REPLAYED
        assert stack.target_messages() == [json.dumps(event)]


# --- the default: the org's Genesys partner bus -------------------------------------------------


def partner_rule(stack: Stack, org: str, unique: str) -> tuple[str, str, str]:
    """A rule on a Genesys partner event bus of `org` whose target is a new queue: (rule
    ARN, as EventBridge writes it for a partner bus; queue URL; queue ARN).

    moto (5.2) keeps a rule's bus by the last part of its name (it splits EventBusName on
    "/", as for an ARN), so it cannot put a rule on a partner bus by its real name: the
    partner bus stands here as a custom bus named after that last part, which moto then
    finds under the partner bus's name too (ListTargetsByRule, DescribeRule).
    """
    suffix = f"crm-{unique}"
    bus = f"aws.partner/genesys.com/cloud/{org}/{suffix}"
    stack.events.create_event_bus(Name=suffix)
    name = f"crm-sync-{unique}"
    url = stack.queue(name)
    arn = stack.arn_of(url)
    pattern = json.dumps({"source": [{"prefix": "aws.partner/genesys.com"}]})
    stack.events.put_rule(Name=name, EventBusName=bus, EventPattern=pattern)
    stack.events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return f"arn:aws:events:us-east-1:{ACCOUNT}:rule/{bus}/{name}", url, arn


@pytest.fixture()
def default_stack(moto_server, redis_url, unique) -> Iterator[Stack]:
    """No allowlist and no GENESYS_ORG_ID: the org is the one the partner bus names."""
    env = {
        **ENV,
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_ALLOWED_BUSES": "",
        "GENESYS_ORG_ID": "",
    }
    with configured(env):
        yield Stack(unique, None)


def test_a_rule_on_the_orgs_partner_bus_delivers_without_any_setting(default_stack, unique):
    rule_arn, url, queue = partner_rule(default_stack, ORG, unique)
    event = genesys_event()
    dead_letter(default_stack, event, rule_arn=rule_arn, target_arn=queue)
    assert default_stack.ingest() == {"accepted": 1}

    outcome = replay(EventKey(event["id"], queue, rule_arn))

    assert outcome is ReplayOutcome.REPLAYED
    assert default_stack.target_messages(url) == [json.dumps(event)]


def test_an_event_of_another_org_on_a_partner_bus_is_rejected(default_stack, unique):
    rule_arn, url, queue = partner_rule(default_stack, ORG, unique)
    dead_letter(default_stack, genesys_event(org=OTHER_ORG), rule_arn=rule_arn, target_arn=queue)

    assert default_stack.ingest() == {"rejected": 1}

    item = only_item(default_stack)
    assert (item.status, item.last_error_code) == (Status.REJECTED, "ForeignOrg")
    assert f"org {ORG} of its partner bus" in (item.reject_reason or "")
    assert default_stack.target_messages(url) == []
