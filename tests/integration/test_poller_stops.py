"""`poll` stops on a permanent error and says why; it rides out transient ones.

Permanent: no credentials, access denied, no such queue, no ledger table: retrying
cannot help until an operator acts, so the poller stops every receiver, `run` raises
the error, and `dlq-replay poll` logs one line at ERROR (the line every command prints)
and exits non-zero. Transient:
throttling, 5xx, a lost connection: retried with a growing pause, as before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from helpers import dlq_attributes, eventually, genesys_event

import ingest.poller
from dlq.aws import aws_client
from dlq.ledger import Ledger, create_table
from dlq.metrics.buffer import CountBuffer
from dlq.settings import load_settings
from ingest.frontdoor import FrontDoor
from ingest.poller import EMPTY_CHECK_WAIT_SECONDS, RECEIVE_VISIBILITY_SECONDS, Poller

DLQ_CLI = str(Path(sys.executable).with_name("dlq-replay"))
OWN_PREFIXES = ("AWS_", "REDIS_", "GENESYS_", "REPLAY_", "LEDGER_", "DLQ_", "POLLER_")


class NoEnqueue:
    def enqueue_replay(
        self,
        key: Any,
        *,
        lock: str | None = None,
        countdown: float = 0.0,
        generation: str | None = None,
        parked: bool = False,
    ) -> None:
        raise AssertionError("nothing should reach the broker")


def door(settings: Any, table: str) -> FrontDoor:
    return FrontDoor(ledger=Ledger(aws_client("dynamodb", settings), table), enqueuer=NoEnqueue())


class ScriptedSqs:
    """An SQS client whose receives raise the scripted errors in turn, then come back empty."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.receives: list[dict[str, Any]] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.receives.append(kwargs)
        if self.errors:
            raise self.errors.pop(0)
        return {"Messages": []}


def client_error(code: str, operation: str = "ReceiveMessage", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class NoMessages:
    """The front door of a poller whose receives bring nothing: only told so."""

    def received(self, count: int, *, wait_seconds: float) -> None:
        assert count == 0

    def handle(self, message: Any, *, draining: bool = False) -> Any:
        raise AssertionError("no message should be handled")


def scripted_poller(sqs: ScriptedSqs) -> Poller:
    return Poller(sqs=sqs, queue_url="https://sqs/q", front_door=NoMessages(), wait_seconds=0)  # type: ignore[arg-type]


@pytest.fixture()
def quick_backoff(monkeypatch):
    """Transient failures pause 10 ms instead of a second: the schedule, not its length."""
    monkeypatch.setattr(ingest.poller, "RECEIVE_BACKOFF_FIRST", 0.01)


# --- in process, against moto ----------------------------------------------------------


def test_a_queue_that_does_not_exist_stops_the_poller_and_run_raises_it(moto_server, unique):
    settings = load_settings(_env_file=None)
    poller = Poller(
        sqs=aws_client("sqs", settings),
        queue_url=f"{moto_server.url}/123456789012/missing-{unique}",
        front_door=door(settings, f"ledger-{unique}"),
        receivers=2,
        wait_seconds=0,
    )

    with pytest.raises(ClientError) as raised:
        poller.run()  # no `until_empty`: only the error ends it

    assert raised.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


def test_a_missing_ledger_table_stops_the_poller_and_the_message_stays(moto_server, unique):
    settings = load_settings(_env_file=None)
    sqs = aws_client("sqs", settings)
    queue_url = sqs.create_queue(QueueName=f"dlq-{unique}")["QueueUrl"]
    sqs.send_message(
        QueueUrl=queue_url,
        MessageBody=json.dumps(genesys_event()),
        MessageAttributes=dlq_attributes("arn:aws:sqs:us-east-1:123456789012:crm"),
    )
    poller = Poller(
        sqs=sqs,
        queue_url=queue_url,
        front_door=door(settings, f"no-such-ledger-{unique}"),
        wait_seconds=0,
    )

    with pytest.raises(ClientError) as raised:
        poller.run()

    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    depth = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert sum(int(n) for n in depth.values()) == 1


# --- in process, errors moto cannot produce --------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        client_error("AccessDenied", status=403),
        client_error("AccessDeniedException"),
        client_error("InvalidClientTokenId", status=403),
        NoCredentialsError(),
    ],
    ids=["AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "no credentials"],
)
def test_a_permanent_error_stops_the_poller_after_one_receive(error):
    sqs = ScriptedSqs(error)

    with pytest.raises(type(error)):
        scripted_poller(sqs).run()

    assert len(sqs.receives) == 1


def test_a_run_ended_by_a_permanent_error_still_flushes_and_closes_its_count_buffer(
    redis_client, unique
):
    counts = CountBuffer(redis_client).start()
    counts.add(f"test:{unique}", {"received": 3})  # counted before the error, not yet sent
    poller = Poller(
        sqs=ScriptedSqs(client_error("AccessDenied", status=403)),  # type: ignore[arg-type]
        queue_url="https://sqs/q",
        front_door=NoMessages(),  # type: ignore[arg-type]
        wait_seconds=0,
        counts=counts,
    )

    with pytest.raises(ClientError):
        poller.run()

    assert redis_client.hgetall(f"test:{unique}") == {b"received": b"3"}
    counts.add(f"test:{unique}", {"received": 1})  # closed: a later count is written at once
    assert redis_client.hgetall(f"test:{unique}") == {b"received": b"4"}


@pytest.mark.parametrize(
    "error",
    [
        client_error("ThrottlingException"),
        client_error("InternalError", status=500),
        client_error("ServiceUnavailable", status=503),
        EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com"),
    ],
    ids=["throttling", "500", "503", "connection"],
)
def test_a_transient_error_is_retried_until_the_receive_succeeds(quick_backoff, error):
    sqs = ScriptedSqs(error, error, error)

    stats = scripted_poller(sqs).run(until_empty=True)

    assert len(sqs.receives) == 4
    assert dict(stats.counts) == {}


def test_the_pause_after_transient_errors_doubles(monkeypatch):
    waits: list[float] = []
    poller = scripted_poller(ScriptedSqs(*[client_error("Throttling")] * 4))

    def record(timeout: float | None = None) -> bool:
        waits.append(timeout or 0.0)
        return False

    monkeypatch.setattr(poller.stop_event, "wait", record)
    poller.run(until_empty=True)

    assert waits == [1.0, 2.0, 4.0, 8.0]


def test_throttling_never_ends_run(quick_backoff):
    sqs = ScriptedSqs(*[client_error("Throttling")] * 50)
    poller = scripted_poller(sqs)
    thread = threading.Thread(target=poller.run)
    thread.start()
    try:
        eventually(lambda: len(sqs.receives) >= 5, timeout=10, what="five throttled receives")
        assert thread.is_alive(), "the poller gave up on throttling"
    finally:
        poller.stop()
        thread.join(timeout=10)
    assert poller.failure is None


def test_until_empty_receives_are_short_and_a_drain_s_are_long_polls():
    until_empty, draining = ScriptedSqs(), ScriptedSqs()
    Poller(sqs=until_empty, queue_url="https://sqs/q", front_door=NoMessages(),  # type: ignore[arg-type]
           wait_seconds=20).run(until_empty=True)  # fmt: skip
    poller = Poller(sqs=draining, queue_url="https://sqs/q", front_door=NoMessages(),  # type: ignore[arg-type]
                    wait_seconds=20)  # fmt: skip
    thread = threading.Thread(target=poller.run)
    thread.start()
    try:
        eventually(lambda: draining.receives, timeout=10, what="a receive")
    finally:
        poller.stop()
        thread.join(timeout=10)

    assert [r["WaitTimeSeconds"] for r in until_empty.receives] == [EMPTY_CHECK_WAIT_SECONDS]
    assert draining.receives[0]["WaitTimeSeconds"] == 20


def test_every_receive_asks_for_the_poller_s_own_visibility_timeout():
    sqs = ScriptedSqs()

    scripted_poller(sqs).run(until_empty=True)

    assert sqs.receives[0]["VisibilityTimeout"] == RECEIVE_VISIBILITY_SECONDS


# --- `dlq-replay poll` as a process --------------------------------------------------------


def poll(
    tmp_path: Path, env: dict[str, str], *args: str, wait_seconds: str = "0"
) -> subprocess.CompletedProcess[str]:
    """`dlq-replay poll` (without --until-empty, only a stop or a failure ends it)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    return subprocess.run(
        [DLQ_CLI, "poll", *args],
        env={**clean, **env, "POLLER_WAIT_SECONDS": wait_seconds},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def log_lines(process: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The poller's stderr: JSON log lines, every one of them (a plain line fails here)."""
    return [json.loads(line) for line in process.stderr.splitlines()]


def errors_logged(process: subprocess.CompletedProcess[str]) -> list[str]:
    return [line["message"] for line in log_lines(process) if line["level"] == "error"]


def moto_env(moto_server: Any, redis_url: str, queue_url: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "DLQ_QUEUE_URL": queue_url,
        "REDIS_URL": redis_url,
    }


def test_poll_with_a_bad_setting_logs_the_cli_s_line_at_error_and_exits_2(
    tmp_path, moto_server, redis_url, unique
):
    env = moto_env(moto_server, redis_url, f"{moto_server.url}/123456789012/dlq-{unique}")
    env["AWS_REGION"] = "us-east1"

    process = poll(tmp_path, env)
    # What every other command says of the same setting, on one plain line.
    status = subprocess.run(
        [DLQ_CLI, "status"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}, **env},
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert process.returncode == status.returncode == 2
    assert "Traceback" not in process.stderr
    (said,) = errors_logged(process)
    assert said.startswith("AWS_REGION is invalid") and "us-east-1" in said
    assert status.stderr.strip() == f"error: {said}"
    assert process.stdout == ""


def ledger_table(unique: str) -> str:
    """A ledger table of the test's own, on moto (the poller checks it as it starts)."""
    table = f"ledger-{unique}"
    create_table(aws_client("dynamodb", load_settings(_env_file=None)), table)
    return table


def test_poll_until_empty_names_its_queue_and_ends_at_once_with_a_json_line(
    tmp_path, moto_server, redis_url, unique
):
    sqs = aws_client("sqs", load_settings(_env_file=None))
    queue_url = sqs.create_queue(QueueName=f"dlq-{unique}")["QueueUrl"]
    env = {**moto_env(moto_server, redis_url, queue_url), "LEDGER_TABLE": ledger_table(unique)}

    started = time.monotonic()
    process = poll(tmp_path, env, "--until-empty", wait_seconds="20")
    took = time.monotonic() - started

    assert process.returncode == 0, process.stderr
    assert took < 15  # a long poll of the empty queue would take 20 s at least
    first = log_lines(process)[0]
    assert first["level"] == "info" and queue_url in first["message"]
    assert json.loads(process.stdout.splitlines()[-1]) == {
        "command": "poll",
        "queue_url": queue_url,
        "until_empty": True,
        "accepted": 0,
        "duplicate": 0,
        "rejected": 0,
        "kept": 0,
    }


def test_poll_on_a_queue_that_does_not_exist_exits_2_with_one_error_logged(
    tmp_path, moto_server, redis_url, unique
):
    env = {
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "DLQ_QUEUE_URL": f"{moto_server.url}/123456789012/missing-{unique}",
        "REDIS_URL": redis_url,
        "LEDGER_TABLE": ledger_table(unique),
    }

    process = poll(tmp_path, env)

    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    assert errors_logged(process) == [
        "the SQS queue does not exist (ReceiveMessage: "
        "AWS.SimpleQueueService.NonExistentQueue): check DLQ_QUEUE_URL (read by the poller, "
        "setup and doctor; the Lambda's trigger names its own queue), REPLAY_PARKING_QUEUE_URL "
        "(the replay workers and setup) and AWS_REGION; `dlq-replay setup` never creates the DLQ"
    ]


def test_poll_without_its_ledger_table_exits_2_with_one_error_logged_before_a_receive(
    tmp_path, moto_server, redis_url, unique
):
    sqs = aws_client("sqs", load_settings(_env_file=None))
    queue_url = sqs.create_queue(QueueName=f"dlq-{unique}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(genesys_event()))
    env = {**moto_env(moto_server, redis_url, queue_url), "LEDGER_TABLE": f"none-{unique}"}

    process = poll(tmp_path, env)

    assert process.returncode == 2
    assert "Traceback" not in process.stderr
    (said,) = errors_logged(process)
    assert said.startswith("the ledger table does not exist (DescribeTable")
    assert said.endswith("run `dlq-replay setup` to create it, or fix LEDGER_TABLE and AWS_REGION")
    # Nothing was received: the message is still there, visible.
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"


def test_poll_without_credentials_exits_2_with_one_error_logged(tmp_path, redis_url):
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "DLQ_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
        "REDIS_URL": redis_url,
    }

    process = poll(tmp_path, env)

    assert process.returncode == 2
    assert errors_logged(process) == [
        "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
        "AWS_SECRET_ACCESS_KEY, or run with a role (instance profile, ECS task role, IRSA)"
    ]
