"""The transport seam: how a request reaches Genesys, and a double that answers in memory.

The client speaks `Request` and `Response`; `RequestsTransport` sends them with a pooled
`requests.Session`, `MockTransport` hands them to a function (as httpx's MockTransport
does), so unit tests exercise the real client without a network. A transport failure
becomes a retryable `GenesysError`, never a library exception that would carry the
prepared request (and with it the Authorization header).
"""

from __future__ import annotations

import json as jsonlib
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests
from requests.structures import CaseInsensitiveDict

from dlq.genesys.errors import GenesysConnectionError, GenesysTimeout
from dlq.httpsession import PooledSession
from dlq.observe import NO_METRICS, MetricsObserver


@dataclass(frozen=True)
class Request:
    """One HTTP exchange to make. `what` names it in errors (`GET /api/v2/...`)."""

    method: str
    url: str
    what: str
    timeout: tuple[float, float]
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    data: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Response:
    """What came back: status, headers (case-insensitive), body."""

    status_code: int
    headers: CaseInsensitiveDict[str] = field(default_factory=CaseInsensitiveDict)
    content: bytes = b""

    def json(self) -> Any:
        """The body as JSON; `ValueError` when it is not."""
        return jsonlib.loads(self.content)

    @classmethod
    def of(
        cls, status: int, body: Any = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A response with a JSON body (None: empty), for doubles and tests."""
        content = b"" if body is None else jsonlib.dumps(body).encode()
        return cls(status, CaseInsensitiveDict(dict(headers or {})), content)


class Transport(Protocol):
    """Sends a request; raises `GenesysTimeout`/`GenesysConnectionError` when nothing came back."""

    def send(self, request: Request) -> Response: ...


class RequestsTransport:
    """Requests through this process's pooled session (a forked child gets its own)."""

    def __init__(
        self, session: requests.Session | None = None, *, metrics: MetricsObserver = NO_METRICS
    ) -> None:
        """`metrics` hears each request by `Request.what`, the templated endpoint (no ids)."""
        self._session = session
        self._metrics = metrics

    def send(self, request: Request) -> Response:
        session = self._session or process_session()
        try:
            answer = session.request(
                request.method,
                request.url,
                headers=dict(request.headers),
                json=request.json,
                data=request.data,
                timeout=request.timeout,
            )
        # `from None` matters: a requests exception holds the prepared request, and with
        # it the Authorization header.
        except requests.Timeout:
            self._metrics.genesys_call(request.what, "timeout")
            connect, read = request.timeout
            raise GenesysTimeout(
                f"{request.what} got no answer within the timeouts (connect {connect} s, read "
                f"{read} s): Genesys is slow or unreachable; retry later (attribute updates "
                "merge, so a repeat is safe)"
            ) from None
        except requests.RequestException as exc:
            self._metrics.genesys_call(request.what, "connection_error")
            raise GenesysConnectionError(
                f"{request.what} could not reach Genesys ({type(exc).__name__}): check the "
                "network and GENESYS_REGION / GENESYS_*_BASE_URL of the process that logged "
                "this (the workers, or doctor and `inspect --genesys`); retry later"
            ) from None
        self._metrics.genesys_call(request.what, str(answer.status_code))
        return Response(answer.status_code, CaseInsensitiveDict(answer.headers), answer.content)


class MockTransport:
    """Answers every request with `handler(request)`, and keeps what was sent (thread-safe)."""

    def __init__(self, handler: Callable[[Request], Response]) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self.requests: list[Request] = []

    def send(self, request: Request) -> Response:
        with self._lock:
            self.requests.append(request)
        return self._handler(request)


_sessions: dict[int, requests.Session] = {}
_sessions_lock = threading.Lock()


def process_session() -> requests.Session:
    """The pooled HTTP session of this process (a forked child gets its own sockets)."""
    pid = os.getpid()
    with _sessions_lock:
        session = _sessions.get(pid)
        if session is None:
            session = PooledSession(pool_connections=4, pool_maxsize=64)
            session.headers.update({"Accept": "application/json", "User-Agent": "dlq-replay"})
            _sessions.clear()
            _sessions[pid] = session
        return session
