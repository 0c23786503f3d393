"""A worker's start-up banner names its broker as configured: a password masked, none
invented (kombu alone prints `redis://:**@host` for a URL without one)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

OWN_PREFIXES = ("AWS_", "REDIS_", "GENESYS_", "REPLAY_", "LEDGER_", "DLQ_", "POLLER_")


def banner_transport(redis_url: str, tmp_path: Path) -> str:
    """The `transport:` line of a real worker's banner (printed before it connects)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
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


def test_a_url_without_a_password_is_shown_as_it_is(redis_url, tmp_path):
    assert banner_transport(redis_url, tmp_path) == redis_url


def test_a_password_is_masked(redis_url, tmp_path):
    host = urlsplit(redis_url).netloc
    url = f"redis://:s3cret-broker-pw@{host}/0"

    shown = banner_transport(url, tmp_path)

    assert shown == f"redis://:***@{host}/0"
