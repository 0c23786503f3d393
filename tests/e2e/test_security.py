"""Security properties: no credential in logs or the ledger, org isolation, oversize input.

Flower refusing unauthenticated requests is covered by tests/deployment/test_flower.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from broker import queued_tasks
from helpers import (
    ORG,
    RULE,
    SIM_CLIENT_ID,
    SIM_CLIENT_SECRET,
    dlq_attributes,
    genesys_event,
    lambda_record,
    new_ledger,
)
from stack import BASE_ENV, Stack, configured

from devstack.process import free_port
from devstack.sim_admin import PATCH_ATTRIBUTES
from devstack.stack import DevStack
from dlq.events import EventKey
from dlq.ledger import REJECTED_BODY_LIMIT, Status
from dlq.logs import JsonFormatter
from dlq.replay import AttemptFailed
from dlq.settings import MAX_EVENT_BYTES
from ingest.frontdoor import FrontDoor
from ingest.lambda_handler import handler
from ingest.poller import Poller
from tasks.application import app
from tasks.names import REPLAY_TASK
from tasks.producer import CeleryEnqueuer

API_DESTINATION = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f"


@pytest.fixture()
def json_logs() -> Iterator[io.StringIO]:
    """Every log record of this process, as the product formats it (secret registered)."""
    stream = io.StringIO()
    handler_ = logging.StreamHandler(stream)
    handler_.setFormatter(JsonFormatter(secrets=[SIM_CLIENT_SECRET]))
    handler_.setLevel(logging.DEBUG)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler_)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler_)
        root.setLevel(level)


def raw_ledger(stack: Stack) -> str:
    """Every attribute of every ledger item, as stored."""
    pages = stack.dynamodb.get_paginator("scan").paginate(TableName=stack.ledger.table)
    return json.dumps([item for page in pages for item in page["Items"]])


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value in text]


@pytest.mark.slow
def test_a_run_through_faults_leaves_no_secret_or_token_in_logs_or_ledger(
    redis_url, moto_server, genesys_sim, sim_admin, unique, tmp_path, json_logs, monkeypatch
):
    issued: list[str] = []
    issue_token = genesys_sim.state.issue_token

    def recording_issue_token() -> tuple[str, float]:
        token, lifetime = issue_token()
        issued.append(token)
        return token, lifetime

    monkeypatch.setattr(genesys_sim.state, "issue_token", recording_issue_token)
    sim_admin.configure(auto_create=True, rate_limit=100_000)
    env = {
        **BASE_ENV,
        "GENESYS_API_BASE_URL": genesys_sim.url,
        "GENESYS_LOGIN_BASE_URL": genesys_sim.url,
        "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
        "GENESYS_CLIENT_SECRET": SIM_CLIENT_SECRET,
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_MAX_ATTEMPTS": "12",
    }
    conversations = [str(uuid.uuid4()) for _ in range(6)]
    events = [genesys_event(conversation_id=c) for c in conversations]
    for event in events:
        del event["detail"]["eventBody"]["participantId"]  # tracking annotates the customer
    first, second = events[:3], events[3:]
    launcher = DevStack(tmp_path)
    try:
        with configured(env):
            stack = Stack(unique, genesys_sim)
            for event in first:
                stack.put_dlq(event)
            stack.ingest()
            argv = [
                sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "threads",
                "-c", "8", "-Q", "replay,verify,track", "--without-mingle", "--without-gossip",
                "--loglevel", "DEBUG",
            ]  # fmt: skip
            launcher.spawn(argv, "worker", dict(os.environ))
            stack.wait_final(3)
            # Every credential path at once: the token revoked (401, refresh), the login
            # refusing the client for a while (invalid_client), 5xx and a 429 on lookups.
            sim_admin.revoke_tokens()
            sim_admin.configure(client_secret="rotated-elsewhere")
            sim_admin.script(conversations[3], [503, {"status": 429, "retry_after": 1}])
            for event in second:
                stack.put_dlq(event)
            stack.ingest()
            stack.wait_final(6, timeout=60, tick=lambda: _refused_then_restored(stack, sim_admin))
            items = list(stack.ledger.scan())
            _eventually_patched(sim_admin)
            stats = sim_admin.stats()
    finally:
        launcher.stop()

    assert {i.status for i in items} == {Status.REPLAYED}
    assert len(issued) >= 2, "the run must have used more than one token"
    secrets = {"client secret": SIM_CLIENT_SECRET}
    secrets["basic credentials"] = base64.b64encode(
        f"{SIM_CLIENT_ID}:{SIM_CLIENT_SECRET}".encode()
    ).decode()
    secrets.update({f"token {n}": token for n, token in enumerate(issued)})
    worker_log = (tmp_path / "worker.log").read_text(errors="replace")
    in_process = json_logs.getvalue()
    ledger = raw_ledger(stack)
    assert "Invalid login credentials" in worker_log or "refused" in worker_log
    assert leaks(worker_log, secrets) == []
    assert leaks(in_process, secrets) == []
    assert leaks(ledger, secrets) == []
    redacted = worker_log.count("[redacted]") + in_process.count("[redacted]")
    print(
        f"\nno leaks: {len(issued)} tokens issued, {len(worker_log.splitlines())} worker log "
        f"lines, {len(in_process.splitlines())} in-process lines (DEBUG), {len(items)} ledger "
        f"items; 401s {stats.status(401)}, token requests {stats.count('POST /oauth/token')} "
        f"({stats.count('POST /oauth/token', 401)} refused); scrubber hits {redacted}"
    )


def _eventually_patched(sim_admin: Any, timeout: float = 30.0) -> None:
    """Wait (bounded) for tracking to PATCH a conversation: its bearer path is logged too."""
    deadline = time.monotonic() + timeout
    while sim_admin.stats().count(PATCH_ATTRIBUTES, 202) == 0:
        assert time.monotonic() < deadline, "tracking never PATCHed a conversation"
        time.sleep(0.2)


def _refused_then_restored(stack: Stack, sim_admin: Any) -> None:
    """Give the login back its secret once a token request has been refused."""
    if sim_admin.stats().count("POST /oauth/token", 401) >= 1:
        sim_admin.configure(client_secret=SIM_CLIENT_SECRET)


def test_a_secret_in_an_http_target_url_stays_out_of_the_ledger_and_logs(
    redis_url, moto_server, genesys_sim, unique, json_logs
):
    query_secret, password = "QueryS3cretValue", "UserP4ssValue"
    url = f"http://crm:{password}@127.0.0.1:{free_port()}/events?api_key={query_secret}"
    env = {
        **BASE_ENV,
        "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
        "GENESYS_CLIENT_SECRET": SIM_CLIENT_SECRET,
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: url}),
        "REPLAY_VERIFY_CONVERSATION": "false",
    }
    from tasks.runtime import runtime

    event = genesys_event()
    with configured(env):
        stack = Stack(unique, genesys_sim)
        stack.put_dlq(event, target_arn=API_DESTINATION)
        stack.ingest()
        with pytest.raises(AttemptFailed) as failed:
            runtime().replayer.replay(EventKey(event["id"], API_DESTINATION, stack.rule_arn))
        failed.value.schedule(1.0)  # what the Celery retry does: record it in the ledger
        ledger = raw_ledger(stack)
    assert "could not connect" in ledger
    secrets = {"query secret": query_secret, "password": password}
    assert leaks(ledger, secrets) == []
    assert leaks(json_logs.getvalue(), secrets) == []


# --- org isolation ----------------------------------------------------------------------------


@pytest.fixture()
def org_door(make_settings, moto_server, redis_client, unique) -> FrontDoor:
    ledger = new_ledger(make_settings(), f"ledger-{unique}")
    return FrontDoor(ledger=ledger, enqueuer=CeleryEnqueuer(app), org_id=ORG)


@pytest.mark.parametrize(
    "source",
    [
        "aws.partner/genesys.com/cloud/0badc0de-0000-4000-8000-000000000000/crm",
        f"aws.partner/genesys.com/cloud/{ORG}x/crm",  # a longer id sharing the prefix
        f"aws.partner/genesys.com/cloud/{ORG.upper()}/crm",
        f"aws.partner/genesys.com/cloud//{ORG}/crm",
        f"aws.partner/genesys.com/cloudx/{ORG}/crm",
        f"aws.partner/evil.example/cloud/{ORG}/crm",
        f"my.app/{ORG}",
    ],
)
def test_an_event_from_another_org_is_rejected_and_never_enqueued(org_door, redis_client, source):
    event = genesys_event()
    event["source"] = source
    record = lambda_record(json.dumps(event), API_DESTINATION)
    assert handler({"Records": [record]}, None, front_door=org_door) == {"batchItemFailures": []}
    [item] = list(org_door.ledger.scan())
    assert item.status is Status.REJECTED
    assert "GENESYS_ORG_ID" in (item.reject_reason or "")
    assert queued_tasks(redis_client) == []


def test_an_event_from_the_configured_org_is_accepted(org_door, redis_client):
    event = genesys_event(org=ORG)
    record = lambda_record(json.dumps(event), API_DESTINATION)
    assert handler({"Records": [record]}, None, front_door=org_door) == {"batchItemFailures": []}
    [item] = list(org_door.ledger.scan())
    assert item.status is Status.RECEIVED
    lock = event["detail"]["eventBody"]["conversationId"]
    # The last argument is the item's generation: None until a redrive.
    assert queued_tasks(redis_client) == [
        (REPLAY_TASK, [event["id"], API_DESTINATION, RULE, lock, None])
    ]


# --- oversize bodies -----------------------------------------------------------------------------


def event_of_size(size: int, *, filler: str = "x") -> str:
    """A valid Genesys event whose JSON body is exactly `size` bytes of UTF-8."""
    event = genesys_event(org=ORG)
    event["detail"]["eventBody"]["pad"] = ""
    base = len(json.dumps(event, ensure_ascii=False).encode())
    per = len(filler.encode())
    event["detail"]["eventBody"]["pad"] = filler * ((size - base) // per)
    body = json.dumps(event, ensure_ascii=False)
    body = body.replace('"pad": "', '"pad": "' + "x" * (size - len(body.encode())), 1)
    assert len(body.encode()) == size
    return body


def test_oversize_bodies_are_rejected_with_their_size_and_kept_or_truncated(
    make_settings, moto_server, redis_client, unique
):
    from dlq.aws import aws_client

    settings = make_settings()
    sqs = aws_client("sqs", settings)
    dynamodb = aws_client("dynamodb", settings)
    ledger = new_ledger(settings, f"ledger-{unique}")
    queue_url = sqs.create_queue(QueueName=f"dlq-{unique}")["QueueUrl"]
    bodies = {
        "at the limit": event_of_size(MAX_EVENT_BYTES),
        "one byte over": event_of_size(MAX_EVENT_BYTES + 1),
        "over in bytes, not in characters": event_of_size(MAX_EVENT_BYTES + 2, filler="é"),
        "over the ledger's keep limit": event_of_size(900 * 1024),
    }
    ids = {}
    for name, body in bodies.items():
        sent = sqs.send_message(
            QueueUrl=queue_url, MessageBody=body, MessageAttributes=dlq_attributes(API_DESTINATION)
        )
        ids[sent["MessageId"]] = name
    door = FrontDoor(ledger=ledger, enqueuer=CeleryEnqueuer(app), org_id=ORG)
    counts = Poller(sqs=sqs, queue_url=queue_url, front_door=door, wait_seconds=0).run(
        until_empty=True
    )

    assert counts.counts == {"accepted": 1, "rejected": 3}
    for item in ledger.scan():
        name = ids[item.sqs_message_id or ""]
        body = bodies[name]
        size = len(body.encode())
        if name == "at the limit":
            assert item.status is Status.RECEIVED
            assert item.body == body
            continue
        assert item.status is Status.REJECTED
        assert f"body is {size} bytes" in (item.reject_reason or "")
        assert str(MAX_EVENT_BYTES) in (item.reject_reason or "")
        raw = dynamodb.get_item(
            TableName=ledger.table,
            Key={"event_id": {"S": item.event_id}, "route": {"S": item.route}},
        )["Item"]
        assert raw["body_bytes"]["N"] == str(size)
        assert raw["body_sha256"]["S"] == hashlib.sha256(body.encode()).hexdigest()
        if size > REJECTED_BODY_LIMIT:
            assert raw["body_truncated"]["BOOL"] is True
            assert body.encode().startswith(item.body.encode())
            assert len(item.body.encode()) == REJECTED_BODY_LIMIT
        else:
            assert "body_truncated" not in raw
            assert item.body == body
    assert len(queued_tasks(redis_client)) == 1
    print(
        f"\noversize: {MAX_EVENT_BYTES} B accepted; {MAX_EVENT_BYTES + 1} B, "
        f"{MAX_EVENT_BYTES + 2} B (2-byte characters) and {900 * 1024} B rejected with their "
        f"size; the last truncated to {REJECTED_BODY_LIMIT} B with its digest"
    )


@pytest.mark.parametrize("level", [logging.DEBUG, logging.WARNING])
def test_the_worker_log_level_option_is_honoured(redis_url, level):
    from tasks.application import _json_logs

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        _json_logs(loglevel=level)  # what `celery worker --loglevel ...` sends
        configured_level = root.level
    finally:
        for handler_ in list(root.handlers):
            root.removeHandler(handler_)
        for handler_ in saved[0]:
            root.addHandler(handler_)
        root.setLevel(saved[1])
    assert configured_level == level
