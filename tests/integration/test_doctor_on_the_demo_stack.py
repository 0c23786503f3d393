"""`dlq-replay doctor` passes on the demo's own stack.

The stack is started and furnished as `dlq-replay demo` does it, with the same building
blocks: `DevStack` (redis-server, moto, the Genesys simulator), the local DLQ and target
queues, `setup`, the demo's rule and its targets, and a synthetic workload in the DLQ.
doctor then runs as an operator runs it after the demo, in a process of its own with the
environment of the demo's env file.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.demo import FAILING_TARGET, PARKING_QUEUE, TARGET_QUEUE, WEBHOOK_QUEUE
from devstack.queues import create_local_dlq
from devstack.rules import BUS, RULE, create_demo_rules
from devstack.stack import DevStack
from devstack.synthetic import generate, send_batches
from dlq.aws import aws_client
from dlq.doctor import Severity
from dlq.provision import queue_name, setup
from dlq.settings import load_settings

DLQ_CLI = str(Path(sys.executable).with_name("dlq-replay"))


@dataclass(frozen=True)
class Doctor:
    """What one doctor run said: its exit status, its checks by name, its stderr."""

    status: int
    checks: dict[str, dict[str, Any]]
    stderr: str


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The demo's stack, furnished as the demo does; the environment its env file exports."""
    workdir = tmp_path_factory.mktemp("demo")
    with DevStack(workdir / "stack") as stack, pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in stack.own_env().items():
            monkeypatch.setenv(name, value)  # this process builds the demo's resources
        config = load_settings(_env_file=None)
        sqs = aws_client("sqs", config)
        queues = create_local_dlq(sqs, config.dlq_queue_url, extra=(TARGET_QUEUE, WEBHOOK_QUEUE))
        dlq = queues[queue_name(config.dlq_queue_url)]
        own = stack.own_env(
            DLQ_QUEUE_URL=dlq.url,
            REPLAY_PARKING_QUEUE_URL=dlq.url.rsplit("/", 1)[0] + f"/{PARKING_QUEUE}",
        )
        for name, value in own.items():
            monkeypatch.setenv(name, value)
        config = load_settings(_env_file=None)
        assert not [f for f in setup(config).findings if f.severity is Severity.FAIL]
        rules = create_demo_rules(
            config,
            crm_queue_arn=queues[TARGET_QUEUE].arn,
            webhook_queue_arn=queues[WEBHOOK_QUEUE].arn,
            failing_target_arn=FAILING_TARGET,
            sink_url="http://127.0.0.1:9/",
            api_key=secrets.token_urlsafe(12),
        )
        targets = [queues[TARGET_QUEUE].arn, rules.api_destination_arn, FAILING_TARGET]
        workload = generate(
            rule_arn=rules.rule_arn, conversations=6, malformed=1, target_arns=targets, seed=11
        )
        send_batches(sqs, dlq.url, workload.messages)
        yield {**own, "PATH": os.environ.get("PATH", "")}


@pytest.fixture(scope="module")
def doctor(demo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Doctor:
    """`dlq-replay doctor --json` on the stack, once, in a process of its own with only the
    env file's variables (and PATH), in a directory without a `.env`."""
    done = subprocess.run(
        [DLQ_CLI, "doctor", "--json"],
        env=demo_env,
        cwd=tmp_path_factory.mktemp("operator"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(done.stdout)
    return Doctor(done.returncode, {c["name"]: c for c in report["checks"]}, done.stderr)


def test_doctor_finds_nothing_to_fix_on_the_demo_s_stack(doctor):
    assert [c for c in doctor.checks.values() if c["status"] == "fail"] == []
    assert doctor.status == 0, doctor.stderr


@pytest.mark.parametrize(
    "name",
    [
        "redis",
        "redis eviction",
        "redis persistence",
        "ledger table",
        "ledger indexes",
        "ledger ttl",
        "dlq",
        "dlq type",
        "dlq visibility timeout",
        "dlq policy",
        "dlq encryption",
        "genesys token",
        "genesys conversation:communication:view",
        "genesys analytics:conversationDetail:view",
        "trust boundary",
        f"rule {RULE} (bus {BUS})",
    ],
)
def test_each_dependency_of_the_demo_s_stack_passes_its_check(doctor, name):
    assert doctor.checks[name]["status"] == "pass", doctor.checks[name]
