"""The Genesys simulator's HTTP face: login, conversation and analytics routes.

It answers with the shapes, statuses and headers of the real API (see
`devstack.genesys_sim`); what it knows and counts is `devstack.sim_state`'s, and
`/__admin/...` (loopback only) is `devstack.sim_admin_routes`'.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import json
import re
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from devstack.sim_admin_routes import admin_route
from devstack.sim_state import (
    ANALYTICS_DETAILS,
    GET_CONVERSATION,
    PATCH_ATTRIBUTES,
    PERMISSIONS,
    TOKEN,
    SimState,
)

_CONVERSATION = re.compile(r"^/api/v2/conversations/([^/]+)$")
_ATTRIBUTES = re.compile(r"^/api/v2/conversations/([^/]+)/participants/([^/]+)/attributes$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ERROR_CODES = {
    400: "bad.request",
    401: "authentication.required",
    403: "missing.any.permissions",
    404: "not.found",
    429: "too.many.requests.retry.after",
    500: "internal.server.error",
    502: "bad.gateway",
    503: "service.unavailable",
    504: "gateway.timeout",
}


class _Reply(Exception):
    """Ends a request early with a status and a body (the handler's only control flow)."""

    def __init__(self, status: int, body: dict[str, Any] | None = None, **headers: str) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers


class SimServer(ThreadingHTTPServer):
    """The simulator's HTTP server: one thread per connection, over one `SimState`."""

    daemon_threads = True
    # The default backlog of 5 drops connections when a fleet connects at once.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], state: SimState) -> None:
        super().__init__(address, _Handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (read timeout) closes its socket: not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so requests.Session pools connections
    # TCP_NODELAY (socketserver's StreamRequestHandler), as a real server answers: an answer
    # is two writes, head then body, and with Nagle's algorithm the body waits for the
    # client's delayed ACK of the head (40 ms on loopback, and more of the client's CPU).
    disable_nagle_algorithm = True
    server: SimServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the counters at /__admin/stats tell the story."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # dispatch ---------------------------------------------------------------------------
    def _handle(self, method: str) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        if path.startswith("/__admin/"):
            self._admin(method, path, raw)
            return
        state.enter()
        label = f"{method} (unrouted)"
        try:
            try:
                label, answer = self._public(method, path, raw, query)
            except _Reply as reply:
                answer = reply
            headers = dict(answer.headers)
            if "inin-ratelimit-allowed" not in headers:
                # Not counted (login, auth failures): the headers still say the budget.
                allowed, count, reset = state.window_of(None)
                headers["inin-ratelimit-allowed"] = str(allowed)
                headers["inin-ratelimit-count"] = str(count)
                headers["inin-ratelimit-reset"] = str(reset)
            state.record(label, answer.status)
            self._send(answer.status, answer.body, headers)
        finally:
            state.leave()

    def _public(self, method: str, path: str, raw: bytes, query: str) -> tuple[str, _Reply]:
        """Login and API routes: (counter label, answer)."""
        state = self.server.state
        if state.config.latency_ms:
            time.sleep(state.config.latency_ms / 1000)
        if path == "/oauth/token":
            if method != "POST":
                raise _Reply(405, {"error": "method_not_allowed"})
            return TOKEN, self._token(raw)
        if path == "/api/v2/analytics/conversations/details" and method == "GET":
            try:
                return ANALYTICS_DETAILS, self._analytics(query)
            except _Reply as reply:
                return ANALYTICS_DETAILS, reply
        conversation = _CONVERSATION.match(path)
        attributes = _ATTRIBUTES.match(path)
        if conversation and method == "GET":
            label, ids = GET_CONVERSATION, conversation.groups()
        elif attributes and method == "PATCH":
            label, ids = PATCH_ATTRIBUTES, attributes.groups()
        else:
            raise _Reply(404, _error(404, f"No resource found for {method} {path}"))
        try:
            return label, self._api(label, ids, raw)
        except _Reply as reply:
            return label, reply

    def _token(self, raw: bytes) -> _Reply:
        state = self.server.state
        form = parse_qs(raw.decode("utf-8", "replace"))
        scheme, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            client_id, secret = "", ""
        if scheme.lower() != "basic" or (client_id, secret) != (
            state.config.client_id,
            state.config.client_secret,
        ):
            return _Reply(
                401,
                {
                    "error": "invalid_client",
                    "description": "client not found or bad credentials",
                    "error_description": "client not found or bad credentials",
                },
            )
        if form.get("grant_type") != ["client_credentials"]:
            return _Reply(400, {"error": "unsupported_grant_type", "description": "grant_type"})
        token, lifetime = state.issue_token()
        return _Reply(
            200, {"access_token": token, "token_type": "bearer", "expires_in": int(lifetime)}
        )

    def _authorize(self, label: str) -> dict[str, str]:
        """What every API route checks first: outage, token, rate window, permission.

        Answers the window's `inin-ratelimit-*` headers; raises the refusal.
        """
        state = self.server.state
        if state.config.reject_all:
            raise _Reply(503, _error(503, "The service is currently unavailable."))
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Reply(401, _error(401, "No authentication bearer token specified."))
        if not state.token_valid(token):
            raise _Reply(401, _error(401, "Invalid login credentials.", code="bad.credentials"))
        allowed, count, reset = state.count_call(token)
        window = {
            "inin-ratelimit-allowed": str(allowed),
            "inin-ratelimit-count": str(count),
            "inin-ratelimit-reset": str(reset),
        }
        # Enforced against the real limit, whatever the header advertises.
        if count > state.config.rate_limit:
            raise self._too_many(reset, window)
        permission = PERMISSIONS.get(label)
        if permission in state.config.denied_permissions:
            raise _Reply(
                403,
                _error(
                    403,
                    "Unable to perform the requested action. You are missing the following "
                    f"permission(s): [{permission}]",
                ),
                **window,
            )
        return window

    def _analytics(self, query: str) -> _Reply:
        """`GET /api/v2/analytics/conversations/details?id=a,b,...`: the conversations
        analytics knows, unknown (or not yet visible) ids left out."""
        state = self.server.state
        window = self._authorize(ANALYTICS_DETAILS)
        failure = state.random_failure()
        if failure is not None:
            raise _Reply(failure, _error(failure, "Simulated server failure."), **window)
        ids = [i for value in parse_qs(query).get("id", []) for i in value.split(",") if i]
        if not ids:
            raise _Reply(400, _error(400, "The id query parameter is required."), **window)
        limit = state.config.analytics_max_ids
        if len(ids) > limit:
            raise _Reply(
                400,
                _error(400, f"Too many conversation ids: {len(ids)} (at most {limit})."),
                **window,
            )
        if not all(_UUID.match(i) for i in ids):
            raise _Reply(400, _error(400, "A conversation id is not a valid UUID."), **window)
        found = state.analytics_details(ids)
        # Genesys leaves empty lists out of its answers.
        return _Reply(200, {"conversations": found} if found else {}, **window)

    def _api(self, label: str, ids: tuple[str, ...], raw: bytes) -> _Reply:
        state = self.server.state
        window = self._authorize(label)
        conversation_id = ids[0]
        fault = state.next_fault(conversation_id)
        if fault is not None:
            if fault.delay_ms:
                time.sleep(fault.delay_ms / 1000)
            if fault.status == 429:
                raise self._too_many(fault.retry_after, window)
            if fault.status >= 300:
                raise _Reply(fault.status, _error(fault.status, "Scripted fault."), **window)
        failure = state.random_failure()
        if failure is not None:
            raise _Reply(failure, _error(failure, "Simulated server failure."), **window)
        if not all(_UUID.match(i) for i in ids):
            raise _Reply(400, _error(400, "The conversation id is not a valid UUID."), **window)
        body = state.conversation(conversation_id)
        if body is None:
            raise _Reply(
                404, _error(404, f"Conversation {conversation_id} was not found."), **window
            )
        if label == GET_CONVERSATION:
            with state.lock:
                snapshot = json.loads(json.dumps(body))
                state.reads[conversation_id] += 1
            return _Reply(200, snapshot, **window)
        try:
            attributes = json.loads(raw)["attributes"]
        except (ValueError, KeyError, TypeError):
            raise _Reply(
                400, _error(400, 'Body must be {"attributes": {...}}.'), **window
            ) from None
        if not isinstance(attributes, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
        ):
            raise _Reply(400, _error(400, "Attribute values must be strings."), **window)
        if not state.patch_attributes(conversation_id, ids[1], attributes):
            raise _Reply(404, _error(404, f"Participant {ids[1]} was not found."), **window)
        return _Reply(202, None, **window)

    def _too_many(self, retry_after: float, window: dict[str, str]) -> _Reply:
        seconds = max(int(-(-retry_after // 1)), 1)
        if self.server.state.config.retry_after_http_date:
            value = email.utils.formatdate(time.time() + seconds, usegmt=True)
        else:
            value = str(seconds)
        body = _error(
            429, f"Rate limit exceeded the maximum. Retry the request in [{seconds}] seconds"
        )
        return _Reply(
            429, body, **{**window, "Retry-After": value, "inin-ratelimit-reset": str(seconds)}
        )

    # admin ------------------------------------------------------------------------------
    def _admin(self, method: str, path: str, raw: bytes) -> None:
        host = self.client_address[0]
        if not ipaddress.ip_address(host).is_loopback:
            self._send(403, {"error": "admin endpoints answer loopback callers only"}, {})
            return
        try:
            payload = json.loads(raw) if raw else {}
            status, body = admin_route(self.server.state, method, path, payload)
        except (ValueError, TypeError, KeyError) as exc:
            status, body = 400, {"error": str(exc)}
        self._send(status, body, {})

    # output -----------------------------------------------------------------------------
    def _send(self, status: int, body: dict[str, Any] | None, headers: dict[str, str]) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        correlation = (body or {}).get("contextId") or str(uuid.uuid4())
        try:
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("inin-correlation-id", str(correlation))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client left (a read timeout); nothing to do


def _error(status: int, message: str, *, code: str | None = None) -> dict[str, Any]:
    """A body in Genesys's error format."""
    return {
        "message": message,
        "code": code or _ERROR_CODES.get(status, "error"),
        "status": status,
        "contextId": str(uuid.uuid4()),
        "details": [],
        "errors": [],
    }
