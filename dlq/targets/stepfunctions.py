"""Step Functions targets: one execution per event, named after the event."""

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


def execution_name(event_id: str) -> str:
    """The execution's name: the event id, so a second start of the same event is refused.

    Step Functions allows 80 characters of [A-Za-z0-9-_]; an id outside that keeps its
    readable part and gains a digest, so two ids never share a name.
    """
    if _EXECUTION_NAME.fullmatch(event_id):
        return event_id
    digest = hashlib.sha256(event_id.encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9_-]", "-", event_id)[:63]
    return f"{readable}-{digest}"


def machine_type(client: Any, state_machine_arn: str) -> str:
    """`STANDARD` or `EXPRESS` (DescribeStateMachine's `type`)."""
    return str(client.describe_state_machine(stateMachineArn=state_machine_arn)["type"])


def start_execution(client: Any, replay: Replay, *, express: bool) -> str:
    """Start one execution; for a STANDARD machine, one already started is the delivery.

    A STANDARD machine refuses a second execution of the same name (Step Functions API
    reference, StartExecution: idempotent for 90 days), so naming it after the event makes
    a repeated attempt harmless. An EXPRESS machine keeps no such record and reuses names
    at once, so there the ledger alone guards against a second start, and each attempt's
    execution gets a name of its own.
    """
    name = execution_name(replay.event_id)
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
    kind = context.remember(
        f"states-type:{replay.delivered_to}", lambda: machine_type(client, replay.delivered_to)
    )
    return start_execution(client, replay, express=kind == "EXPRESS")


KIND = TargetKind(
    name="states",
    label="Step Functions state machines",
    arn_service="states",
    resource_prefix="stateMachine:",
    send=send,
)
