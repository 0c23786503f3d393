"""The local servers a benchmark's clients talk to answer with TCP_NODELAY, as real ones do.

An answer of `http.server` is two writes, its head then its body; with Nagle's algorithm
the body waits for the client's delayed ACK of the head (40 ms on loopback), and the
client spends more CPU on the request (more reads and wake-ups), which the benchmarks
count as the worker's. No time is asserted: the server's own socket is asked.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from bench import sink
from bench.proxy import _Tally, make_handler
from devstack import sim_http


@pytest.fixture
def upstream() -> Iterator[str]:
    """A plain server answering 200 with a body, for the proxy to forward to."""

    class Answer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    with _serving(Answer) as (url, _):
        yield url


def test_the_counting_proxy_answers_without_nagle(upstream: str) -> None:
    with _serving(make_handler(upstream, _Tally())) as (url, nodelay):
        answer = requests.post(f"{url}/", data=b"{}", timeout=10)
    assert answer.status_code == 200 and answer.content == b"{}"
    assert nodelay == [True]


@pytest.mark.parametrize("handler", [sim_http._Handler, sink._Handler])
def test_the_genesys_simulator_and_the_sink_answer_without_nagle(
    handler: type[BaseHTTPRequestHandler],
) -> None:
    assert handler.disable_nagle_algorithm is True


class _serving:
    """A ThreadingHTTPServer on loopback with `handler`; whether each connection the server
    accepted had TCP_NODELAY set once the handler had set it up."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        nodelay: list[bool] = []

        class Recording(handler):  # type: ignore[valid-type,misc]
            def setup(self) -> None:
                super().setup()
                option = self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                nodelay.append(bool(option))

        self.nodelay = nodelay
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Recording)
        self.server.daemon_threads = True

    def __enter__(self) -> tuple[str, list[bool]]:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}", self.nodelay

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
