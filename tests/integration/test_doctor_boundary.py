"""`dlq-replay doctor` on the trust boundary: it says what the boundary allows, and which
DLQ messages it peeks would be rejected, with why (moto as AWS, the CLI in-process)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import ORG, dlq_attributes, genesys_event

from cli.main import main
from devstack.queues import create_local_dlq
from dlq.aws import aws_client
from dlq.ledger import create_table
from dlq.settings import load_settings


@pytest.fixture()
def aws(moto_server) -> dict[str, Any]:
    settings = load_settings(_env_file=None)
    return {name: aws_client(name, settings) for name in ("sqs", "dynamodb", "events")}


@pytest.fixture()
def env(aws, moto_server, redis_url, unique) -> dict[str, str]:
    create_table(aws["dynamodb"], f"ledger-{unique}")
    dlq_url = f"{moto_server.url}/123456789012/dlq-{unique}"
    create_local_dlq(aws["sqs"], dlq_url)
    return {
        "REDIS_URL": redis_url,
        "LEDGER_TABLE": f"ledger-{unique}",
        "DLQ_QUEUE_URL": dlq_url,
        "REPLAY_VERIFY_CONVERSATION": "false",
        "GENESYS_ORG_ID": ORG,
        "REPLAY_ALLOWED_BUSES": "genesys-*",
    }


def rule(aws, bus: str, name: str, pattern: dict[str, Any]) -> str:
    aws["events"].create_event_bus(Name=bus)
    arn = aws["events"].put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    return str(arn["RuleArn"])


def dead_letter(aws, env, body: dict[str, Any], rule_arn: str) -> str:
    answer = aws["sqs"].send_message(
        QueueUrl=env["DLQ_QUEUE_URL"],
        MessageBody=json.dumps(body),
        MessageAttributes=dlq_attributes("arn:aws:sqs:us-east-1:123456789012:q", rule_arn=rule_arn),
    )
    return str(answer["MessageId"])


def doctor(env: dict[str, str]) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(main, ["doctor", "--json"], env=env, catch_exceptions=False)
    return {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_doctor_reports_the_allowed_buses(env):
    found = doctor(env)["trust boundary"]

    assert found["status"] == "pass"
    assert f"aws.partner/genesys.com/cloud/{ORG}/" in found["detail"]
    assert "genesys-*" in found["detail"]


def test_doctor_names_a_peeked_message_the_boundary_would_reject_and_why(aws, env, unique):
    payments = rule(aws, f"payments-{unique}", "refund-requested", {"source": ["payments"]})
    forged = dead_letter(aws, env, genesys_event(), payments)
    ended = {"source": [{"prefix": "aws.partner/genesys.com"}], "detail-type": [{"suffix": ".end"}]}
    crm = rule(aws, f"genesys-{unique}", "ended-to-crm", ended)
    mismatched = dead_letter(aws, env, genesys_event(topic="customer.start"), crm)
    fine = dead_letter(aws, env, genesys_event(topic="customer.end"), crm)

    found = doctor(env)

    assert found[f"dlq message {forged}"]["status"] == "warn"
    assert "would be rejected (BusNotAllowed)" in found[f"dlq message {forged}"]["detail"]
    assert "would be rejected (PatternMismatch)" in found[f"dlq message {mismatched}"]["detail"]
    assert "REPLAY_ALLOWED_BUSES" in found[f"dlq message {forged}"]["fix"]
    assert f"dlq message {fine}" not in found
    attributes = aws["sqs"].get_queue_attributes(
        QueueUrl=env["DLQ_QUEUE_URL"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "3"  # peeked, never consumed


def test_doctor_says_when_every_peeked_message_is_inside(aws, env, unique):
    crm = rule(aws, f"genesys-{unique}", "to-crm", {"source": [{"prefix": "aws.partner/"}]})
    dead_letter(aws, env, genesys_event(), crm)

    found = doctor(env)

    assert found["dlq messages"]["detail"] == "all 1 peeked are inside the boundary"


def test_doctor_fails_a_widened_boundary_without_an_org(env):
    found = doctor({**env, "GENESYS_ORG_ID": ""})["trust boundary"]

    assert found["status"] == "fail"
    assert "GENESYS_ORG_ID" in found["detail"]
