"""A redelivery target for the benchmarks: an HTTP endpoint that answers 200 and counts.

Runs as its own process (`python -m bench.sink --port N`), so that neither its CPU nor
its GIL is charged to the benchmark or to a worker running in the benchmark's process.
`GET /count` answers how many POSTs it took, how many distinct event ids, and the
wall-clock time of the first and last one; `GET /arrivals` the event id of every POST in
the order they arrived (what an ordering check reads); `POST /reset` forgets them.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any


class _Counts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.posts = 0
        self.event_ids: set[str] = set()
        self.arrivals: list[str] = []
        self.first: float | None = None
        self.last: float | None = None

    def hit(self, event_id: str | None) -> None:
        now = time.time()
        with self.lock:
            self.posts += 1
            if event_id:
                self.event_ids.add(event_id)
                self.arrivals.append(event_id)
            self.first = self.first or now
            self.last = now

    def arrival_order(self) -> list[str]:
        with self.lock:
            return list(self.arrivals)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "posts": self.posts,
                "distinct": len(self.event_ids),
                "first": self.first,
                "last": self.last,
            }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.counts = _Counts()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real endpoint would allow
    # An answer with a body is two writes: without TCP_NODELAY the body would wait 40 ms for
    # the client's delayed ACK (see `bench.proxy`).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _answer(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if body:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path == "/reset":
            self.server.counts.reset()
        else:
            self.server.counts.hit(self.headers.get("X-DLQ-Replay-Event-Id"))
        self._answer(200)

    def do_GET(self) -> None:
        if self.path == "/arrivals":
            body: dict[str, Any] = {"event_ids": self.server.counts.arrival_order()}
        else:
            body = self.server.counts.snapshot()
        self._answer(200, json.dumps(body).encode())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.sink", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = _Server(args.port)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
