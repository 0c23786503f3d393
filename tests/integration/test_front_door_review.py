"""`setup` and `doctor` judge the DLQ for the front door INGEST_FRONT_DOOR names.

The DLQ is made as a rule owner would make it: SQS's default attributes (VisibilityTimeout
30 s) and the policy that lets EventBridge send. A poller deployment has nothing to fix
in it; a Lambda deployment does (Lambda refuses a trigger whose queue's visibility
timeout is below the function's), and the fix names every way out. moto is AWS, the
commands run in-process through click's runner, configured by `env=`.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import main
from dlq.aws import aws_client
from dlq.ledger import create_table
from dlq.settings import load_settings

VISIBILITY = "dlq visibility timeout"
WAYS_OUT = (
    "raise the queue's VisibilityTimeout to at least 360 s",
    "pass the function's real timeout with --lambda-timeout",
    "set INGEST_FRONT_DOOR=poller if the poller ingests",
)


@pytest.fixture()
def default_dlq(moto_server, unique) -> str:
    """A DLQ of SQS's default attributes that EventBridge may send to."""
    sqs = aws_client("sqs", load_settings(_env_file=None))
    url = str(sqs.create_queue(QueueName=f"eventbridge-dlq-{unique}")["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": arn,
        "Condition": {
            "ArnEquals": {"aws:SourceArn": f"arn:aws:events:us-east-1:{'1' * 12}:rule/r"}
        },
    }
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": json.dumps({"Statement": [statement]})}
    )
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])[
        "Attributes"
    ] == {"VisibilityTimeout": "30"}
    return url


@pytest.fixture()
def env(default_dlq, redis_url, unique) -> dict[str, str]:
    create_table(aws_client("dynamodb", load_settings(_env_file=None)), f"ledger-{unique}")
    return {
        "DLQ_QUEUE_URL": default_dlq,
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_PARKING_QUEUE_URL": "",
        "REDIS_URL": redis_url,
        "REPLAY_VERIFY_CONVERSATION": "false",
        "GENESYS_CLIENT_ID": "",
    }


def run(command: str, env: dict[str, str], front_door: str, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        [command, "--json", *args],
        env={**env, "INGEST_FRONT_DOOR": front_door},
        catch_exceptions=False,
    )


def setup_finding(result: Result) -> dict[str, Any]:
    (found,) = [f for f in json.loads(result.stdout)["findings"] if f["check"] == VISIBILITY]
    return dict(found)


def doctor_check(result: Result) -> dict[str, Any]:
    (found,) = [c for c in json.loads(result.stdout)["checks"] if c["name"] == VISIBILITY]
    return dict(found)


# --- setup -----------------------------------------------------------------------------


def test_setup_of_a_poller_deployment_passes_a_dlq_of_default_attributes(env):
    result = run("setup", env, "poller")

    assert result.exit_code == 0, result.output
    found = setup_finding(result)
    assert found["severity"] == "ok"
    assert "no ingest Lambda (INGEST_FRONT_DOOR=poller" in found["found"]


def test_setup_of_a_lambda_deployment_fails_a_dlq_of_default_attributes(env):
    result = run("setup", env, "lambda")

    assert result.exit_code == 1
    found = setup_finding(result)
    assert found["severity"] == "fail"
    assert "VisibilityTimeout 30 s is below the ingest Lambda's timeout (60 s)" in found["found"]


def test_setup_s_lambda_failure_names_every_way_out_the_front_door_setting_included(env):
    fix = setup_finding(run("setup", env, "lambda"))["fix"]

    for way_out in WAYS_OUT:
        assert way_out in fix


def test_setup_s_explicit_lambda_timeout_wins_over_the_poller_front_door(env):
    result = run("setup", env, "poller", "--lambda-timeout", "60")

    assert result.exit_code == 1
    assert setup_finding(result)["severity"] == "fail"


def test_setup_s_explicit_zero_lambda_timeout_wins_over_the_lambda_front_door(env):
    result = run("setup", env, "lambda", "--lambda-timeout", "0")

    assert result.exit_code == 0, result.output
    assert setup_finding(result)["severity"] == "ok"


# --- doctor ----------------------------------------------------------------------------


def test_doctor_of_a_poller_deployment_passes_a_dlq_of_default_attributes(env):
    result = run("doctor", env, "poller")  # the tests' Redis does not persist: exit 1

    found = doctor_check(result)
    assert found["status"] == "pass"
    assert "no ingest Lambda (INGEST_FRONT_DOOR=poller" in found["detail"]


def test_doctor_of_a_lambda_deployment_fails_a_dlq_of_default_attributes(env):
    result = run("doctor", env, "lambda")

    assert result.exit_code == 1
    found = doctor_check(result)
    assert found["status"] == "fail"
    for way_out in WAYS_OUT:
        assert way_out in found["fix"]


def test_doctor_s_explicit_lambda_timeout_wins_over_the_poller_front_door(env):
    result = run("doctor", env, "poller", "--lambda-timeout", "60")

    assert result.exit_code == 1
    assert doctor_check(result)["status"] == "fail"


def test_an_unknown_front_door_stops_setup_with_one_line_naming_the_setting(env):
    result = run("setup", env, "sqs")

    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: INGEST_FRONT_DOOR is invalid: Input should be 'lambda' or 'poller'"
    ]
