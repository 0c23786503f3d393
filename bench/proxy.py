"""A counting HTTP proxy in front of an AWS emulator: AWS requests counted on the server side.

`python -m bench.proxy --port N --upstream URL` forwards every request to the emulator
(moto or dynalite) and counts it by `service.Operation`, read from the `X-Amz-Target`
header (DynamoDB, SQS's JSON protocol) or else from the signature's credential scope and
the `Action` form field. Only the processes pointed at it are counted (a worker's
`AWS_ENDPOINT_URL_DYNAMODB`), so a benchmark's own ledger scans never are, and nothing
runs inside the process being counted. `GET /__bench/counts` answers
`{"requests": {"dynamodb.UpdateItem": n, ...}, "errors": {...}}` (errors: answers of 400
and above, such as a refused conditional write); `POST /__bench/reset` zeroes them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import signal
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from devstack.process import ChildServer, free_port

ADMIN = "/__bench/"
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "upgrade"}
)
TARGET_PREFIXES = {"DynamoDB_": "dynamodb", "AmazonSQS": "sqs"}
SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request")


def operation(headers: Any, body: bytes) -> str:
    """`service.Operation` of an AWS request, e.g. `dynamodb.UpdateItem`."""
    target = headers.get("X-Amz-Target", "")
    if "." in target:
        prefix, name = target.rsplit(".", 1)
        for start, service in TARGET_PREFIXES.items():
            if prefix.startswith(start):
                return f"{service}.{name}"
        return f"{prefix}.{name}"
    scope = SCOPE.search(headers.get("Authorization", ""))
    service = scope.group(1) if scope else "unknown"
    action = parse_qs(body.decode(errors="replace")).get("Action", ["unknown"])[0]
    return f"{service}.{action}"


class _Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def add(self, name: str, status: int) -> None:
        with self.lock:
            self.requests[name] += 1
            if status >= 400:
                self.errors[name] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            return {"requests": dict(self.requests), "errors": dict(self.errors)}

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.errors.clear()


def make_handler(upstream: str, tally: _Tally) -> type[BaseHTTPRequestHandler]:
    parts = urlsplit(upstream)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    local = threading.local()

    def connection(fresh: bool = False) -> http.client.HTTPConnection:
        if fresh or getattr(local, "conn", None) is None:
            local.conn = http.client.HTTPConnection(host, port, timeout=60)
        conn: http.client.HTTPConnection = local.conn
        return conn

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY (socketserver's StreamRequestHandler): an answer is two writes, its
        # head then its body, and with Nagle's algorithm the body waited for the client's
        # delayed ACK of the head, 40 ms on loopback. Each DynamoDB request of a worker
        # behind the proxy took 44 ms and twice the client's CPU of the same request sent
        # to dynalite (0.69 -> 1.72 ms in one thread: more reads and wake-ups), which
        # `bench.deployed` then counted as the worker's.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _admin(self) -> None:
            if self.command == "POST" and self.path == f"{ADMIN}reset":
                tally.reset()
                self._answer(200, b"{}")
            elif self.path == f"{ADMIN}counts":
                self._answer(200, json.dumps(tally.snapshot()).encode())
            else:
                self._answer(404, b"{}")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _forward(self) -> None:
            if self.path.startswith(ADMIN):
                self._admin()
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            for attempt in (0, 1):
                conn = connection(fresh=attempt == 1)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    answer = conn.getresponse()
                    payload = answer.read()
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    if attempt == 1:
                        self._answer(502, b'{"message": "upstream unreachable"}')
                        return
            tally.add(operation(self.headers, body), answer.status)
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

    return Handler


class CountingProxy(ChildServer):
    """`bench.proxy` as a child process, with its counts a GET away."""

    def __init__(self, upstream: str, workdir: Path, *, name: str = "proxy") -> None:
        port = free_port()
        argv = [sys.executable, "-m", "bench.proxy", "--port", str(port), "--upstream", upstream]
        super().__init__(argv, port, log=workdir / f"{name}.log")
        self.upstream = upstream
        self._session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def counts(self) -> dict[str, dict[str, int]]:
        """{"requests": {op: n}, "errors": {op: n}} since the start or the last reset."""
        response = self._session.get(f"{self.url}{ADMIN}counts", timeout=5)
        response.raise_for_status()
        counts: dict[str, dict[str, int]] = response.json()
        return counts

    def reset(self) -> None:
        self._session.post(f"{self.url}{ADMIN}reset", timeout=5).raise_for_status()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.proxy", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:4567")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.upstream, _Tally()))
    server.daemon_threads = True

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
