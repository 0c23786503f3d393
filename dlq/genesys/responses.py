"""What an error response means: the exception to raise, with what happened and what to do."""

from __future__ import annotations

from typing import Any

from dlq.genesys.errors import (
    GenesysBadRequest,
    GenesysBadResponse,
    GenesysClientError,
    GenesysError,
    GenesysForbidden,
    GenesysNotFound,
    GenesysRateLimited,
    GenesysServerError,
    GenesysUnauthorized,
)
from dlq.genesys.headers import RateLimitInfo
from dlq.genesys.transport import Response
from dlq.redact import scrub
from dlq.retryafter import parse_retry_after

#: When a 429 names no wait at all (Genesys always does), hold the fleet this long.
DEFAULT_429_WAIT = 5.0


def error_details(response: Response) -> tuple[str | None, str | None, str]:
    """(code, correlation id, Genesys's own message) from an error response.

    Genesys errors are `{"message", "code", "status", "contextId"}`; the login host
    answers OAuth's `{"error", "error_description"}`. The message is scrubbed before it is
    cut short (`dlq.redact`): a cut secret would no longer be recognised.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    body = body if isinstance(body, dict) else {}
    code = body.get("code") or body.get("error")
    correlation = response.headers.get("inin-correlation-id") or body.get("contextId")
    text = body.get("message") or body.get("error_description") or body.get("description")
    return (
        str(code) if code else None,
        str(correlation) if correlation else None,
        scrub(str(text))[:200] if text else "no message",
    )


def status_error(response: Response, what: str) -> GenesysError:
    """The exception for an error status, with what happened and what to do."""
    status = response.status_code
    code, correlation, text = error_details(response)
    said = f"Genesys answered {status} ({code}: {text}) to {what}; correlation id {correlation}"
    details: dict[str, Any] = {"status": status, "code": code, "correlation_id": correlation}
    if status == 429:
        wait = parse_retry_after(response.headers.get("Retry-After"))
        if wait is None:
            info = RateLimitInfo.from_headers(response.headers)
            wait = info.reset if info and info.reset is not None else DEFAULT_429_WAIT
        return GenesysRateLimited(
            f"{said}: over the rate limit; every worker now waits {wait:.1f} s",
            retry_after=wait,
            **details,
        )
    if status >= 500:
        return GenesysServerError(
            f"{said}: a failure on Genesys's side; retry later",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            **details,
        )
    if status == 401:
        return GenesysUnauthorized(
            f"{said}: a freshly issued token was refused too; it was dropped. Retry later; "
            "if it persists, check that the OAuth client is active and in this org/region",
            **details,
        )
    if status == 400:
        return GenesysBadRequest(f"{said}: the request is malformed; do not retry", **details)
    if status == 403:
        return GenesysForbidden(
            f"{said}: give the OAuth client's role the permission this call needs "
            "(and access to the conversation's division); retrying will not help",
            **details,
        )
    if status == 404:
        return GenesysNotFound(
            f"{said}: the conversation or participant does not exist or is no longer "
            "readable; record it, do not retry",
            **details,
        )
    if 400 <= status < 500:
        return GenesysClientError(f"{said}: refused; do not retry", **details)
    return GenesysBadResponse(f"{said}: not a status the API documents; retry later", **details)
