"""HTTP stand-ins that misbehave on purpose, for the end-to-end tests of bounds and faults.

`SlowSink` is a target that records every POST and answers slowly: it holds its answer,
or sends it a byte at a time so that no read timeout ever fires. `LedgerFaultProxy`
stands between a worker and the AWS emulator and fails one ledger write, the one that
records an event as `replayed`.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import urlsplit

#: Headers that belong to one hop, never forwarded.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"}
)


@dataclass(frozen=True, slots=True)
class Post:
    """One POST the sink received, in the order they arrived."""

    event_id: str
    idempotency_key: str


class _Server:
    """A loopback ThreadingHTTPServer on a thread of its own, as a context manager."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class SlowSink(_Server):
    """An HTTP target that records every POST (event id, Idempotency-Key), then answers 200.

    `delay` holds the whole answer that long after the POST is recorded. `trickle` sends
    the status line and headers at once, then the body one byte every `trickle` seconds
    for `trickle_bytes` bytes: each wait for data is shorter than any read timeout, so
    the client's own timeouts never end the send. `slow_posts` bounds how many POSTs get
    the slow answer (None: every one); later ones are answered at once.
    """

    def __init__(
        self,
        *,
        delay: float = 0.0,
        trickle: float = 0.0,
        trickle_bytes: int = 64,
        slow_posts: int | None = None,
    ) -> None:
        self.delay = delay
        self.trickle = trickle
        self.trickle_bytes = trickle_bytes
        self.slow_left = slow_posts
        self.posts: list[Post] = []
        self._lock = threading.Lock()
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return f"{self.address}/events"

    def delivered(self) -> Counter[str]:
        """Event id -> how many times the target received it."""
        with self._lock:
            return Counter(post.event_id for post in self.posts)

    def arrivals(self) -> list[str]:
        """The event ids of every POST, in the order they arrived."""
        with self._lock:
            return [post.event_id for post in self.posts]

    def keys_of(self, event_id: str) -> set[str]:
        with self._lock:
            return {post.idempotency_key for post in self.posts if post.event_id == event_id}

    def _record(self, post: Post) -> bool:
        """Record a POST; answers whether it gets the slow answer."""
        with self._lock:
            self.posts.append(post)
            if self.slow_left is None:
                return True
            slow = self.slow_left > 0
            self.slow_left = max(0, self.slow_left - 1)
            return slow

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                event_id = self.headers.get("X-DLQ-Replay-Event-Id") or _event_id(body)
                key = self.headers.get("Idempotency-Key", "")
                slow = sink._record(Post(event_id, key))
                try:
                    if slow and sink.trickle:
                        self._trickle()
                        return
                    if slow and sink.delay:
                        time.sleep(sink.delay)
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client went away while we held the answer

            def _trickle(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(sink.trickle_bytes))
                self.end_headers()
                self.wfile.flush()
                for _ in range(sink.trickle_bytes):
                    time.sleep(sink.trickle)
                    self.wfile.write(b".")
                    self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _event_id(body: bytes) -> str:
    try:
        return str(json.loads(body)["id"])
    except (ValueError, KeyError, TypeError):
        return "?"


#: `refused`: the write is answered 500 and never reaches the ledger. `lost`: the write
#: reaches the ledger, and the connection closes before its answer.
Fault = Literal["refused", "lost"]

#: What DynamoDB answers a request it failed on its side (botocore: InternalServerError).
INTERNAL_ERROR = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "message": "injected by the test: the ledger failed this write",
    }
).encode()


def writes_replayed(headers: Any, body: bytes) -> bool:
    """Whether a request is the DynamoDB UpdateItem that sets an item's status `replayed`."""
    if not headers.get("X-Amz-Target", "").endswith(".UpdateItem"):
        return False
    try:
        values = json.loads(body).get("ExpressionAttributeValues", {})
    except ValueError:
        return False
    return bool(values.get(":status") == {"S": "replayed"})


class LedgerFaultProxy(_Server):
    """A proxy in front of the AWS emulator that fails the first `replayed` write, once.

    Every other request goes through unchanged. `replayed_writes` counts the `replayed`
    writes it saw (the failed one included); `faults` how many it failed.
    """

    def __init__(self, upstream: str, *, fault: Fault) -> None:
        self.fault = fault
        self.faults = 0
        self.replayed_writes = 0
        self._lock = threading.Lock()
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        super().__init__(self._handler())

    @property
    def url(self) -> str:
        return self.address

    def _fails(self, headers: Any, body: bytes) -> bool:
        """Count a `replayed` write; answers whether this one is the write to fail."""
        if not writes_replayed(headers, body):
            return False
        with self._lock:
            self.replayed_writes += 1
            if self.faults:
                return False
            self.faults += 1
            return True

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fail = proxy._fails(self.headers, body)
                if fail and proxy.fault == "refused":
                    self._answer(
                        500, [("Content-Type", "application/x-amz-json-1.0")], INTERNAL_ERROR
                    )
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    payload = answer.read()
                    answer_headers = answer.getheaders()
                finally:
                    upstream.close()
                if fail:  # lost: the ledger has the write; the worker never hears of it
                    self.close_connection = True
                    return
                kept = [
                    (k, v)
                    for k, v in answer_headers
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"
                ]
                self._answer(answer.status, kept, payload)

            def _answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
