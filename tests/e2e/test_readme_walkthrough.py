"""The README's "Against your own account" path, run as written on an account built before.

The account is moto's (the README's own region), made the way a Genesys integration team
has it before they ever hear of dlq-replay: a DLQ created with default attributes, a rule
on the org's partner bus whose target (an SQS queue) takes an `InputTransformer`, and
EventBridge's dead letters waiting in the DLQ. The README's two blocks are read from the
file: the first one's `export` lines name the settings (the test gives the account's
values to the ones that name a resource, and keeps the others as written), the second
one's commands run one by one in a shell, the `&` ones in the background. Stand-ins add
only what points at them: moto's endpoint and keys, the simulator's base URLs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from helpers import (
    ORG,
    REPO,
    SIM_CLIENT_ID,
    SIM_CLIENT_SECRET,
    dlq_attributes,
    eventually,
    genesys_event,
)

from devstack.redis_server import RedisServer

pytestmark = pytest.mark.slow

README = REPO / "README.md"
SECTION = "## Against your own account"
ACCOUNT = "123456789012"  # moto's

#: The settings the README block must name: what an operator has to say about their account.
NAMED = {
    "AWS_REGION",
    "DLQ_QUEUE_URL",
    "LEDGER_TABLE",
    "REDIS_URL",
    "INGEST_FRONT_DOOR",
    "GENESYS_REGION",
    "GENESYS_ORG_ID",
    "GENESYS_CLIENT_ID",
    "GENESYS_CLIENT_SECRET",
}
TRANSFORMER = {
    "InputPathsMap": {"conversation": "$.detail.eventBody.conversationId", "id": "$.id"},
    "InputTemplate": '{"conversation": <conversation>, "event": <id>, "via": "crm-sync"}',
}


def readme_blocks() -> tuple[dict[str, str], list[str]]:
    """The section's settings (name -> value as written) and its commands, in order."""
    text = README.read_text()
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2, "the section has a settings block and a commands block"
    settings = dict(re.findall(r"^export (\w+)=(\S+)", blocks[0], flags=re.M))
    commands = [line for line in blocks[1].splitlines() if line.strip()]
    return settings, commands


def in_background(command: str) -> bool:
    return re.search(r"&\s*$", command) is not None


def test_the_readme_block_names_every_setting_an_account_needs():
    settings, commands = readme_blocks()
    assert set(settings) == NAMED
    assert settings["INGEST_FRONT_DOOR"] in {"poller", "lambda"}
    assert any(c.startswith("dlq-replay setup") for c in commands)
    assert any(c.startswith("dlq-replay doctor") for c in commands)


class Account:
    """An AWS account as its owner made it, before dlq-replay: a DLQ with default
    attributes, a rule on the org's partner bus, its transformed queue target."""

    def __init__(self, region: str, unique: str) -> None:
        self.sqs = boto3.client("sqs", region_name=region)
        events = boto3.client("events", region_name=region)
        self.dlq_url = self.sqs.create_queue(QueueName=f"genesys-crm-dlq-{unique}")["QueueUrl"]
        self.inbox_url = self.sqs.create_queue(QueueName=f"crm-inbox-{unique}")["QueueUrl"]
        inbox_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.inbox_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        # moto keeps a rule's bus by the last part of its name: the partner bus stands as
        # a custom bus of that name (tests/integration/test_trust_boundary.py says more).
        suffix = f"crm-{unique}"
        bus = f"aws.partner/genesys.com/cloud/{ORG}/{suffix}"
        events.create_event_bus(Name=suffix)
        rule = f"crm-sync-{unique}"
        pattern = json.dumps({"source": [{"prefix": "aws.partner/genesys.com"}]})
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=pattern)
        events.put_targets(
            Rule=rule,
            EventBusName=bus,
            Targets=[{"Id": "crm-inbox", "Arn": inbox_arn, "InputTransformer": TRANSFORMER}],
        )
        self.rule_arn = f"arn:aws:events:{region}:{ACCOUNT}:rule/{bus}/{rule}"
        self.target_arn = inbox_arn
        # The one attribute a working DLQ has: a policy that lets the rule dead-letter.
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        statement = {
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": dlq_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": self.rule_arn}},
        }
        self.sqs.set_queue_attributes(
            QueueUrl=self.dlq_url,
            Attributes={"Policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})},
        )
        self.received: list[dict[str, Any]] = []

    def dead_letter(self, event: dict[str, Any]) -> None:
        """What EventBridge writes to the DLQ when the target refused `event`."""
        self.sqs.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=json.dumps(event),
            MessageAttributes=dlq_attributes(self.target_arn, rule_arn=self.rule_arn),
        )

    def delivered(self) -> list[dict[str, Any]]:
        """Every message the rule's target has received so far (read off its queue)."""
        while True:
            answer = self.sqs.receive_message(
                QueueUrl=self.inbox_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            )
            messages = answer.get("Messages", [])
            if not messages:
                return self.received
            for message in messages:
                self.received.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.inbox_url, ReceiptHandle=message["ReceiptHandle"]
                )


@pytest.fixture()
def operators_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis as an operator runs it (persistent, never evicting), not the session's
    throwaway one: `doctor` is run as written and judges it."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture()
def background(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The long-running commands the walkthrough starts; stopped (their groups) after."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_readme_path_delivers_a_backlog_on_an_account_built_before(
    moto_server, operators_redis, genesys_sim, sim_admin, unique, tmp_path, background
):
    written, commands = readme_blocks()
    account = Account(written["AWS_REGION"], unique)
    conversations = [str(uuid.uuid4()) for _ in range(4)]
    for conversation in conversations:
        sim_admin.seed(conversation)
    events = [genesys_event(conversation_id=c) for c in conversations for _ in range(2)]
    for event in events:
        account.dead_letter(event)

    env = {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        # The account's own values for the settings that name its resources...
        "DLQ_QUEUE_URL": account.dlq_url,
        "LEDGER_TABLE": f"dlq-replay-ledger-{unique}",
        "REDIS_URL": operators_redis.url,
        "GENESYS_ORG_ID": ORG,
        "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
        "GENESYS_CLIENT_SECRET": SIM_CLIENT_SECRET,
        # ...the others as the README writes them...
        "AWS_REGION": written["AWS_REGION"],
        "AWS_DEFAULT_REGION": written["AWS_REGION"],
        "INGEST_FRONT_DOOR": written["INGEST_FRONT_DOOR"],
        "GENESYS_REGION": written["GENESYS_REGION"],
        # ...and what points at the stand-ins (moto's endpoint and keys are in os.environ).
        "GENESYS_API_BASE_URL": genesys_sim.url,
        "GENESYS_LOGIN_BASE_URL": genesys_sim.url,
        "REPLAY_METRICS_PORT": "0",
        "POLLER_METRICS_PORT": "0",
    }
    finished: dict[str, subprocess.CompletedProcess[str]] = {}
    for command in commands:
        if command.startswith("dlq-replay status"):
            # An operator looks once the workers have had the time to drain.
            eventually(
                lambda: len(account.delivered()) >= len(events),
                timeout=120,
                what="every event at the rule's target",
            )
        if in_background(command):
            line = command.rstrip().rstrip("&")
            background.append(
                subprocess.Popen(
                    ["bash", "-c", line],
                    env=env,
                    cwd=tmp_path,
                    start_new_session=True,
                    stdout=(tmp_path / f"bg{len(background)}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
            continue
        run = subprocess.run(
            ["bash", "-c", command],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, (
            f"{command!r} exited {run.returncode}:\n{run.stdout}{run.stderr}"
        )
        finished[command.split("#")[0].strip()] = run

    delivered = account.delivered()
    assert sorted(b["event"] for b in delivered) == sorted(e["id"] for e in events)
    assert all(b["via"] == "crm-sync" for b in delivered)  # the rule's transformation
    assert {b["conversation"] for b in delivered} == set(conversations)
    status = next(
        run for command, run in finished.items() if command.startswith("dlq-replay status")
    )
    assert re.search(rf"^replayed\t{len(events)}$", status.stdout, flags=re.M), status.stdout
    dlq = account.sqs.get_queue_attributes(QueueUrl=account.dlq_url, AttributeNames=["All"])[
        "Attributes"
    ]
    assert dlq["ApproximateNumberOfMessages"] == "0"
    assert "RedrivePolicy" not in dlq and dlq["VisibilityTimeout"] == "30"  # left as it was
