"""The demo's EventBridge rules, created in moto as a user has them before dlq-replay.

One rule on a `genesys` bus with four targets: the CRM queue (the event as it is), a
webhook-shaped queue behind an `InputTransformer`, an API destination whose API-key
connection points at a local HTTP sink, and an HTTP target that always fails.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

from devstack.queues import create_local_queues, refuse_real_aws
from dlq.aws import aws_client
from dlq.settings import Settings

BUS = "genesys"
RULE = "conversation-to-crm"

#: What the webhook-shaped targets receive instead of the event.
WEBHOOK_TEMPLATE = (
    '{"rule": <aws.events.rule-name>, "conversation": <conversation>, '
    '"topic": <topic>, "at": <time>}'
)
WEBHOOK_PATHS = {
    "conversation": "$.detail.eventBody.conversationId",
    "topic": "$.detail.topicName",
    "time": "$.time",
}


def create_rule(
    settings: Settings, targets: list[dict[str, Any]], *, bus: str = BUS, name: str = RULE
) -> str:
    """A rule on `bus` (created if missing) with these `Targets`; its ARN.

    The synthetic workloads name `devstack.synthetic.DEFAULT_RULE`, which is this rule on
    the default bus name and moto's default account.
    """
    events = aws_client("events", settings)
    with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
        events.create_event_bus(Name=bus)
    rule_arn = str(
        events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps({"source": [{"prefix": "aws.partner/genesys.com"}]}),
        )["RuleArn"]
    )
    events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    return rule_arn


@dataclass(frozen=True)
class DemoRules:
    """The rule's ARN and its targets' ARNs."""

    rule_arn: str
    api_destination_arn: str


def create_demo_rules(
    settings: Settings,
    *,
    crm_queue_arn: str,
    webhook_queue_arn: str,
    failing_target_arn: str,
    sink_url: str,
    api_key: str,
) -> DemoRules:
    """Create the bus, the rule, the connection, the API destination and the targets."""
    events = aws_client("events", settings)
    events.create_event_bus(Name=BUS)
    rule_arn = str(
        events.put_rule(
            Name=RULE,
            EventBusName=BUS,
            EventPattern=json.dumps({"source": [{"prefix": "aws.partner/genesys.com"}]}),
        )["RuleArn"]
    )
    connection_arn = events.create_connection(
        Name="crm-api-key",
        AuthorizationType="API_KEY",
        AuthParameters={
            "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": api_key}
        },
    )["ConnectionArn"]
    destination_arn = str(
        events.create_api_destination(
            Name="crm-webhook",
            ConnectionArn=connection_arn,
            InvocationEndpoint=f"{sink_url.rstrip('/')}/*",
            HttpMethod="POST",
            InvocationRateLimitPerSecond=50,
        )["ApiDestinationArn"]
    )
    transformer: dict[str, Any] = {
        "InputPathsMap": WEBHOOK_PATHS,
        "InputTemplate": WEBHOOK_TEMPLATE,
    }
    events.put_targets(
        Rule=RULE,
        EventBusName=BUS,
        Targets=[
            {"Id": "crm-queue", "Arn": crm_queue_arn},
            {"Id": "webhook-queue", "Arn": webhook_queue_arn, "InputTransformer": transformer},
            {
                "Id": "crm-api",
                "Arn": destination_arn,
                "InputTransformer": transformer,
                "HttpParameters": {"PathParameterValues": ["genesys"]},
            },
            {"Id": "always-failing", "Arn": failing_target_arn},
        ],
    )
    return DemoRules(rule_arn=rule_arn, api_destination_arn=destination_arn)


#: The queue `dlq-replay seed --local` makes its messages' target when none is named.
LOCAL_TARGET_QUEUE = "crm-events"


@dataclass(frozen=True)
class LocalRule:
    """A rule made on the emulator and the targets it has."""

    rule_arn: str
    target_arns: tuple[str, ...]


def create_local_rule(settings: Settings, target_arns: tuple[str, ...] = ()) -> LocalRule:
    """On the emulator, the rule synthetic messages name, with `target_arns` as targets
    (a local `crm-events` queue when none are given): what a drain needs to redeliver them.

    The synthetic defaults cannot serve there: their target is a queue of another account
    (111122223333), which moto does not hold, and nothing creates their rule.
    """
    sqs = aws_client("sqs", settings)
    refuse_real_aws(sqs)
    if not target_arns:
        queue = create_local_queues(sqs, (LOCAL_TARGET_QUEUE,))[LOCAL_TARGET_QUEUE]
        target_arns = (queue.arn,)
    targets = [{"Id": f"seed-{n}", "Arn": arn} for n, arn in enumerate(target_arns)]
    return LocalRule(rule_arn=create_rule(settings, targets), target_arns=target_arns)
