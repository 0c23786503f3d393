"""The Genesys Cloud client: client-credentials token, conversation lookup, attribute updates.

A small client over `requests` instead of the official SDK (see platform-facts.md). It
never sleeps and never loops: when the shared rate limiter says wait, or Genesys says
429/5xx, it raises a `RetryLater` subclass carrying the wait, and the caller (a Celery
task) reschedules itself. Models live in `genesys_models`, errors in `genesys_errors`.
"""

from __future__ import annotations

import base64
import email.utils
import logging
import math
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import redis
import requests
from pydantic import SecretStr, ValidationError
from requests.adapters import HTTPAdapter

from dlq.genesys_errors import (
    GenesysBadRequest,
    GenesysBadResponse,
    GenesysClientError,
    GenesysConnectionError,
    GenesysCredentialsError,
    GenesysError,
    GenesysForbidden,
    GenesysNotFound,
    GenesysRateLimited,
    GenesysServerError,
    GenesysTimeout,
    GenesysUnauthorized,
    InvalidRequest,
    RateLimitWait,
)
from dlq.genesys_models import Conversation, Participant
from dlq.guards import IssuedToken, Priority, RateLimiter, TokenCache, TokenProvider
from dlq.settings import Settings

__all__ = [
    "Conversation",
    "GenesysClient",
    "Participant",
    "Priority",
    "RateLimitInfo",
    "build_genesys_client",
    "clean_attributes",
    "fetch_token",
    "parse_retry_after",
    "process_session",
]

log = logging.getLogger(__name__)

CONVERSATION_PATH = "/api/v2/conversations/{id}"
ATTRIBUTES_PATH = "/api/v2/conversations/{id}/participants/{pid}/attributes"
TOKEN_PATH = "/oauth/token"  # noqa: S105 (a URL path, not a password)
#: When a 429 names no wait at all (Genesys always does), hold the fleet this long.
DEFAULT_429_WAIT = 5.0

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class RateLimitInfo:
    """The `inin-ratelimit-*` headers of the last response: the server's view of our budget."""

    allowed: int | None
    count: int | None
    reset: float | None

    @property
    def remaining(self) -> int | None:
        """Calls left in the server's current window, when both numbers were sent."""
        if self.allowed is None or self.count is None:
            return None
        return max(self.allowed - self.count, 0)

    @property
    def exhausted(self) -> bool:
        """Whether the next call in this window would be refused with a 429."""
        return self.remaining == 0

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimitInfo | None:
        """Read the headers; None when the response carried none of them."""
        allowed = _number(headers.get("inin-ratelimit-allowed"))
        count = _number(headers.get("inin-ratelimit-count"))
        reset = _number(headers.get("inin-ratelimit-reset"))
        if allowed is None and count is None and reset is None:
            return None
        return cls(
            allowed=int(allowed) if allowed is not None else None,
            count=int(count) if count is not None else None,
            reset=reset,
        )


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) and number >= 0 else None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delay-seconds or an HTTP-date (RFC 9110)."""
    if value is None or not value.strip():
        return None
    seconds = _number(value.strip())
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)


def clean_attributes(attributes: Mapping[str, object]) -> dict[str, str]:
    """Participant attributes as Genesys accepts them: string keys and string values.

    Numbers and booleans become strings (booleans as `true`/`false`); anything else
    (None, lists, mappings) is refused, because a silent `str()` would store Python
    reprs on the conversation.
    """
    if not attributes:
        raise InvalidRequest("no attributes to update: pass at least one key")
    cleaned: dict[str, str] = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            raise InvalidRequest(f"attribute name {key!r:.60} is not a non-empty string")
        if isinstance(value, str):
            cleaned[key] = value
        elif isinstance(value, bool):
            cleaned[key] = "true" if value else "false"
        elif isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            cleaned[key] = str(value)
        else:
            raise InvalidRequest(
                f"attribute {key!r} is a {type(value).__name__}: Genesys attribute values "
                "are strings; convert it (JSON-encode a structure) before updating"
            )
    return cleaned


def _path_id(value: object, what: str) -> str:
    # A strict UUID cannot contain '/', '..', '%', '?' or '#'; quoting is a second belt.
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise InvalidRequest(f"{what} {value!r:.80} is not a UUID; refusing to call Genesys")
    return quote(value, safe="")


_sessions: dict[int, requests.Session] = {}
_sessions_lock = threading.Lock()


def process_session() -> requests.Session:
    """The pooled HTTP session of this process (a forked child gets its own sockets)."""
    pid = os.getpid()
    with _sessions_lock:
        session = _sessions.get(pid)
        if session is None:
            session = requests.Session()
            # No transport retries: a retry is the caller's decision, never a hidden sleep.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers.update({"Accept": "application/json", "User-Agent": "dlq-replay"})
            _sessions.clear()
            _sessions[pid] = session
        return session


def _timeouts(settings: Settings) -> tuple[float, float]:
    return (settings.genesys_connect_timeout, settings.genesys_read_timeout)


def _send(
    session: requests.Session, method: str, url: str, what: str, **kw: Any
) -> requests.Response:
    """One HTTP exchange; transport failures become retryable errors without the request.

    `from None` matters: a requests exception holds the prepared request, and with it
    the Authorization header.
    """
    try:
        return session.request(method, url, **kw)
    except requests.Timeout:
        connect, read = kw["timeout"]
        raise GenesysTimeout(
            f"{what} got no answer within the timeouts (connect {connect} s, read {read} s): "
            "Genesys is slow or unreachable; retry later (attribute updates merge, so a "
            "repeat is safe)"
        ) from None
    except requests.RequestException as exc:
        raise GenesysConnectionError(
            f"{what} could not reach Genesys ({type(exc).__name__}): check the network and "
            "GENESYS_REGION / GENESYS_*_BASE_URL; retry later"
        ) from None


def _error_details(response: requests.Response) -> tuple[str | None, str | None, str]:
    """(code, correlation id, Genesys's own message) from an error response."""
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
        str(text)[:200] if text else "no message",
    )


def fetch_token(settings: Settings, session: requests.Session) -> IssuedToken:
    """Ask the login host for a client-credentials token (no scope: roles decide)."""
    settings.require("genesys_client_id", "genesys_client_secret", purpose="the Genesys client")
    pair = f"{settings.genesys_client_id}:{settings.genesys_client_secret.get_secret_value()}"
    what = f"POST {TOKEN_PATH}"
    response = _send(
        session,
        "POST",
        f"{settings.genesys_login_url}{TOKEN_PATH}",
        what,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()},
        timeout=_timeouts(settings),
    )
    if response.status_code == 200:
        try:
            body = response.json()
            token, expires_in = body["access_token"], float(body["expires_in"])
        except (ValueError, KeyError, TypeError):
            raise GenesysBadResponse(
                f"{what} answered 200 without access_token/expires_in; retry later",
                status=200,
                correlation_id=response.headers.get("inin-correlation-id"),
            ) from None
        if not isinstance(token, str) or not token:
            raise GenesysBadResponse(f"{what} answered an empty access_token", status=200)
        log.info("genesys: new access token, valid %.0f s", expires_in)
        return IssuedToken(SecretStr(token), expires_in)
    code, correlation, text = _error_details(response)
    status = response.status_code
    if status in (400, 401, 403):
        raise GenesysCredentialsError(
            f"the login host {settings.genesys_login_url} refused the OAuth client "
            f"({status} {code}: {text}; correlation id {correlation}): check "
            "GENESYS_CLIENT_ID / GENESYS_CLIENT_SECRET, that the client uses the "
            "client-credentials grant, and that GENESYS_REGION is the client's region",
            status=status,
            code=code,
            correlation_id=correlation,
        )
    raise _status_error(response, what)


def _status_error(response: requests.Response, what: str) -> GenesysError:
    """The exception for an error status, with what happened and what to do."""
    status = response.status_code
    code, correlation, text = _error_details(response)
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


class GenesysClient:
    """The conversation calls the replay needs, through the shared token and rate limiter."""

    def __init__(
        self,
        settings: Settings,
        *,
        tokens: TokenProvider,
        limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self._api = settings.genesys_api_url
        self._timeouts = _timeouts(settings)
        self._tokens = tokens
        self._limiter = limiter
        self._session = session or process_session()
        #: The `inin-ratelimit-*` headers of the latest API response (any thread).
        self.last_rate_limit: RateLimitInfo | None = None

    def __repr__(self) -> str:
        return f"GenesysClient(api={self._api!r})"

    def get_conversation(
        self, conversation_id: str, *, priority: Priority = Priority.HIGH
    ) -> Conversation:
        """The conversation as Genesys has it now (HIGH: it gates a redelivery)."""
        path = CONVERSATION_PATH.format(id=_path_id(conversation_id, "conversation id"))
        response = self._call("GET", path, CONVERSATION_PATH, priority)
        try:
            return Conversation.model_validate(response.json())
        except (ValueError, ValidationError):
            raise GenesysBadResponse(
                f"GET {CONVERSATION_PATH} answered 200 with a body that is not a conversation "
                f"(correlation id {response.headers.get('inin-correlation-id')}); retry later",
                status=response.status_code,
                correlation_id=response.headers.get("inin-correlation-id"),
            ) from None

    def patch_participant_attributes(
        self,
        conversation_id: str,
        participant_id: str,
        attributes: Mapping[str, object],
        *,
        priority: Priority = Priority.LOW,
    ) -> None:
        """Merge string attributes into a participant (LOW: bookkeeping yields to lookups)."""
        path = ATTRIBUTES_PATH.format(
            id=_path_id(conversation_id, "conversation id"),
            pid=_path_id(participant_id, "participant id"),
        )
        body = {"attributes": clean_attributes(attributes)}
        self._call("PATCH", path, ATTRIBUTES_PATH, priority, json=body)

    def _call(
        self, method: str, path: str, template: str, priority: Priority, **kw: Any
    ) -> requests.Response:
        what = f"{method} {template}"
        # One fresh token and one repeat on a 401 (expired or revoked), never a loop.
        for attempt in (1, 2):
            if self._limiter is not None:
                wait = self._limiter.acquire(priority)
                if wait > 0:
                    raise RateLimitWait(
                        f"the shared Genesys budget asks {priority.name} calls to wait "
                        f"{wait:.2f} s before {what}; reschedule (no request was made)",
                        retry_after=wait,
                    )
            token = self._tokens.get()
            response = _send(
                self._session,
                method,
                f"{self._api}{path}",
                what,
                headers={"Authorization": f"Bearer {token.get_secret_value()}"},
                timeout=self._timeouts,
                **kw,
            )
            self._observe(response)
            log.debug(
                "genesys: %s answered %s",
                what,
                response.status_code,
                extra={
                    "status": response.status_code,
                    "correlation_id": response.headers.get("inin-correlation-id"),
                },
            )
            if response.status_code == 401 and attempt == 1:
                self._tokens.invalidate(token)
                continue
            if response.status_code < 300:
                return response
            error = _status_error(response, what)
            if isinstance(error, GenesysUnauthorized):
                self._tokens.invalidate(token)
            if isinstance(error, GenesysRateLimited) and self._limiter is not None:
                self._limiter.penalise(error.retry_after or DEFAULT_429_WAIT)
            raise error
        raise AssertionError("unreachable: the second attempt returns or raises")

    def _observe(self, response: requests.Response) -> None:
        info = RateLimitInfo.from_headers(response.headers)
        if info is None:
            return
        self.last_rate_limit = info
        # The server's count is the truth: when it says the window is spent, the whole
        # fleet waits for its reset instead of collecting 429s.
        if info.exhausted and info.reset and self._limiter is not None:
            self._limiter.penalise(info.reset)


def build_genesys_client(settings: Settings, redis_client: redis.Redis) -> GenesysClient:
    """The client wired for a worker: this process's session, shared token and budget."""
    settings.require("genesys_client_id", "genesys_client_secret", purpose="the Genesys client")
    session = process_session()
    refresh_budget = sum(_timeouts(settings)) + 5.0
    tokens = TokenCache(
        redis_client,
        settings.genesys_client_id,
        lambda: fetch_token(settings, session),
        lock_timeout=refresh_budget,
        wait_timeout=refresh_budget,
    )
    limiter = RateLimiter(
        redis_client,
        settings.genesys_client_id,
        per_minute=settings.genesys_rate_limit_per_minute,
        reserve=settings.genesys_rate_limit_reserve,
    )
    return GenesysClient(settings, tokens=tokens, limiter=limiter, session=session)
