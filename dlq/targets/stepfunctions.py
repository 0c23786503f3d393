"""Step Functions targets: one execution per event, named after the event."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from botocore.exceptions import ClientError

from dlq.targets.arn import Arn
from dlq.targets.delivery import Replay
from dlq.targets.kind import TargetKind, with_client

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


def start_execution(client: Any, replay: Replay) -> str:
    """Start one execution per event; one already started means the event was delivered."""
    name = execution_name(replay.event_id)
    try:
        response = client.start_execution(
            stateMachineArn=replay.delivered_to, name=name, input=replay.body
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        arn = Arn.parse(replay.delivered_to)
        assert arn is not None  # routing accepted it as a state machine ARN
        return (
            f"arn:{arn.partition}:states:{arn.region}:{arn.account}:execution:"
            f"{arn.name}:{name} (already started)"
        )
    return str(response["executionArn"])


KIND = TargetKind(
    name="states",
    label="Step Functions state machines",
    arn_service="states",
    resource_prefix="stateMachine:",
    send=with_client("stepfunctions", start_execution),
)
