"""Start and stop local stand-in servers as child processes on loopback."""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child, before exec: ask Linux to SIGTERM it when its parent dies.

    A killed test run or demo then leaves no redis-server, moto or worker behind.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, *, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Block until 127.0.0.1:port accepts connections, or fail with the process's story."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args!r} exited with {process.returncode} before listening"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{process.args!r} did not listen on port {port} within {timeout:.0f} s")


class ChildServer:
    """A server process started with `start()` and ended with `stop()` (or as a context)."""

    def __init__(self, argv: Sequence[str], port: int, *, log: Path | None = None) -> None:
        self.argv = list(argv)
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        self.process = subprocess.Popen(
            self.argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
        wait_for_port(self.port, process=self.process)
        return self

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
