"""HTTP endpoint targets (REPLAY_HTTP_TARGETS): one POST, classified by its status."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import requests

from dlq.httpsession import PooledSession
from dlq.retryafter import parse_retry_after
from dlq.targets.answer import summarise
from dlq.targets.delivery import Replay
from dlq.targets.errors import (
    TargetError,
    TargetForbidden,
    TargetMissing,
    TargetRejected,
    TargetThrottled,
    TargetUnavailable,
)
from dlq.targets.kind import SendContext, TargetKind

#: Statuses that say "not now": the same request may pass later.
RETRYABLE_STATUSES = frozenset({408, 425, 429})


def new_session(pool_size: int = 32) -> requests.Session:
    """A pooled Session sized for the worker's thread pool."""
    return PooledSession(pool_connections=8, pool_maxsize=pool_size)


def replay_headers(replay: Replay) -> dict[str, str]:
    """Headers every HTTP redelivery carries.

    `Idempotency-Key` is the same on every attempt of this (event, rule, target), so an
    endpoint that answered after our timeout can drop the repeat.
    """
    return {
        "Content-Type": "application/json; charset=utf-8",
        "Idempotency-Key": replay.dedup_id,
        "X-DLQ-Replay-Event-Id": replay.event_id,
    }


def post_event(
    session: requests.Session, url: str, replay: Replay, *, timeout: tuple[float, float]
) -> str:
    """POST the payload to `url`; 2xx is delivered, anything else raises a `TargetError`."""
    return call(
        session,
        "POST",
        url,
        replay,
        headers=replay_headers(replay),
        timeout=timeout,
        fix="fix REPLAY_HTTP_TARGETS on the replay workers (restart them with it)",
    )


def call(
    session: requests.Session,
    method: str,
    url: str,
    replay: Replay,
    *,
    headers: Mapping[str, str],
    timeout: tuple[float, float],
    params: Mapping[str, str] | None = None,
    fix: str,
) -> str:
    """One HTTP request carrying the payload; 2xx is delivered, else a `TargetError`.

    `timeout` is (connect, read) seconds: a slow endpoint costs a retry, never a stuck
    worker, and requests never resends a request on its own. Messages name the URL
    without its query or credentials, and never the headers (they may hold secrets); of
    an error answer they keep its size, digest, code and a scrubbed excerpt
    (`dlq.targets.answer`): it may echo the request's credentials.
    """
    where = _redacted(url)
    data = None if method in ("GET", "HEAD") else replay.data
    try:
        response = session.request(
            method,
            url,
            data=data,
            params=params,
            headers=dict(headers),
            timeout=timeout,
            allow_redirects=False,
        )
    # requests' own messages quote the full URL (credentials and query included), so
    # only the exception's kind is kept, and the cause is not chained into tracebacks.
    except requests.Timeout as error:
        raise TargetUnavailable(
            f"{where} did not answer in time ({type(error).__name__}); it may have received "
            "the event, retrying later with the same Idempotency-Key",
            target_arn=replay.delivered_to,
            code="Timeout",
        ) from None
    except requests.ConnectionError as error:
        raise TargetUnavailable(
            f"could not connect to {where} ({type(error).__name__}); retrying later",
            target_arn=replay.delivered_to,
            code="ConnectionError",
        ) from None
    except requests.RequestException as error:
        raise TargetRejected(
            f"cannot {method} to {where} ({type(error).__name__}); {fix}",
            target_arn=replay.delivered_to,
            code=type(error).__name__,
        ) from None
    with response:
        if 200 <= response.status_code < 300:
            return f"HTTP {response.status_code} from {where}"
        raise _status_error(response, where, replay.delivered_to, fix)


def _status_error(
    response: requests.Response, where: str, target_arn: str, fix: str
) -> TargetError:
    status = response.status_code
    code = f"HTTP{status}"
    said = f"{where} answered HTTP {status} ({summarise(response.content)})"
    if status == 429:
        return TargetThrottled(
            f"{said}; throttled, retrying later",
            target_arn=target_arn,
            code=code,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status in RETRYABLE_STATUSES or status >= 500:
        return TargetUnavailable(
            f"{said}; retrying later",
            target_arn=target_arn,
            code=code,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status in (401, 403):
        return TargetForbidden(
            f"{said}; the endpoint refuses us: fix its credentials, then redrive",
            target_arn=target_arn,
            code=code,
        )
    if status in (404, 410):
        return TargetMissing(
            f"{said}; no such endpoint: {fix}, then redrive",
            target_arn=target_arn,
            code=code,
        )
    if 300 <= status < 400:
        return TargetRejected(
            f"{said}; redirects are not followed with an event: {fix} (to the final URL), "
            "then redrive",
            target_arn=target_arn,
            code=code,
        )
    return TargetRejected(
        f"{said}; the endpoint refused the event: fix the endpoint or the event, then redrive",
        target_arn=target_arn,
        code=code,
    )


def _redacted(url: str) -> str:
    """The URL without credentials or query, which may hold secrets, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def send(context: SendContext, replay: Replay) -> str:
    """POST to the URL that REPLAY_HTTP_TARGETS maps the destination to."""
    url = context.options.http_targets[replay.delivered_to]
    return post_event(context.http, url, replay, timeout=context.options.timeouts)


#: Chosen by configuration only: an ARN listed in REPLAY_HTTP_TARGETS.
KIND = TargetKind(name="http", label="HTTP endpoints listed in REPLAY_HTTP_TARGETS", send=send)
