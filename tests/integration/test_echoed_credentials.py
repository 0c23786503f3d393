"""A target that echoes the request's credentials back: none of them reaches anything we write.

The target is an API destination (moto's server) whose connection sends an API key
(`x-api-key`) and a bearer token (`Authorization`, a parameter marked secret); its
endpoint, a local HTTP server, refuses with a 401 whose body echoes every header it got,
and a credential of its own that nobody registered (`"access_token"`). One real replay
(`dlq.replay.Replayer`, as a worker runs it, ledger on moto), one tracking run (Genesys
simulator), then `dlq-replay inspect` and `status`: the key, the token and the stray
credential are in no log record, no ledger attribute, no CLI output and no Genesys
attribute, while the refusal is still told by its status, code, size and digest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import SIM_CLIENT_ID, SIM_CLIENT_SECRET, genesys_event
from stack import BASE_ENV, Stack, configured

from cli.main import main
from dlq.events import EventKey
from dlq.ledger import Status


@dataclass
class EchoServer:
    """Refuses every call with a 401 that quotes the request's headers back."""

    key: str
    token: str
    stray: str
    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    seen: list[dict[str, str]] = field(default_factory=list)

    def answer(self, headers: dict[str, str]) -> bytes:
        """The refusal: the credentials first (inside what an error may quote), then the
        token of a session nobody told us of, then every header again, as lines."""
        lines = "\n".join(f"{name}: {value}" for name, value in headers.items())
        body = {
            "error": "invalid_api_key",
            "x-api-key": headers.get("x-api-key"),
            "Authorization": headers.get("Authorization"),
            "session": {"access_token": self.stray},
            "received": lines,
        }
        return json.dumps(body).encode()


@pytest.fixture()
def echo() -> Iterator[EchoServer]:
    state = EchoServer(
        key=f"key-{uuid.uuid4().hex}",
        token=f"tok-{uuid.uuid4().hex}",
        stray=f"stray-{uuid.uuid4().hex}",
    )
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = dict(self.headers)
            body = state.answer(headers)
            with lock:
                state.seen.append(headers)
                state.bodies.append(body)
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def sdk_quiet() -> Iterator[None]:
    """The SDK loggers at WARNING, as `configure_logging` sets them in every process:
    botocore's DEBUG lines print response bodies (GetSecretValue's too)."""
    saved = {name: logging.getLogger(name).level for name in ("botocore", "boto3", "urllib3")}
    for name in saved:
        logging.getLogger(name).setLevel(logging.WARNING)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def new_destination(stack: Stack, echo: EchoServer) -> str:
    """An API destination to the echo server, through an API-key connection that also
    sends a bearer token (an invocation header marked secret)."""
    connection = stack.events.create_connection(
        Name=f"crm-{stack.unique}",
        AuthorizationType="API_KEY",
        AuthParameters={
            "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": echo.key},
            "InvocationHttpParameters": {
                "HeaderParameters": [
                    {"Key": "Authorization", "Value": f"Bearer {echo.token}", "IsValueSecret": True}
                ]
            },
        },
    )["ConnectionArn"]
    return str(
        stack.events.create_api_destination(
            Name=f"crm-{stack.unique}",
            ConnectionArn=connection,
            InvocationEndpoint=f"{echo.url}/hooks/conversations",
            HttpMethod="POST",
        )["ApiDestinationArn"]
    )


def records_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record: its message, its arguments and extra fields, its traceback."""
    return (
        "\n".join(f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records)
        + caplog.text
    )


def raw_ledger(stack: Stack) -> str:
    """Every attribute of every ledger item, as stored."""
    pages = stack.dynamodb.get_paginator("scan").paginate(TableName=stack.ledger.table)
    return json.dumps([item for page in pages for item in page["Items"]])


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.output


def test_credentials_a_target_echoes_reach_no_log_ledger_cli_or_genesys_attribute(
    moto_server, redis_url, genesys_sim, sim_admin, unique, echo, caplog, sdk_quiet
):
    sim_admin.configure(auto_create=True, rate_limit=100_000)
    env = {
        **BASE_ENV,
        "GENESYS_API_BASE_URL": genesys_sim.url,
        "GENESYS_LOGIN_BASE_URL": genesys_sim.url,
        "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
        "GENESYS_CLIENT_SECRET": SIM_CLIENT_SECRET,
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_VERIFY_CONVERSATION": "false",
        "REPLAY_PARKING_QUEUE_URL": "",
    }
    event = genesys_event()
    del event["detail"]["eventBody"]["participantId"]  # tracking annotates the customer
    conversation = event["detail"]["eventBody"]["conversationId"]
    caplog.set_level(logging.DEBUG)
    from tasks.runtime import runtime

    with configured(env):
        stack = Stack(unique, genesys_sim)
        destination = new_destination(stack, echo)
        stack.put_dlq(event, target_arn=destination)
        stack.ingest()
        runtime().replayer.replay(EventKey(event["id"], destination, stack.rule_arn))
        runtime().tracker.track(conversation)
        # The outcome counts reach Redis with the process's next flush (every 0.5 s):
        # `status` right after would race it.
        counts = runtime().counts
        assert counts is not None
        assert counts.flush()
        [item] = stack.ledger.items_for_event(event["id"])
        ledger = raw_ledger(stack)
        inspected = cli("inspect", event["id"], "--json") + cli("inspect", event["id"])
        status = cli("status") + cli("status", "--json")

    # The endpoint did get the credentials, and did echo them.
    [sent] = echo.seen
    assert sent["x-api-key"] == echo.key
    assert sent["Authorization"] == f"Bearer {echo.token}"
    [body] = echo.bodies
    assert echo.key.encode() in body and echo.token.encode() in body
    # The refusal is recorded by what identifies it, never by its text.
    assert item.status is Status.FAILED
    assert item.last_error_code == "HTTP401"
    assert item.last_error is not None
    assert "HTTP 401" in item.last_error
    assert "code invalid_api_key" in item.last_error
    assert f"{len(body)} bytes" in item.last_error
    assert hashlib.sha256(body).hexdigest()[:16] in item.last_error
    assert item.last_error.count("[redacted]") >= 3  # the excerpt kept, its secrets out
    attributes = json.dumps(sim_admin.attribute_history(conversation))
    assert "HTTP401" in attributes
    assert event["id"] in inspected and "HTTP401" in status

    secrets = {"API key": echo.key, "bearer token": echo.token, "stray token": echo.stray}
    places = {
        "log records": records_text(caplog),
        "ledger": ledger,
        "inspect": inspected,
        "status": status,
        "Genesys attributes": attributes,
    }
    leaks = [(what, where) for where, text in places.items()
             for what, value in secrets.items() if value in text]  # fmt: skip
    assert leaks == []
