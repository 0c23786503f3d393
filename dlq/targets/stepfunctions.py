"""Step Functions targets: one execution per (event, rule, target), named after them."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from botocore.exceptions import ClientError

from dlq.targets.arn import Arn
from dlq.targets.delivery import Replay
from dlq.targets.kind import SendContext, TargetKind

_EXECUTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


def execution_name(event_id: str, *, rule_arn: str = "", target_arn: str = "") -> str:
    """The execution's name for one delivery: the same on every attempt, and another for
    every other (rule, target) of the same event.

    With neither a rule nor a target, the name is the event id; otherwise the event id and
    a digest of the event, rule and target. Step Functions allows 80 characters of
    [A-Za-z0-9-_]: an id outside that keeps its readable part and gains a digest, so two
    ids never share a name.
    """
    if not rule_arn and not target_arn:
        if _EXECUTION_NAME.fullmatch(event_id):
            return event_id
        return f"{_readable(event_id)}-{_digest(event_id)}"
    return f"{_readable(event_id)}_{_digest(event_id, rule_arn, target_arn)}"


def _readable(event_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", event_id)[:63]


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def name_of(replay: Replay) -> str:
    """The execution's name for `replay`, derived from its ledger key (event, rule, target).

    The key is the event alone when no rule is named and the target is this machine, so
    that name is the event id; every other key that reaches this machine (another rule,
    another target routed here by an override) adds its digest.
    """
    if not replay.rule_arn and replay.target_arn == replay.delivered_to:
        return execution_name(replay.event_id)
    return execution_name(replay.event_id, rule_arn=replay.rule_arn, target_arn=replay.target_arn)


def machine_type(client: Any, state_machine_arn: str) -> str:
    """`STANDARD` or `EXPRESS` (DescribeStateMachine's `type`)."""
    return str(client.describe_state_machine(stateMachineArn=state_machine_arn)["type"])


def start_execution(client: Any, replay: Replay, *, express: bool) -> str:
    """Start one execution; for a STANDARD machine, one already started is the delivery.

    A STANDARD machine refuses a second execution of the same name (Step Functions API
    reference, StartExecution: idempotent for 90 days), so naming it after the delivery's
    key (`name_of`) makes a repeated attempt harmless, while the same event under another
    rule or for another target is started on its own. An EXPRESS machine keeps no such
    record and reuses names at once, so there the ledger alone guards against a second
    start, and each attempt's execution gets a name of its own.
    """
    name = name_of(replay)
    if express:
        name = f"{name[:71]}-{uuid.uuid4().hex[:8]}"
    try:
        response = client.start_execution(
            stateMachineArn=replay.delivered_to, name=name, input=replay.content
        )
    except ClientError as error:
        if express or error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        arn = Arn.parse(replay.delivered_to)
        assert arn is not None  # routing accepted it as a state machine ARN
        return (
            f"arn:{arn.partition}:states:{arn.region}:{arn.account}:execution:"
            f"{arn.name}:{name} (already started)"
        )
    return str(response["executionArn"])


def send(context: SendContext, replay: Replay) -> str:
    """Start the execution the way the machine's type allows (its type read once, cached)."""
    client = context.client("stepfunctions", replay.delivered_to)
    kind = context.facts.get(
        replay.delivered_to, "states-type", lambda: machine_type(client, replay.delivered_to)
    )
    return start_execution(client, replay, express=kind == "EXPRESS")


KIND = TargetKind(
    name="states",
    label="Step Functions state machines",
    arn_service="states",
    resource_prefix="stateMachine:",
    send=send,
)
