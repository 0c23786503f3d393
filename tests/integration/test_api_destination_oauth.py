"""API destinations behind an OAuth client-credentials connection, against real parts.

The connection and the destination are created in moto's server (which keeps the
connection's secret in its Secrets Manager, `events!connection/...`); one local HTTP
server plays both the OAuth token endpoint (`/oauth/token`) and the destination's
endpoint (`/hooks/...`), which accepts only the tokens it issued and did not revoke.
How each layout of the secret is read is unit-tested in tests/unit/test_connections.py.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests
from helpers import SIM_CLIENT_ID, SIM_CLIENT_SECRET, genesys_event
from stack import BASE_ENV, Stack, configured

from devstack.moto_server import MotoServer
from dlq.aws import aws_client
from dlq.errors import BudgetWait
from dlq.events import EventKey
from dlq.ledger import Status
from dlq.settings import Settings
from dlq.targets import Redeliverer, TargetForbidden
from dlq.targets.connections import TOKEN_MARGIN_SECONDS, Connections

REGION = "us-east-1"


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class OAuthServer:
    """A token endpoint and an API endpoint on one loopback port.

    The token endpoint issues a fresh token per request to the right Basic client
    credentials (401 otherwise). The API endpoint answers 200 to a live token and 401 to
    any other, quoting the token it refused (as some endpoints do); `api_status` forces
    its answer.
    """

    client_id: str
    client_secret: str
    expires_in: int = 3600
    api_status: int | None = None
    url: str = ""
    token_requests: list[Seen] = field(default_factory=list)
    api_requests: list[Seen] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    live: set[str] = field(default_factory=set)

    def revoke(self) -> None:
        self.live.clear()

    def bearers(self) -> list[str]:
        return [seen.headers.get("Authorization", "") for seen in self.api_requests]


@pytest.fixture()
def server() -> Iterator[OAuthServer]:
    state = OAuthServer(client_id=f"crm-{uuid.uuid4().hex[:8]}", client_secret=secret_value())
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            parts = urlsplit(self.path)
            seen = Seen(
                self.command, parts.path, parse_qs(parts.query), dict(self.headers),
                self.rfile.read(length),
            )  # fmt: skip
            with lock:
                if parts.path == "/oauth/token":
                    status, body = self.token(seen)
                else:
                    status, body = self.api(seen)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def token(self, seen: Seen) -> tuple[int, bytes]:
            state.token_requests.append(seen)
            pair = f"{state.client_id}:{state.client_secret}".encode()
            if seen.headers.get("Authorization") != "Basic " + base64.b64encode(pair).decode():
                return 401, b'{"error": "invalid_client"}'
            token = f"tok-{uuid.uuid4().hex}"
            state.issued.append(token)
            state.live.add(token)
            answer = {"access_token": token, "token_type": "Bearer", "expires_in": state.expires_in}
            return 200, json.dumps(answer).encode()

        def api(self, seen: Seen) -> tuple[int, bytes]:
            state.api_requests.append(seen)
            token = seen.headers.get("Authorization", "").removeprefix("Bearer ")
            status = state.api_status or (200 if token in state.live else 401)
            if status == 200:
                return 200, b"{}"
            return status, json.dumps({"message": f"token {token} is not valid"}).encode()

        do_GET = do_POST = do_PUT = answer

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_port}"
    yield state
    httpd.shutdown()
    httpd.server_close()


def secret_value() -> str:
    return f"client-secret-{uuid.uuid4().hex}"


@pytest.fixture()
def settings(moto_server: MotoServer, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(aws_region=REGION, replay_trust_target_arn=True)


@pytest.fixture()
def redeliverer(settings: Settings, redis_client: redis.Redis) -> Redeliverer:
    return Redeliverer(settings, cache=redis_client)


@pytest.fixture()
def quiet_sdk_loggers() -> Iterator[None]:
    """The SDK's loggers at WARNING, as `dlq.logs.configure_logging` sets them in every
    process: botocore's DEBUG lines print response bodies (GetSecretValue's too)."""
    saved = {name: logging.getLogger(name).level for name in ("botocore", "boto3", "urllib3")}
    for name in saved:
        logging.getLogger(name).setLevel(logging.WARNING)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def new_destination(
    settings: Settings, server: OAuthServer, unique: str, *, method: str = "POST"
) -> str:
    """An OAuth connection (with extra token parameters) and its API destination's ARN."""
    events = aws_client("events", settings)

    def pair(key: str, value: str) -> dict[str, Any]:
        return {"Key": key, "Value": value, "IsValueSecret": False}

    connection = events.create_connection(
        Name=f"crm-{unique}",
        AuthorizationType="OAUTH_CLIENT_CREDENTIALS",
        AuthParameters={
            "OAuthParameters": {
                "ClientParameters": {
                    "ClientID": server.client_id,
                    "ClientSecret": server.client_secret,
                },
                "AuthorizationEndpoint": f"{server.url}/oauth/token",
                "HttpMethod": method,
                "OAuthHttpParameters": {
                    "BodyParameters": [pair("audience", "crm-api")],
                    "HeaderParameters": [pair("X-Tenant", "acme")],
                    "QueryStringParameters": [pair("realm", "genesys")],
                },
            },
            "InvocationHttpParameters": {"HeaderParameters": [pair("X-Source", "dlq-replay")]},
        },
    )["ConnectionArn"]
    return str(
        events.create_api_destination(
            Name=f"crm-{unique}",
            ConnectionArn=connection,
            InvocationEndpoint=f"{server.url}/hooks/conversations",
            HttpMethod="POST",
            InvocationRateLimitPerSecond=100,
        )["ApiDestinationArn"]
    )


def send(redeliverer: Redeliverer, destination: str) -> Any:
    """One event sent as a worker would: after its slot of the destination's pace."""
    event = genesys_event()
    while True:
        try:
            return redeliverer.redeliver(
                target_arn=destination, event_id=event["id"], body=json.dumps(event)
            )
        except BudgetWait as wait:
            time.sleep(wait.retry_after or 0.01)


def records_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every captured record's message, arguments and extra fields, as text."""
    return (
        "\n".join(f"{record.getMessage()} {record.__dict__!r}" for record in caplog.records)
        + caplog.text
    )


def test_one_token_serves_several_sends_as_a_bearer(settings, redeliverer, server, unique):
    destination = new_destination(settings, server, unique)

    deliveries = [send(redeliverer, destination) for _ in range(3)]

    assert len(server.token_requests) == 1
    [token] = server.issued
    assert server.bearers() == [f"Bearer {token}"] * 3
    assert [d.kind for d in deliveries] == ["api-destination"] * 3
    assert all(seen.headers["X-Source"] == "dlq-replay" for seen in server.api_requests)


def test_the_token_request_carries_the_client_and_the_extra_oauth_parameters(
    settings, redeliverer, server, unique
):
    destination = new_destination(settings, server, unique)

    send(redeliverer, destination)

    [asked] = server.token_requests
    pair = base64.b64encode(f"{server.client_id}:{server.client_secret}".encode()).decode()
    assert (asked.method, asked.path) == ("POST", "/oauth/token")
    assert asked.headers["Authorization"] == f"Basic {pair}"
    assert asked.headers["X-Tenant"] == "acme"
    assert asked.query == {"realm": ["genesys"]}
    assert parse_qs(asked.body.decode()) == {
        "grant_type": ["client_credentials"],
        "audience": ["crm-api"],
    }


def test_a_token_endpoint_called_with_get_gets_the_grant_in_its_query(
    settings, redeliverer, server, unique
):
    destination = new_destination(settings, server, unique, method="GET")

    send(redeliverer, destination)

    [asked] = server.token_requests
    assert (asked.method, asked.body) == ("GET", b"")
    assert asked.query == {
        "realm": ["genesys"],
        "grant_type": ["client_credentials"],
        "audience": ["crm-api"],
    }


def test_a_401_from_the_endpoint_fetches_one_new_token_and_sends_again(
    settings, redeliverer, server, unique
):
    destination = new_destination(settings, server, unique)
    send(redeliverer, destination)
    server.revoke()

    delivery = send(redeliverer, destination)

    first, second = server.issued
    assert server.bearers() == [f"Bearer {first}", f"Bearer {first}", f"Bearer {second}"]
    assert delivery.detail is not None and "HTTP 200" in delivery.detail
    send(redeliverer, destination)
    assert len(server.token_requests) == 2  # the new token is kept


def test_a_second_401_gives_up_after_one_refresh(settings, redeliverer, server, unique):
    destination = new_destination(settings, server, unique)
    server.api_status = 401

    with pytest.raises(TargetForbidden) as refused:
        send(redeliverer, destination)

    assert (len(server.token_requests), len(server.api_requests)) == (2, 2)
    assert refused.value.code == "HTTP401"


def test_a_token_endpoint_refusing_the_client_is_a_forbidden_target(
    settings, redeliverer, server, unique
):
    destination = new_destination(settings, server, unique)
    configured_secret, server.client_secret = server.client_secret, secret_value()

    with pytest.raises(TargetForbidden) as refused:
        send(redeliverer, destination)

    assert refused.value.code == "OAuthHTTP401"
    assert server.api_requests == []
    assert configured_secret not in str(refused.value)


def test_a_token_is_kept_until_its_margin_before_expiry(settings, server, unique, make_settings):
    destination = new_destination(settings, server, unique)
    now = [1000.0]
    connections = Connections(
        lambda service, region: aws_client(service, make_settings(aws_region=region)),
        requests.Session(),
        timeout=(2.0, 5.0),
        clock=lambda: now[0],
    )
    connection = connections.destination(destination).connection_arn
    first = connections.credentials(connection).token

    now[0] += server.expires_in - TOKEN_MARGIN_SECONDS - 1  # settings re-read, token kept
    kept = connections.credentials(connection).token
    now[0] += 2
    renewed = connections.credentials(connection).token

    assert (kept, renewed) == (first, server.issued[1])
    assert len(server.token_requests) == 2


def test_no_secret_or_token_reaches_a_log_a_delivery_or_an_error(
    settings, redeliverer, server, unique, caplog, quiet_sdk_loggers
):
    destination = new_destination(settings, server, unique)
    caplog.set_level(logging.DEBUG)
    delivery = send(redeliverer, destination)
    server.api_status = 401  # its answer quotes the token it refuses

    with pytest.raises(TargetForbidden) as refused:
        send(redeliverer, destination)

    assert len(server.issued) == 2  # both were sent: the checks below can fail
    told = "".join(traceback.format_exception(refused.value))
    told += repr(refused.value) + repr(refused.value.__dict__) + repr(delivery)
    connection = redeliverer.connections.destination(destination).connection_arn
    server.api_status = None
    told += repr(redeliverer.connections.credentials(connection))
    assert "is not valid" in told  # the endpoint's answer is quoted, its token is not
    for secret in [server.client_secret, *server.issued]:
        assert secret not in told
        assert secret not in records_text(caplog)


def test_a_refused_replay_leaves_no_secret_or_token_in_the_ledger(
    redis_url, moto_server, server, unique, caplog, quiet_sdk_loggers
):
    from tasks.runtime import runtime

    env = {
        **BASE_ENV,
        "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
        "GENESYS_CLIENT_SECRET": SIM_CLIENT_SECRET,
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_VERIFY_CONVERSATION": "false",
    }
    server.api_status = 401
    event = genesys_event()
    caplog.set_level(logging.DEBUG)
    with configured(env):
        stack = Stack(unique, None)
        destination = new_destination(stack.settings, server, unique)
        stack.put_dlq(event, target_arn=destination)
        stack.ingest()
        runtime().replayer.replay(EventKey(event["id"], destination, stack.rule_arn))
        [item] = stack.ledger.scan()
        pages = stack.dynamodb.get_paginator("scan").paginate(TableName=stack.ledger.table)
        ledger = json.dumps([row for page in pages for row in page["Items"]])

    assert item.status == Status.FAILED
    assert len(server.issued) == 2 and "HTTP401" in ledger
    for secret in [server.client_secret, *server.issued]:
        assert secret not in ledger
        assert secret not in records_text(caplog)
