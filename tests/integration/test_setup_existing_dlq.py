"""`dlq-replay setup` on a real account: it creates only what is ours, and judges the DLQ.

The DLQ exists before setup runs (EventBridge's rule owner made it): setup must leave
every one of its attributes as it found them, create the ledger table (and the parking
queue), and report what it found about the DLQ with the fix for each problem.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli.main import main
from dlq.aws import aws_client
from dlq.settings import load_settings

RULE_ARN = "arn:aws:events:us-east-1:123456789012:rule/genesys-to-crm"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, ["setup", *args], env=env, catch_exceptions=False)


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def eventbridge_may_send(queue_arn: str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
    }
    if condition:
        statement["Condition"] = condition
    return statement


def bound_to_the_rule(queue_arn: str) -> dict[str, Any]:
    return eventbridge_may_send(queue_arn, ArnEquals={"aws:SourceArn": RULE_ARN})


@pytest.fixture()
def env(moto_server, unique) -> dict[str, str]:
    return {
        "LEDGER_TABLE": f"ledger-{unique}",
        "DLQ_QUEUE_URL": "",
        "REPLAY_PARKING_QUEUE_URL": "",
    }


@pytest.fixture()
def sqs(moto_server):
    return aws_client("sqs", load_settings(_env_file=None))


@pytest.fixture()
def dynamodb(moto_server):
    return aws_client("dynamodb", load_settings(_env_file=None))


@pytest.fixture()
def make_dlq(sqs, env, unique):
    """An existing DLQ made outside dlq-replay, with these attributes; its URL in `env`."""

    def make(attributes: dict[str, str] | None = None, *, name: str | None = None) -> str:
        name = name or f"eventbridge-dlq-{unique}"
        url = str(sqs.create_queue(QueueName=name, Attributes=attributes or {})["QueueUrl"])
        env["DLQ_QUEUE_URL"] = url
        return url

    return make


def arn_of(sqs, url: str) -> str:
    return str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    )


def all_attributes(sqs, url: str) -> dict[str, str]:
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def finding(result: Result, check: str) -> dict[str, str]:
    (found,) = [f for f in json.loads(result.stdout)["findings"] if f["check"] == check]
    return found


# --- the DLQ is never changed ------------------------------------------------------------


def test_setup_leaves_every_attribute_of_an_existing_default_dlq_unchanged(env, sqs, make_dlq):
    url = make_dlq()
    before = all_attributes(sqs, url)

    result = run(env, "--json")

    assert result.exit_code == 1, result.output  # it has no policy: EventBridge cannot send
    assert all_attributes(sqs, url) == before


def test_setup_leaves_a_dlq_with_a_policy_and_a_kms_key_unchanged(env, sqs, make_dlq, unique):
    url = make_dlq(name=f"keyed-dlq-{unique}")
    arn = arn_of(sqs, url)
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "Policy": policy(bound_to_the_rule(arn)),
            "KmsMasterKeyId": KMS_KEY,
            "VisibilityTimeout": "45",
            "MessageRetentionPeriod": "86400",
        },
    )
    before = all_attributes(sqs, url)

    result = run(env, "--json")

    assert result.exit_code == 1, result.output  # 45 s is below the Lambda's 60 s
    assert all_attributes(sqs, url) == before


def test_setup_against_an_existing_dlq_creates_the_ledger_table_with_its_ttl(
    env, make_dlq, dynamodb, unique
):
    make_dlq()

    result = run(env, "--json")

    report = json.loads(result.stdout)
    assert report["table_created"] is True
    assert report["ledger_table"] == f"ledger-{unique}"
    table = dynamodb.describe_table(TableName=f"ledger-{unique}")["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        "by-status",
        "by-conversation",
    }
    ttl = dynamodb.describe_time_to_live(TableName=f"ledger-{unique}")["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"


def test_setup_twice_says_the_table_was_already_there(env, make_dlq, unique):
    make_dlq()
    run(env)

    again = run(env)

    assert f"ledger table ledger-{unique}: already there" in again.stdout


def test_a_well_configured_dlq_passes_with_exit_0(env, sqs, make_dlq):
    url = make_dlq({"VisibilityTimeout": "360"})
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": policy(bound_to_the_rule(arn_of(sqs, url)))}
    )

    result = run(env, "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert {f["severity"] for f in report["findings"]} == {"ok"}


def test_setup_without_json_prints_the_findings_as_a_table(env, make_dlq):
    make_dlq()

    result = run(env)

    assert "# setup findings" in result.stdout
    assert "\ndlq policy\tfail\tthe queue policy lets no EventBridge rule send" in result.stdout


# --- what setup finds about the DLQ ------------------------------------------------------


def test_a_visibility_timeout_below_six_times_the_lambda_timeout_is_a_warning(env, make_dlq):
    make_dlq({"VisibilityTimeout": "120"})

    result = run(env, "--json", "--lambda-timeout", "60")

    found = finding(result, "dlq visibility timeout")
    assert found["severity"] == "warn"
    assert "VisibilityTimeout 120 s" in found["found"]
    assert "360 s" in found["found"]
    assert "VisibilityTimeout=360" in found["fix"]
    assert "the poller is not affected (it asks 120 s on each receive)" in found["found"]


def test_a_visibility_timeout_below_the_lambda_timeout_fails_setup(env, make_dlq):
    make_dlq()  # SQS's default VisibilityTimeout: 30 s

    result = run(env, "--json")  # --lambda-timeout's default: 60 s

    assert result.exit_code == 1
    found = finding(result, "dlq visibility timeout")
    assert found["severity"] == "fail"
    assert "Lambda refuses such a queue as a trigger" in found["found"]


def test_without_an_ingest_lambda_the_visibility_timeout_is_fine(env, make_dlq):
    make_dlq({"VisibilityTimeout": "30"})

    result = run(env, "--json", "--lambda-timeout", "0")

    found = finding(result, "dlq visibility timeout")
    assert found["severity"] == "ok"
    assert "no ingest Lambda" in found["found"]


def test_a_dlq_eventbridge_may_not_send_to_fails_setup_with_the_statement_to_add(
    env, sqs, make_dlq
):
    url = make_dlq()

    result = run(env, "--json")

    assert result.exit_code == 1
    found = finding(result, "dlq policy")
    assert found["severity"] == "fail"
    assert "EventBridge cannot put failed events here" in found["found"]
    statement = json.loads(found["fix"].split(": ", 1)[1])
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == arn_of(sqs, url)
    assert "aws:SourceArn" in statement["Condition"]["ArnEquals"]


def test_a_policy_letting_any_principal_send_is_a_warning(env, sqs, make_dlq):
    url = make_dlq()
    anyone = {"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": "*"}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy(anyone)})

    result = run(env, "--json")

    found = finding(result, "dlq policy")
    assert found["severity"] == "warn"
    assert "any principal" in found["found"]


def test_eventbridge_allowed_without_a_source_arn_condition_is_a_warning(env, sqs, make_dlq):
    url = make_dlq()
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": policy(eventbridge_may_send(arn_of(sqs, url)))}
    )

    result = run(env, "--json")

    found = finding(result, "dlq policy")
    assert found["severity"] == "warn"
    assert "without an aws:SourceArn condition" in found["found"]


def test_eventbridge_bound_to_its_rule_is_fine_and_the_rule_is_named(env, sqs, make_dlq):
    url = make_dlq()
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": policy(bound_to_the_rule(arn_of(sqs, url)))}
    )

    result = run(env, "--json")

    found = finding(result, "dlq policy")
    assert found["severity"] == "ok"
    assert RULE_ARN in found["found"]


def test_a_kms_encrypted_dlq_says_the_workers_need_kms_decrypt_on_its_key(env, make_dlq):
    make_dlq({"KmsMasterKeyId": KMS_KEY})

    result = run(env, "--json")

    found = finding(result, "dlq encryption")
    assert found["severity"] == "ok"
    assert KMS_KEY in found["found"]
    assert f"kms:Decrypt on {KMS_KEY}" in found["fix"]


def test_the_aws_managed_sqs_key_fails_setup(env, make_dlq):
    make_dlq({"KmsMasterKeyId": "alias/aws/sqs"})

    result = run(env, "--json")

    found = finding(result, "dlq encryption")
    assert found["severity"] == "fail"
    assert "customer managed key" in found["fix"]


def test_sqs_managed_encryption_is_fine(env, make_dlq):
    make_dlq({"SqsManagedSseEnabled": "true"})

    result = run(env, "--json")

    assert finding(result, "dlq encryption")["severity"] == "ok"


def test_retention_and_the_waiting_messages_are_reported(env, sqs, make_dlq):
    url = make_dlq({"MessageRetentionPeriod": "172800"})
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")

    result = run(env, "--json")

    found = finding(result, "dlq retention")
    assert found["severity"] == "warn"
    assert "MessageRetentionPeriod 2 days and 3 messages waiting" in found["found"]
    assert "ApproximateAgeOfOldestMessage" in found["found"]
    assert "3 messages waiting" in finding(result, "dlq")["found"]


def test_an_empty_dlq_s_retention_is_fine(env, make_dlq):
    make_dlq()

    result = run(env, "--json")

    found = finding(result, "dlq retention")
    assert (found["severity"], found["found"]) == (
        "ok",
        "MessageRetentionPeriod 4 days; the queue is empty",
    )


def test_a_fifo_dlq_fails_setup(env, make_dlq, unique):
    make_dlq({"FifoQueue": "true"}, name=f"dlq-{unique}.fifo")

    result = run(env, "--json")

    assert result.exit_code == 1
    found = finding(result, "dlq type")
    assert found["severity"] == "fail"
    assert "EventBridge does not accept a FIFO queue" in found["found"]


def test_a_redrive_policy_on_the_dlq_is_a_warning_naming_where_messages_go(
    env, sqs, make_dlq, unique
):
    onward = sqs.create_queue(QueueName=f"onward-{unique}")["QueueUrl"]
    redrive = {"maxReceiveCount": "3", "deadLetterTargetArn": arn_of(sqs, onward)}
    make_dlq({"RedrivePolicy": json.dumps(redrive)})

    result = run(env, "--json")

    found = finding(result, "dlq redrive policy")
    assert found["severity"] == "warn"
    assert f"received 3 times moves on to {arn_of(sqs, onward)}" in found["found"]


def test_a_dlq_that_does_not_exist_fails_setup_and_is_not_created(env, sqs, moto_server, unique):
    env["DLQ_QUEUE_URL"] = f"{moto_server.url}/123456789012/missing-{unique}"

    result = run(env, "--json")

    assert result.exit_code == 1
    found = finding(result, "dlq")
    assert found["severity"] == "fail"
    assert f"no queue at DLQ_QUEUE_URL {env['DLQ_QUEUE_URL']}" in found["found"]
    assert "setup never creates the DLQ" in found["fix"]
    assert f"missing-{unique}" not in str(sqs.list_queues(QueueNamePrefix=f"missing-{unique}"))


def test_without_a_dlq_url_setup_says_the_dlq_was_not_checked(env, dynamodb, unique):
    result = run(env, "--json")

    assert result.exit_code == 0, result.output
    found = finding(result, "dlq")
    assert found["severity"] == "warn"
    assert "DLQ_QUEUE_URL is not set" in found["found"]
    assert dynamodb.describe_table(TableName=f"ledger-{unique}")


# --- the parking queue is ours -----------------------------------------------------------


def test_a_missing_parking_queue_is_created(env, sqs, make_dlq, moto_server, unique):
    make_dlq()
    env["REPLAY_PARKING_QUEUE_URL"] = f"{moto_server.url}/123456789012/parking-{unique}"

    result = run(env, "--json")

    report = json.loads(result.stdout)
    assert report["parking_created"] is True
    assert report["parking_queue_url"] == env["REPLAY_PARKING_QUEUE_URL"]
    assert finding(result, "parking queue")["severity"] == "ok"
    attributes = all_attributes(sqs, env["REPLAY_PARKING_QUEUE_URL"])
    assert attributes["MessageRetentionPeriod"] == str(14 * 24 * 3600)


def test_an_existing_parking_queue_is_left_as_it_is(env, sqs, make_dlq, unique):
    make_dlq()
    parking = sqs.create_queue(QueueName=f"parking-{unique}", Attributes={"DelaySeconds": "5"})
    env["REPLAY_PARKING_QUEUE_URL"] = parking["QueueUrl"]
    before = all_attributes(sqs, parking["QueueUrl"])

    result = run(env, "--json")

    assert json.loads(result.stdout)["parking_created"] is False
    assert "left as it is" in finding(result, "parking queue")["found"]
    assert all_attributes(sqs, parking["QueueUrl"]) == before


# --- local queues: the emulator only ---------------------------------------------------------


def test_setup_local_creates_the_dlq_on_the_emulator_configured_as_advised(
    env, sqs, moto_server, unique
):
    env["DLQ_QUEUE_URL"] = f"{moto_server.url}/123456789012/local-dlq-{unique}"

    result = run(env, "--local", "--queue", f"crm-{unique}", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["local_queues"]) == {f"local-dlq-{unique}", f"crm-{unique}"}
    assert {f["severity"] for f in report["findings"]} == {"ok"}


def test_queue_without_local_is_refused_with_exit_2(env, make_dlq, unique):
    make_dlq()

    result = run(env, "--queue", f"crm-{unique}")

    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --queue creates queues on a local emulator only: add --local"
    )


def test_setup_local_refuses_to_create_queues_on_aws_itself(env, monkeypatch, unique):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    env["DLQ_QUEUE_URL"] = f"https://sqs.us-east-1.amazonaws.com/123456789012/dlq-{unique}"

    result = run(env, "--local")

    assert result.exit_code == 2
    assert "--local creates queues on a local emulator only" in result.stderr
    assert "https://sqs.us-east-1.amazonaws.com" in result.stderr
