"""One event failing at one Step Functions state machine under two rules: two deliveries,
two executions. Against moto's server: rules and targets as a user has them, read with
ListTargetsByRule, the machine started over HTTP.

EventBridge counts a delivery per (event, rule, target), and so does the ledger; the
execution's name is what makes a STANDARD machine refuse a second start, so it must be
one per key: the same on a repeat, another under the other rule.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from helpers import genesys_event

from devstack.moto_server import MotoServer
from dlq.aws import aws_client
from dlq.settings import Settings
from dlq.targets import Redeliverer, execution_name

ACCOUNT = "123456789012"
REGION = "us-east-1"
PATTERN = json.dumps({"source": [{"prefix": "aws.partner/genesys.com"}]})


@pytest.fixture()
def settings(moto_server: MotoServer, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(aws_region=REGION)


@pytest.fixture()
def redeliverer(settings: Settings, redis_client) -> Redeliverer:
    return Redeliverer(settings, cache=redis_client)


def new_state_machine(settings: Settings, name: str) -> tuple[Any, str]:
    sfn = aws_client("stepfunctions", settings)
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    arn = sfn.create_state_machine(
        name=name,
        definition=json.dumps(definition),
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn",
    )["stateMachineArn"]
    return sfn, str(arn)


def rules_targeting(settings: Settings, unique: str, machine: str, names: list[str]) -> list[str]:
    """Rules on one bus, each with the machine as its target; their ARNs."""
    events = aws_client("events", settings)
    bus = f"genesys-{unique}"
    events.create_event_bus(Name=bus)
    arns = []
    for name in names:
        rule = f"{name}-{unique}"
        arns.append(
            str(events.put_rule(Name=rule, EventBusName=bus, EventPattern=PATTERN)["RuleArn"])
        )
        target = {"Id": "flow", "Arn": machine, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/eb"}
        answer = events.put_targets(Rule=rule, EventBusName=bus, Targets=[target])
        assert answer["FailedEntryCount"] == 0, answer["FailedEntries"]
    return arns


def test_one_event_under_two_rules_starts_one_execution_per_rule(settings, redeliverer, unique):
    sfn, machine = new_state_machine(settings, f"crm-{unique}")
    rule_arns = rules_targeting(settings, unique, machine, ["ended", "all"])
    event = genesys_event()
    body = json.dumps(event)

    deliveries = [
        redeliverer.redeliver(target_arn=machine, event_id=event["id"], body=body, rule_arn=rule)
        for rule in rule_arns * 2  # each rule twice: the repeat is the same delivery
    ]

    executions = sfn.list_executions(stateMachineArn=machine)["executions"]
    assert len(executions) == 2
    by_name = {e["name"]: e["executionArn"] for e in executions}
    first, second, first_again, second_again = (d.detail for d in deliveries)
    assert {first, second} == set(by_name.values())
    # A repeat while the execution runs is answered with it (StartExecution is idempotent
    # for the same name and input); once it has ended, it is refused and reported so.
    assert first_again is not None and first_again.startswith(first)
    assert second_again is not None and second_again.startswith(second)
    for rule in rule_arns:
        name = execution_name(event["id"], rule_arn=rule, target_arn=machine)
        assert name in by_name
        described = sfn.describe_execution(executionArn=by_name[name])
        assert described["input"] == body


@pytest.mark.parametrize(
    "event_id", [str(uuid.uuid4()), "a:b/c d", "x" * 256], ids=["uuid", "odd", "long"]
)
def test_an_execution_name_is_valid_and_one_per_rule_and_target(event_id):
    rules = ["arn:aws:events:us-east-1:1:rule/a", "arn:aws:events:us-east-1:1:rule/b"]
    targets = ["arn:aws:states:us-east-1:1:stateMachine:m", "arn:aws:sqs:us-east-1:1:q"]

    names = {
        execution_name(event_id, rule_arn=rule, target_arn=target)
        for rule in rules
        for target in targets
    }

    assert len(names) == 4
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name) for name in names)
    assert execution_name(event_id, rule_arn=rules[0], target_arn=targets[0]) in names
