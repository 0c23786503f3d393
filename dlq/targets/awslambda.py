"""Lambda targets: the function invoked with the event as its payload."""

from __future__ import annotations

from typing import Any

from dlq.targets.delivery import Replay
from dlq.targets.errors import TargetFailed
from dlq.targets.kind import TargetKind, with_client

#: How much of a failed function's error payload goes into the error message.
FUNCTION_ERROR_EXCERPT = 500


def invoke_lambda(client: Any, replay: Replay) -> str:
    """Invoke the function synchronously; a `FunctionError` is the target failing again."""
    response = client.invoke(
        FunctionName=replay.delivered_to,
        InvocationType="RequestResponse",
        Payload=replay.payload,
    )
    # Read the stream either way, so the connection goes back to the pool.
    payload = response["Payload"].read()
    if response.get("FunctionError"):
        excerpt = payload[:FUNCTION_ERROR_EXCERPT].decode("utf-8", errors="replace")
        raise TargetFailed(
            f"{replay.delivered_to} failed ({response['FunctionError']}): {excerpt}; "
            "the function still fails on this event, retrying later",
            target_arn=replay.delivered_to,
            code="FunctionError",
        )
    return f"StatusCode {response['StatusCode']}, version {response.get('ExecutedVersion', '?')}"


KIND = TargetKind(
    name="lambda",
    label="Lambda functions",
    arn_service="lambda",
    resource_prefix="function:",
    send=with_client("lambda", invoke_lambda),
)
