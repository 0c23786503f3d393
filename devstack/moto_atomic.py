"""moto's server with DynamoDB's write atomicity: `python -m devstack.moto_atomic --port N`.

(And with EventBridge's TestEventPattern answered by moto's own matcher: see
`EventPatternTests`; SQS's receives one at a time, with its clock read cheaply: see
`atomic_receives` and `fast_sqs_clock`; and costs of every request cut, each a tenth to
a quarter of the server's CPU: see `cached_lookups` and `plain_item_answers`. The server
logs warnings, not a line per request, another 5 %.)

DynamoDB evaluates a condition expression and applies the write as one step per item;
the ledger's guarantee (two writers, one winner) rests on that. moto's threaded server
does not: two concurrent conditional updates can both pass their check. This launcher
serves the same moto application, with one lock around every DynamoDB request, so
the emulator keeps the property the product relies on. Everything else (SQS long
polls included) stays concurrent.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import threading
import time
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


class EventPatternTests:
    """A WSGI middleware that answers EventBridge's `TestEventPattern`.

    moto (5.2) routes PutEvents by its own pattern matcher but answers TestEventPattern
    with an empty body; this answers it with that matcher, so tests can hold the replay's
    matcher (`dlq.targets.pattern`) to the emulator's.
    """

    TARGET = "AWSEvents.TestEventPattern"

    def __init__(self, app: Callable[[Environ, StartResponse], Iterable[bytes]]) -> None:
        self._app = app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("HTTP_X_AMZ_TARGET") != self.TARGET:
            return self._app(environ, start_response)
        from moto.events.exceptions import InvalidEventPatternException
        from moto.events.models import EventPattern

        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        try:
            pattern = EventPattern.load(request.get("EventPattern"))
            answer: dict[str, Any] = {"Result": pattern.matches_event(json.loads(request["Event"]))}
            status = "200 OK"
        except InvalidEventPatternException as exc:
            answer = {"__type": "InvalidEventPatternException", "message": exc.message}
            status = "400 Bad Request"
        body = json.dumps(answer).encode()
        start_response(
            status,
            [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
        )
        return [body]


def fast_sqs_clock() -> None:
    """moto's SQS reads the time as epoch seconds through naive datetimes, for every
    message of the queue on every receive (`Message.visible`, `.delayed`): profiled at
    5.2.6, 1,000 messages received and deleted took 78 s of CPU, 86 % of it in
    `unix_time`. The DLQ then drained at 12.6 messages a second (bench.ingest, moto's
    CPU 73 s), slower than any real queue, and longer than an ordered pass holds
    (bench.deployed). The same epoch time from `time.time()`; a given moment still goes
    through moto's own conversion."""
    from moto.core import utils
    from moto.sqs import models

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else utils.unix_time(dt)

    def unix_time_millis(dt: Any = None) -> float:
        return unix_time(dt) * 1000.0

    models.unix_time = unix_time  # type: ignore[attr-defined]
    models.unix_time_millis = unix_time_millis  # type: ignore[attr-defined]


def atomic_receives() -> None:
    """SQS hands a message to one receive at a time, as SQS does within its visibility
    timeout. moto's (5.2.6) `receive_message` checks that a message is visible, then marks
    it received, with no lock between: two threads of the server can both take it (seen
    as a poller counting `requeued: 1` for a message its other receiver had just taken).
    Each scan of the queue now runs under one lock, without waiting: a long poll waits
    outside it, scanning again every 50 ms until its WaitTimeSeconds are up."""
    from moto.sqs.models import Message, SQSBackend

    scan = SQSBackend.receive_message
    lock = threading.Lock()

    def receive_message(
        self: SQSBackend,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Message]:
        deadline = time.monotonic() + wait_seconds_timeout
        while True:
            with lock:
                found = scan(
                    self, queue_name, count, 0, visibility_timeout, message_attribute_names
                )
            left = deadline - time.monotonic()
            if found or left <= 0:
                return found
            time.sleep(min(0.05, left))

    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]


def cached_lookups() -> None:
    """Two answers moto (5.2.6) works out again on every request, though they never
    change while the server runs, cached: whether the Host names one of moto's service
    packages (`DomainDispatcherApplication.get_backend_for_host` lists moto's directory
    and calls `isdir` on each of its ~200 entries: 13 % of the server's CPU in a profile
    of the ledger's contract tests and a replay run), and the method names of the
    handler's class (`BaseResponse.call_action`, through `inspect.getmembers`: 3 %)."""
    from moto import backends
    from moto.core import responses, utils

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    # Looked up by name in `moto.core.responses`, which imports it from `moto.core.utils`.
    responses.method_names_from_class = functools.cache(utils.method_names_from_class)  # type: ignore[attr-defined]


#: The DynamoDB operations whose answers moto (5.2.6) builds as dicts already in the wire
#: format: AttributeValue maps of strings, numbers as strings, counts, capacity units.
ITEM_OPERATIONS = frozenset({
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
    "BatchWriteItem", "TransactGetItems", "TransactWriteItems",
})  # fmt: skip
DYNAMODB_JSON = "application/x-amz-json-1.0"


def plain_item_answers() -> None:
    """moto 5.2 writes every answer by walking botocore's output shape, trying each
    member's aliases on the result (`moto.core.serialize`): for an item operation that is
    a walk of every attribute of every item, a quarter of the server's CPU in the profile
    `cached_lookups` names. An item operation's answer is already its wire JSON, so it
    is dumped as it is; anything else, or an answer `json` cannot write (bytes, a
    datetime), still goes through moto's serializer. tests/integration/test_emulated_dynamodb.py
    holds the two to the same JSON."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoHandler

    shaped = DynamoHandler.serialized

    def serialized(self: DynamoHandler, action_result: ActionResult) -> Any:
        result = action_result.result
        if not isinstance(result, dict) or self._get_action() not in ITEM_OPERATIONS:
            return shaped(self, action_result)
        try:
            body = json.dumps(result)
        except TypeError:
            return shaped(self, action_result)
        headers = {**self.response_headers, "Content-Type": DYNAMODB_JSON, "status": 200}
        return 200, headers, body

    DynamoHandler.serialized = serialized  # type: ignore[method-assign,assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    fast_sqs_clock()
    atomic_receives()
    cached_lookups()
    plain_item_answers()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        EventPatternTests(DynamoDbSerialised(app)),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
