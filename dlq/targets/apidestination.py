"""API destination targets: the HTTP call EventBridge makes, with the connection's auth.

An API destination (`arn:aws:events:<region>:<account>:api-destination/<name>/<id>`) is
an endpoint, a method and a rate limit plus a connection; `dlq.targets.connections` reads
them and the connection's credentials. The call is rebuilt the way EventBridge makes it:
the destination's method and endpoint (`*` in the endpoint filled from the rule target's
`HttpParameters.PathParameterValues`), the target's and the connection's header and
query parameters, and the connection's authorization. The destination's
`InvocationRateLimitPerSecond` is honoured for the whole fleet by the pace gate
(`dlq.targets.pacing`), with REPLAY_TARGET_RATES's rate when that is lower.

EventBridge User Guide, "API destinations":
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-api-destinations.html
"""

from __future__ import annotations

from dlq.targets.connection_auth import Credentials
from dlq.targets.connections import Destination
from dlq.targets.delivery import Replay
from dlq.targets.errors import TargetError, TargetForbidden
from dlq.targets.http import call, replay_headers
from dlq.targets.kind import SendContext, TargetKind
from dlq.targets.pacing import OwnLimits

#: The endpoint's answers that say "this token is no good" (EventBridge refreshes on them).
TOKEN_REFUSED = frozenset({"HTTP401", "HTTP407"})
#: How long the call again after a refreshed token may wait for its slot in the worker.
REFRESH_PATIENCE_SECONDS = 2.0


def send(context: SendContext, replay: Replay) -> str:
    """Call the destination as EventBridge would (the pace gate took its slot before).

    An OAuth token the endpoint refuses (401/407) is replaced and the call made once more:
    the refused call was not processed, so the event still arrives once. A second refusal,
    or any refusal of other credentials, gives up and has them read again next time.
    """
    connections = context.connections
    destination = connections.destination(replay.delivered_to)
    credentials = connections.credentials(destination.connection_arn)
    try:
        return _call(context, destination, replay, credentials)
    except TargetForbidden as refused:
        if credentials.token is None or refused.code not in TOKEN_REFUSED:
            connections.forget(destination.connection_arn)  # rotated credentials: read again
            raise
    credentials = connections.refresh(destination.connection_arn, credentials)
    # The refused call reached the endpoint too: the call again takes a slot of its own,
    # waited for here (the new token in hand) when it is due soon.
    context.take_slot(
        destination.arn,
        target_arn=replay.target_arn,
        rate=destination.rate_per_second,
        patience=REFRESH_PATIENCE_SECONDS,
    )
    try:
        return _call(context, destination, replay, credentials)
    except TargetForbidden:
        connections.forget(destination.connection_arn)
        raise


def limits(context: SendContext, arn: str) -> OwnLimits:
    """The destination's own InvocationRateLimitPerSecond, for its pace."""
    return OwnLimits(rate=context.connections.destination(arn).rate_per_second or None)


def prepare(context: SendContext, arn: str) -> None:
    """The destination's connection credentials, read (and cached) before the slot."""
    connections = context.connections
    connections.credentials(connections.destination(arn).connection_arn)


def _call(
    context: SendContext, destination: Destination, replay: Replay, credentials: Credentials
) -> str:
    http = replay.target.http if replay.target is not None else None
    url = _endpoint(destination.endpoint, http.path_values if http else ())
    headers = {**replay_headers(replay), **(http.headers if http else {}), **credentials.headers}
    query = {**(http.query if http else {}), **credentials.query}
    try:
        return call(
            context.http,
            destination.method,
            url,
            replay,
            headers=headers,
            params=query or None,
            timeout=context.options.timeouts,
            fix=f"fix the API destination {destination.arn}",
        )
    except TargetError as error:
        # The message quotes the endpoint's answer, which may echo the key or the token.
        error.args = (credentials.redact(str(error)),)
        raise


def _endpoint(endpoint: str, path_values: tuple[str, ...]) -> str:
    """The endpoint with each `*` replaced by the next path parameter value, in order."""
    parts = endpoint.split("*")
    filled = [parts[0]]
    for index, part in enumerate(parts[1:]):
        filled.append(path_values[index] if index < len(path_values) else "")
        filled.append(part)
    return "".join(filled)


KIND = TargetKind(
    name="api-destination",
    label="EventBridge API destinations",
    arn_service="events",
    resource_prefix="api-destination/",
    send=send,
    limits=limits,
    prepare=prepare,
)
