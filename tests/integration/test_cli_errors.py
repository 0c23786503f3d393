"""Every failure at the CLI is one line on stderr naming cause and fix, never a traceback.

The CLI runs as a real process, as an operator runs it: with no credentials at all,
against an endpoint nobody listens on, against the moto server with a table or a queue
that does not exist, against a moto server that enforces IAM, and against a Redis that
is not there. Exit status 2 says an operator must change something, 1 that a retry may
do. Failures the stand-ins cannot produce (throttling) go through `friendly_errors`
in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner
from helpers import dlq_attributes, genesys_event

from cli._common import friendly_errors
from devstack.moto_server import MotoServer
from devstack.process import free_port
from dlq.aws import aws_client
from dlq.events import DlqMessage, parse_dlq_message
from dlq.ledger import Ledger, Status, create_table
from dlq.settings import load_settings

DLQ_CLI = str(Path(sys.executable).with_name("dlq-replay"))
#: Nothing of the developer's own configuration may leak into these runs.
OWN_PREFIXES = ("AWS_", "REDIS_", "GENESYS_", "REPLAY_", "LEDGER_", "DLQ_", "POLLER_")
NO_CREDENTIALS = {
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_REGION": "us-east-1",
}


def dlq_replay(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`dlq-replay ARGS` as a process with only `env` of our variables (no `.env` file)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    return subprocess.run(
        [DLQ_CLI, *args],
        env={**clean, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(process: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed run (asserting there is exactly one)."""
    assert "Traceback" not in process.stderr + process.stdout
    lines = process.stderr.splitlines()
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith("error: ")
    return lines[0].removeprefix("error: ")


@pytest.fixture()
def moto_env(moto_server) -> dict[str, str]:
    """Credentials and endpoint of the tests' moto server, as an operator would export them."""
    return {
        "AWS_ENDPOINT_URL": moto_server.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }


# --- no credentials, no endpoint -----------------------------------------------------------


@pytest.mark.parametrize("command", ["status", "setup"])
def test_no_aws_credentials_exit_2_saying_where_credentials_come_from(tmp_path, command):
    # An endpoint nobody listens on: should anything be sent, it never leaves the machine.
    env = {**NO_CREDENTIALS, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}

    process = dlq_replay(tmp_path, env, command)

    assert process.returncode == 2
    assert one_line(process) == (
        "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
        "or run with a role (instance profile, ECS task role, IRSA)"
    )


def test_an_unreachable_aws_endpoint_exits_1_naming_the_endpoint(tmp_path):
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_REGION": "us-east-1",
    }

    process = dlq_replay(tmp_path, env, "status")

    assert process.returncode == 1
    line = one_line(process)
    assert line.startswith(f"could not connect to the AWS endpoint {endpoint}")
    assert "check AWS_ENDPOINT_URL, AWS_REGION and the network" in line


# --- AWS answers with an error ------------------------------------------------------------


def test_a_missing_ledger_table_exits_2_with_the_setup_fix(tmp_path, moto_env, unique):
    process = dlq_replay(tmp_path, {**moto_env, "LEDGER_TABLE": f"missing-{unique}"}, "status")

    assert process.returncode == 2
    line = one_line(process)
    assert line.startswith("the ledger table does not exist (Query: ")
    assert line.endswith("run `dlq-replay setup` to create it, or fix LEDGER_TABLE and AWS_REGION")


def test_a_missing_queue_exits_2_naming_the_settings_to_check(tmp_path, moto_env, unique):
    queue_url = f"{moto_env['AWS_ENDPOINT_URL']}/123456789012/missing-{unique}"

    process = dlq_replay(tmp_path, moto_env, "seed", "--count", "1", "--queue-url", queue_url)

    assert process.returncode == 2
    line = one_line(process)
    assert line.startswith("the SQS queue does not exist (SendMessageBatch: ")
    assert "check DLQ_QUEUE_URL (read by the poller, setup and doctor;" in line
    assert "REPLAY_PARKING_QUEUE_URL (the replay workers and setup) and AWS_REGION" in line


@pytest.fixture(scope="module")
def iam_moto(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A moto server that enforces IAM, and the keys of a user allowed SQS only."""
    saved = os.environ.get("INITIAL_NO_AUTH_ACTION_COUNT")
    # Three unauthenticated calls create the user, its key and its policy.
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
    try:
        server = MotoServer(tmp_path_factory.mktemp("iam-moto")).start()
    finally:
        if saved is None:
            del os.environ["INITIAL_NO_AUTH_ACTION_COUNT"]
        else:
            os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = saved
    try:
        import boto3

        iam = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        ).client("iam", endpoint_url=server.url)
        iam.create_user(UserName="operator")
        key = iam.create_access_key(UserName="operator")["AccessKey"]
        allowed = {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}
        only_sqs = {"Version": "2012-10-17", "Statement": [allowed]}
        iam.put_user_policy(
            UserName="operator", PolicyName="sqs-only", PolicyDocument=json.dumps(only_sqs)
        )
        yield {
            "AWS_ENDPOINT_URL": server.url,
            "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
            "AWS_REGION": "us-east-1",
        }
    finally:
        server.stop()


def test_access_denied_exits_2_naming_the_action_and_the_iam_fix(tmp_path, iam_moto):
    process = dlq_replay(tmp_path, iam_moto, "status")

    assert process.returncode == 2
    line = one_line(process)
    operator = "arn:aws:iam::123456789012:user/operator"
    assert line.startswith(f"AWS denied Query: {operator} may not dynamodb:Query")
    assert f"allow dynamodb:Query in the IAM policy of {operator}" in line


def test_unknown_credentials_exit_2_saying_to_refresh_them(tmp_path, iam_moto):
    process = dlq_replay(
        tmp_path, {**iam_moto, "AWS_ACCESS_KEY_ID": "AKIAUNKNOWN0000000000"}, "status"
    )

    assert process.returncode == 2
    line = one_line(process)
    assert line.startswith("AWS refused the credentials (InvalidClientTokenId on Query)")
    assert "refresh them" in line


# --- Redis --------------------------------------------------------------------------------


@pytest.fixture()
def an_event(moto_env, unique) -> tuple[dict[str, str], str]:
    """A ledger with one event of a conversation (so `inspect` reads its tracking state)."""
    settings = load_settings(_env_file=None)
    table = f"ledger-{unique}"
    dynamodb = aws_client("dynamodb", settings)
    create_table(dynamodb, table)
    event = genesys_event()
    target = "arn:aws:sqs:us-east-1:123456789012:crm"
    message = DlqMessage.from_receive_message(
        {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "h", "Body": json.dumps(event),
         "MessageAttributes": dlq_attributes(target), "Attributes": {}}
    )  # fmt: skip
    Ledger(dynamodb, table).put_received(parse_dlq_message(message), message)
    return {**moto_env, "LEDGER_TABLE": table}, str(event["id"])


def test_an_unreachable_redis_exits_1_naming_redis_url_without_its_password(tmp_path, an_event):
    env, event_id = an_event
    port = free_port()
    env = {**env, "REDIS_URL": f"redis://:hunter2-secret@127.0.0.1:{port}/0"}

    process = dlq_replay(tmp_path, env, "inspect", event_id)

    assert process.returncode == 1
    line = one_line(process)
    assert line.startswith(f"cannot reach Redis at redis://:***@127.0.0.1:{port}/0 (REDIS_URL): ")
    assert line.endswith("start Redis or fix REDIS_URL (host, port, rediss:// for TLS)")
    assert "hunter2-secret" not in process.stderr + process.stdout


def test_redrive_with_the_broker_down_exits_1_naming_redis_url(tmp_path, an_event):
    env, event_id = an_event
    ledger = Ledger(aws_client("dynamodb", load_settings(_env_file=None)), env["LEDGER_TABLE"])
    (item,) = ledger.items_for_event(event_id)
    claimed = ledger.claim(item.key, lease_seconds=60)
    ledger.finish(claimed, Status.FAILED, outcome="failed", error="403 from target")
    port = free_port()
    env = {**env, "REDIS_URL": f"redis://:hunter2-secret@127.0.0.1:{port}/0"}

    process = dlq_replay(tmp_path, env, "redrive", "--yes")

    assert process.returncode == 1
    # The audit line of the operator's intent comes first (dlq.audit logs every redrive
    # before it acts), then the one error line.
    lines = process.stderr.splitlines()
    assert len(lines) == 2, process.stderr
    audit, error = lines
    assert json.loads(audit)["logger"] == "dlq.audit"
    assert error.startswith(f"error: cannot reach Redis at redis://:***@127.0.0.1:{port}/0")
    assert "hunter2-secret" not in process.stderr + process.stdout


# --- what the stand-ins cannot produce: through friendly_errors itself ------------------------


def failing_with(exc: Exception) -> click.Command:
    @click.command()
    @friendly_errors
    def command() -> None:
        raise exc

    return command


def client_error(code: str, message: str, operation: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message},
         "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )  # fmt: skip


@pytest.mark.parametrize("code", ["ThrottlingException", "Throttling", "RequestThrottled"])
def test_throttling_exits_1_saying_to_try_again(code):
    result = CliRunner().invoke(failing_with(client_error(code, "Rate exceeded", "Scan")))

    assert result.exit_code == 1
    assert result.stderr == (
        f"error: AWS throttled Scan ({code}): try again in a minute; if it persists, run "
        "fewer processes or raise the service quota\n"
    )


def test_an_aws_server_error_exits_1_saying_to_try_again():
    error = client_error("InternalServerError", "Internal server error", "PutItem", 500)

    result = CliRunner().invoke(failing_with(error))

    assert result.exit_code == 1
    assert result.stderr == (
        "error: AWS failed PutItem on its side (InternalServerError: Internal server error): "
        "try again\n"
    )


def test_an_explicit_deny_says_to_remove_the_deny():
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/worker/i-0abc is not authorized to "
        "perform: sqs:ReceiveMessage on resource: arn:aws:sqs:us-east-1:123456789012:dlq "
        "with an explicit deny in a service control policy"
    )

    result = CliRunner().invoke(
        failing_with(client_error("AccessDenied", message, "ReceiveMessage", 403))
    )

    assert result.exit_code == 2
    assert result.stderr == (
        "error: AWS denied ReceiveMessage: arn:aws:sts::123456789012:assumed-role/worker/i-0abc "
        "may not sqs:ReceiveMessage on arn:aws:sqs:us-east-1:123456789012:dlq: remove the "
        "explicit Deny of sqs:ReceiveMessage (an SCP, a permissions boundary, a resource or an "
        "identity policy)\n"
    )


def test_any_other_aws_error_names_its_code_and_operation():
    error = client_error("ValidationException", "1 validation error detected", "Query")

    result = CliRunner().invoke(failing_with(error))

    assert result.exit_code == 2
    assert result.stderr == (
        "error: AWS refused Query (ValidationException: 1 validation error detected): fix what "
        "the message names, then try again\n"
    )
