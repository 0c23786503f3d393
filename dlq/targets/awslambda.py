"""Lambda targets: the function invoked with the event as its payload.

A function's reserved concurrency (`lambda:GetFunctionConcurrency`, read once per
`FACTS_TTL_SECONDS`) caps the fleet's invocations of it in flight (`dlq.targets.pacing`).
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from dlq.targets.answer import summarise
from dlq.targets.delivery import Replay
from dlq.targets.errors import TargetFailed
from dlq.targets.kind import SendContext, TargetKind
from dlq.targets.pacing import NO_LIMITS, OwnLimits

log = logging.getLogger(__name__)


def invoke_lambda(client: Any, replay: Replay, *, invocation_type: str = "Event") -> str:
    """Invoke the function as EventBridge does: asynchronously (`Event`), by default.

    EventBridge invokes Lambda targets asynchronously, so the function's own retries and
    destinations apply as they would have. `RequestResponse` (REPLAY_LAMBDA_INVOCATION_TYPE)
    waits for the function instead, and a `FunctionError` is then the target failing again.
    """
    response = client.invoke(
        FunctionName=replay.delivered_to,
        InvocationType=invocation_type,
        Payload=replay.data,
    )
    # Read the stream either way, so the connection goes back to the pool.
    payload = response["Payload"].read()
    if response.get("FunctionError"):
        # The function's error may quote what it was given or holds: scrubbed, cut short.
        raise TargetFailed(
            f"{replay.delivered_to} failed ({response['FunctionError']}: "
            f"{summarise(payload)}); "
            "the function still fails on this event, retrying later",
            target_arn=replay.delivered_to,
            code="FunctionError",
        )
    request_id = response.get("ResponseMetadata", {}).get("RequestId", "?")
    version = response.get("ExecutedVersion")
    ran = f", version {version}" if version else ""
    return f"StatusCode {response['StatusCode']} ({invocation_type}{ran}), request {request_id}"


def limits(context: SendContext, arn: str) -> OwnLimits:
    """The function's reserved concurrency as its cap in flight (none when it has none).

    Unreadable (no `lambda:GetFunctionConcurrency` grant, an old emulator) is no cap, said
    once per fact's lifetime: the pace REPLAY_TARGET_RATES gives it still applies.
    """

    def read() -> OwnLimits:
        function = ":".join(arn.split(":")[:7])  # the reservation is the function's, unqualified
        try:
            answer = context.client("lambda", arn).get_function_concurrency(FunctionName=function)
        except (ClientError, BotoCoreError) as error:
            log.warning(
                f"cannot read the reserved concurrency of {function} ({error}); its sends are "
                "not capped by it: grant the workers lambda:GetFunctionConcurrency on it",
                extra={"target_arn": arn},
            )
            return NO_LIMITS
        reserved = answer.get("ReservedConcurrentExecutions")
        return OwnLimits(concurrency=int(reserved)) if reserved is not None else NO_LIMITS

    return context.facts.get(arn, "reserved-concurrency", read)


KIND = TargetKind(
    name="lambda",
    label="Lambda functions",
    arn_service="lambda",
    resource_prefix="function:",
    send=lambda context, replay: invoke_lambda(
        context.client("lambda", replay.delivered_to),
        replay,
        invocation_type=context.options.lambda_invocation_type,
    ),
    limits=limits,
)
