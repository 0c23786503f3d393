"""A worker, beat or the poller that cannot work says so once, and ends.

Started without AWS credentials, without its ledger table or with Redis out of reach,
`celery -A tasks worker` and `celery -A tasks beat` log one JSON line at ERROR naming the
cause and the fix (the line the CLI prints for the same cause), exit non-zero (2: an
operator must act; 1: an outage that may pass) and take no task, so none is retried in a
loop; their health check fails. Real processes, in a directory without a `.env`; AWS is
the moto server (the endpoint stays set, so nothing leaves the machine). The poller's own
cases are tests/integration/test_poller_stops.py's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devstack.process import free_port
from dlq.aws import aws_client
from dlq.ledger import create_table
from dlq.settings import load_settings

pytestmark = pytest.mark.slow

DLQ_CLI = str(Path(sys.executable).with_name("dlq-replay"))
NO_CREDENTIALS = (
    "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
    "or run with a role (instance profile, ECS task role, IRSA)"
)
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


@pytest.fixture()
def env(tmp_path: Path, moto_server, redis_url: str, unique: str) -> dict[str, str]:
    """A process that can work: moto's credentials, a ledger table, the session's Redis."""
    table = f"ledger-{unique}"
    create_table(aws_client("dynamodb", load_settings(_env_file=None)), table)
    return {
        **os.environ,
        "REDIS_URL": redis_url,
        "LEDGER_TABLE": table,
        "REPLAY_HEALTH_DIR": str(tmp_path / "health"),
        "REPLAY_METRICS_PORT": "0",
    }


def without_credentials(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """`env` with no credential anywhere boto3 looks (empty files, no variables, no IMDS)."""
    empty = tmp_path / "empty"
    empty.write_text("")
    clean = {k: v for k, v in env.items() if k not in CREDENTIAL_VARIABLES}
    return {
        **clean,
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_CONFIG_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def celery(program: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "celery", "-A", "tasks", program, "--loglevel", "INFO"]
    if program == "worker":
        argv += ["--pool", "threads", "-Q", "replay,verify,track", "--without-mingle",
                 "--without-gossip", "--without-heartbeat"]  # fmt: skip
    else:
        argv += ["-s", str(cwd / "celerybeat-schedule")]
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def logged(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Every line of the process's log (stderr): JSON lines only (a traceback fails).

    A worker checks before its banner, so its stdout is empty; beat prints its banner
    (stdout) before `beat_init`.
    """
    return [json.loads(line) for line in done.stderr.strip().splitlines()]


def health_fails(service: str, env: dict[str, str]) -> bool:
    done = subprocess.run(
        [DLQ_CLI, "health", "--service", service], env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    return done.returncode == 1


@pytest.mark.parametrize("program", ["worker", "beat"])
def test_without_credentials_celery_says_so_once_and_exits_2(env, tmp_path, program):
    service = "worker" if program == "worker" else "beat"
    env = without_credentials(env, tmp_path)

    done = celery(program, env, tmp_path)

    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in logged(done) if line["level"] == "error"]
    assert [line["message"] for line in errors] == [NO_CREDENTIALS]
    assert "Traceback" not in done.stdout + done.stderr
    assert [line for line in logged(done) if "retry" in line["message"].lower()] == []
    assert health_fails(service, env)


def test_without_its_ledger_table_a_worker_says_so_once_and_exits_2(env, tmp_path, unique):
    env = {**env, "LEDGER_TABLE": f"none-{unique}"}

    done = celery("worker", env, tmp_path)

    assert done.returncode == 2, done.stdout + done.stderr
    (error,) = logged(done)
    assert error["level"] == "error"
    assert error["message"].startswith("the ledger table does not exist (DescribeTable")
    assert error["message"].endswith(
        "run `dlq-replay setup` to create it, or fix LEDGER_TABLE and AWS_REGION"
    )
    assert health_fails("worker", env)


@pytest.mark.parametrize("program", ["worker", "beat"])
def test_with_redis_out_of_reach_celery_says_so_once_and_exits_1(env, tmp_path, program):
    # Nobody listens there: without the check, Celery would retry the broker for good.
    env = {**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}

    done = celery(program, env, tmp_path)

    assert done.returncode == 1, done.stdout + done.stderr
    (error,) = [line for line in logged(done) if line["level"] == "error"]
    assert error["message"].startswith("cannot reach Redis at redis://127.0.0.1:")
    assert error["message"].endswith("start Redis or fix REDIS_URL (host, port, rediss:// for TLS)")
    assert "Traceback" not in done.stdout + done.stderr
    assert [line for line in logged(done) if "trying again" in line["message"]] == []
    assert health_fails("worker" if program == "worker" else "beat", env)
