"""A worker's start-up banner names its broker as configured: a password masked, none
invented (kombu alone prints `redis://:**@host` for a URL without one).

The worker is one that can work (credentials, its ledger table, a Redis that takes its
password): one that cannot ends before its banner (tests/integration/test_unready_processes.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devstack.moto_server import aws_environment
from devstack.redis_server import RedisServer
from dlq.aws import aws_client
from dlq.ledger import create_table
from dlq.settings import load_settings

OWN_PREFIXES = ("AWS_", "REDIS_", "GENESYS_", "REPLAY_", "LEDGER_", "DLQ_", "POLLER_")


@pytest.fixture()
def aws(moto_server, unique) -> dict[str, str]:
    """Credentials and a ledger table of the test's own, on moto."""
    table = f"ledger-{unique}"
    create_table(aws_client("dynamodb", load_settings(_env_file=None)), table)
    return {**aws_environment(moto_server.url), "LEDGER_TABLE": table}


def banner_transport(redis_url: str, aws: dict[str, str]) -> str:
    """The `transport:` line of a real worker's banner (printed before it connects)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)} | aws
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "solo",
         "--without-heartbeat", "--without-mingle", "--without-gossip"],
        env={**env, "REDIS_URL": redis_url, "AWS_REGION": "us-east-1"},
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert worker.stdout is not None
        for line in worker.stdout:
            if "transport:" in line:
                return line.split("transport:", 1)[1].strip()
        raise AssertionError(f"the worker exited ({worker.wait()}) without a banner")
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_a_url_without_a_password_is_shown_as_it_is(redis_url, aws):
    assert banner_transport(redis_url, aws) == redis_url


def test_a_password_is_masked(tmp_path, aws):
    with RedisServer(tmp_path / "redis", password="s3cret-broker-pw", persist=False) as server:
        host = urlsplit(server.url).netloc
        url = f"redis://:s3cret-broker-pw@{host}/0"

        shown = banner_transport(url, aws)

    assert shown == f"redis://:***@{host}/0"
