"""moto's server with DynamoDB's write atomicity: `python -m devstack.moto_atomic --port N`.

DynamoDB evaluates a condition expression and applies the write as one step per item;
the ledger's guarantee (two writers, one winner) rests on that. moto's threaded server
does not: two concurrent conditional updates can both pass their check. This launcher
serves the same moto application, with one lock around every DynamoDB request, so
the emulator keeps the property the product relies on. Everything else (SQS long
polls included) stays concurrent.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


class DynamoDbSerialised:
    """A WSGI middleware that runs DynamoDB requests one at a time."""

    def __init__(self, app: Callable[[Environ, StartResponse], Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            # The body is produced inside the lock: the write happens while it is held.
            return list(self._app(environ, start_response))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        DynamoDbSerialised(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
