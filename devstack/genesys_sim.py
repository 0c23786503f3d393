"""A Genesys Cloud simulator: the login, conversation and analytics endpoints over real HTTP.

It answers with the shapes, statuses and headers of the real API (as `dlq/genesys/`
documents them, with their sources; tests/fixtures/genesys-*.json): client-credentials
tokens with a lifetime, the analytics multi-get (`?id=a,b,...`: unknown ids left out,
400 beyond `analytics_max_ids`, a configurable lag), per-token rate limits with 429 +
Retry-After, Genesys error bodies, `inin-*` headers everywhere (`inin-ratelimit-allowed`
is the enforced limit per window, or `advertised_limit` when a test wants the two
apart), and faults on demand (latency, random 5xx, scripted statuses per conversation,
an outage switch, token revocation). `/__admin/...` (loopback only, no auth) seeds, scripts,
counts and resets; `devstack.sim_admin.SimAdmin` is its typed client.

In tests: `with GenesysSimulator(rate_limit=30, rate_window=6) as sim: sim.url`.
From a shell: `python -m devstack.genesys_sim --port 8089 --auto-create`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import email.utils
import ipaddress
import json
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs

from devstack.sim_admin import SimAdmin
from devstack.sim_state import (
    ANALYTICS_DETAILS,
    GET_CONVERSATION,
    PATCH_ATTRIBUTES,
    PERMISSIONS,
    TOKEN,
    Fault,
    SimConfig,
    SimState,
    generate_conversation,
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


class _Server(ThreadingHTTPServer):
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
    server: _Server

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
            status, body = self._admin_route(method, path, payload)
        except (ValueError, TypeError, KeyError) as exc:
            status, body = 400, {"error": str(exc)}
        self._send(status, body, {})

    def _admin_route(self, method: str, path: str, payload: Any) -> tuple[int, Any]:
        state = self.server.state
        parts = path.strip("/").split("/")[1:]
        if method == "GET" and parts == ["stats"]:
            return 200, state.stats()
        if method == "POST" and parts == ["reset"]:
            state.reset()
            return 200, {}
        if method == "POST" and parts == ["config"]:
            with state.lock:
                state.config.update(payload)
                if "seed" in payload:
                    state.rng.seed(payload["seed"])
                return 200, vars(state.config)
        if method == "POST" and parts == ["tokens", "revoke"]:
            return 200, {"revoked": state.revoke_tokens()}
        if method == "POST" and parts == ["conversations"]:
            bodies = [generate_conversation(str(i)) for i in payload.get("ids", [])]
            bodies += list(payload.get("conversations", []))
            state.seed(bodies, age_seconds=float(payload.get("age_seconds", 0.0)))
            return 200, {"conversations": bodies}
        if method == "POST" and parts == ["faults"]:
            for conversation_id, faults in payload.get("conversations", {}).items():
                state.add_faults(conversation_id, [Fault.parse(f) for f in faults])
            for conversation_id in payload.get("deleted", []):
                state.delete(conversation_id)
            return 200, {}
        if method == "GET" and len(parts) == 2 and parts[0] == "conversations":
            with state.lock:
                body = state.conversations.get(parts[1])
                history = list(state.history.get(parts[1], []))
                snapshot = json.loads(json.dumps(body))
                reads = state.reads[parts[1]]
            if body is None:
                return 404, {"error": f"no conversation {parts[1]}"}
            return 200, {"conversation": snapshot, "history": history, "reads": reads}
        return 404, {"error": f"no admin route {method} {path}"}

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


class GenesysSimulator:
    """The simulator in this process on a free loopback port, started and stopped as a context."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        """`config` takes `SimConfig` fields: rate_limit=30, rate_window=6, auto_create=True..."""
        self.config = SimConfig(**config)
        self.state = SimState(self.config)
        self._server = _Server((host, port), self.state)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL serving both the login and the API routes."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def admin(self) -> SimAdmin:
        """A typed client of the admin endpoints."""
        return SimAdmin(self.url)

    def start(self) -> GenesysSimulator:
        # A short poll interval keeps `stop()` quick (shutdown waits for one poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="genesys-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Serve in the calling thread until `KeyboardInterrupt` (the CLI's mode)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def __enter__(self) -> GenesysSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _parser() -> argparse.ArgumentParser:
    defaults = SimConfig()
    p = argparse.ArgumentParser(prog="genesys-sim", description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    p.add_argument("--port", type=int, default=8089)
    p.add_argument("--client-id", default=defaults.client_id)
    p.add_argument("--client-secret", default=defaults.client_secret)
    p.add_argument("--token-lifetime", type=float, default=defaults.token_lifetime)
    p.add_argument("--rate-limit", type=int, default=defaults.rate_limit, help="calls per window")
    p.add_argument("--rate-window", type=float, default=defaults.rate_window, help="seconds")
    p.add_argument(
        "--advertised-limit",
        type=int,
        default=None,
        help="inin-ratelimit-allowed to send, when it should differ from --rate-limit",
    )
    p.add_argument("--auto-create", action="store_true", help="answer any UUID with a conversation")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--error-rate", type=float, default=0.0, help="fraction of random 5xx")
    p.add_argument("--seed", type=int, default=None, help="seed of the random 5xx")
    p.add_argument("--reject-all", action="store_true", help="answer every API call 503")
    p.add_argument("--retry-after-http-date", action="store_true")
    p.add_argument(
        "--analytics-max-ids",
        type=int,
        default=defaults.analytics_max_ids,
        help="ids per analytics multi-get beyond which it answers 400",
    )
    p.add_argument(
        "--analytics-lag-seconds",
        type=float,
        default=defaults.analytics_lag_seconds,
        help="how long after its creation a conversation shows in analytics",
    )
    p.add_argument("--conversation", action="append", default=[], help="seed this id (repeat)")
    p.add_argument(
        "--deny-permission",
        action="append",
        default=[],
        help="a permission the OAuth client lacks, e.g. conversation:communication:view (repeat)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator in the foreground until interrupted (SIGINT or SIGTERM)."""
    args = _parser().parse_args(argv)
    sim = GenesysSimulator(
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime=args.token_lifetime,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        advertised_limit=args.advertised_limit,
        auto_create=args.auto_create,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        seed=args.seed,
        reject_all=args.reject_all,
        retry_after_http_date=args.retry_after_http_date,
        denied_permissions=args.deny_permission,
        analytics_max_ids=args.analytics_max_ids,
        analytics_lag_seconds=args.analytics_lag_seconds,
    )
    sim.state.seed([generate_conversation(i) for i in args.conversation])

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"genesys-sim listening on {sim.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sim.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
