"""A local HTTP endpoint to redeliver to: records what arrives, answers a chosen status."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class HttpSink:
    """A target for REPLAY_HTTP_TARGETS on loopback; `status` may change at run time."""

    def __init__(self, status: int = 200, *, port: int = 0) -> None:
        self.status = status
        self.bodies: list[bytes] = []
        self.event_ids: Counter[str] = Counter()
        #: Event ids to refuse (with 503) this many more times, whatever `status` says.
        self.refusals: Counter[str] = Counter()
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                status = sink._status_for(body)
                if status < 300:
                    sink._record(body)
                self.send_response(status)
                if status in (429, 503):
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def refuse(self, event_id: str, *, times: int = 1) -> None:
        """Answer 503 to the next `times` deliveries of `event_id`."""
        with self._lock:
            self.refusals[event_id] += times

    def arrivals(self) -> list[str]:
        """The event ids accepted, in the order they arrived."""
        with self._lock:
            return [str(json.loads(body).get("id")) for body in self.bodies]

    def _status_for(self, body: bytes) -> int:
        try:
            event_id = str(json.loads(body)["id"])
        except (ValueError, KeyError, TypeError):
            return self.status
        with self._lock:
            if self.refusals[event_id] > 0:
                self.refusals[event_id] -= 1
                return 503
        return self.status

    def _record(self, body: bytes) -> None:
        with self._lock:
            self.bodies.append(body)
            try:
                self.event_ids[str(json.loads(body)["id"])] += 1
            except (ValueError, KeyError, TypeError):
                self.event_ids["<unparsable>"] += 1

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/events"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
