"""`dlq-replay health`: each service's check tells a process doing its job from a stuck one.

Real processes: `celery -A tasks worker` (prefork, as the fleet runs it, and threads, as
compose does), `celery -A tasks beat` and `dlq-replay poll`, on a Redis of the test's own
(so it can be taken away), moto and a ledger table of the test's own. Each process proves
its work every half second here; a check allows 3 s. Nothing is mocked: a stuck process
is a real one (its broker stopped, or SIGSTOP).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import eventually

from devstack.redis_server import RedisServer
from devstack.stack import DevStack
from dlq.aws import aws_client
from dlq.ledger import create_table
from dlq.settings import load_settings

pytestmark = pytest.mark.slow

DLQ_CLI = str(Path(sys.executable).with_name("dlq-replay"))
MAX_AGE = "3"


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis", persist=False) as server:
        yield server


@pytest.fixture()
def launcher(tmp_path: Path) -> Iterator[DevStack]:
    stack = DevStack(tmp_path)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture()
def env(tmp_path: Path, moto_server, own_redis: RedisServer, unique: str) -> dict[str, str]:
    """The environment of the test's processes and of its health checks."""
    table = f"ledger-{unique}"
    create_table(aws_client("dynamodb", load_settings(_env_file=None)), table)
    sqs = aws_client("sqs", load_settings(_env_file=None))
    queue_url = sqs.create_queue(QueueName=f"dlq-{unique}")["QueueUrl"]
    return {
        **os.environ,
        "REDIS_URL": own_redis.url,
        "LEDGER_TABLE": table,
        "DLQ_QUEUE_URL": queue_url,
        "POLLER_WAIT_SECONDS": "1",
        "POLLER_METRICS_PORT": "0",
        "REPLAY_METRICS_PORT": "0",
        "REPLAY_HEALTH_DIR": str(tmp_path / "health"),
        "REPLAY_HEALTH_INTERVAL_SECONDS": "0.5",
    }


def health(service: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DLQ_CLI, "health", "--service", service, "--max-age", MAX_AGE],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def healthy(service: str, env: dict[str, str]) -> bool:
    return health(service, env).returncode == 0


def unhealthy_saying(service: str, env: dict[str, str]) -> str:
    """The one line of a failed check (empty while the check still passes)."""
    done = health(service, env)
    if done.returncode == 0:
        return ""
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.strip().splitlines()
    return line


def start_worker(launcher: DevStack, env: dict[str, str], pool: str) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", pool,
        "--concurrency", "2", "-Q", "replay,verify,track", "--hostname", "health@%h",
        "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel", "INFO",
    ]  # fmt: skip
    metrics = str(launcher.workdir / "metrics")
    return launcher.spawn(argv, "worker", {**env, "PROMETHEUS_MULTIPROC_DIR": metrics})


def log_of(launcher: DevStack, name: str) -> str:
    return (launcher.workdir / f"{name}.log").read_text()


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_worker_is_healthy_while_it_consumes_and_unhealthy_once_its_broker_is_gone(
    env, launcher, own_redis, pool
):
    assert "has not proved its work" in unhealthy_saying("worker", env)  # not started yet

    worker = start_worker(launcher, env, pool)
    eventually(lambda: healthy("worker", env), timeout=60, what="a healthy worker")

    own_redis.stop()
    said = eventually(
        lambda: unhealthy_saying("worker", env), timeout=30, what="an unhealthy worker"
    )

    assert worker.poll() is None, "the worker exited: a stuck worker was wanted"
    assert said.startswith("unhealthy: the worker last proved its work")
    assert "consumer is not running" in said


def test_a_worker_that_stops_withdraws_its_proof(env, launcher):
    worker = start_worker(launcher, env, "threads")
    eventually(lambda: healthy("worker", env), timeout=60, what="a healthy worker")

    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)

    assert "has not proved its work" in unhealthy_saying("worker", env)


def test_beat_is_healthy_while_it_ticks_and_unhealthy_while_it_does_not(env, launcher, tmp_path):
    argv = [
        sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "INFO",
        "-s", str(tmp_path / "celerybeat-schedule"),
    ]  # fmt: skip
    beat = launcher.spawn(argv, "beat", env)
    eventually(lambda: healthy("beat", env), timeout=60, what="a healthy beat")

    beat.send_signal(signal.SIGSTOP)  # a beat that does not tick
    try:
        said = eventually(
            lambda: unhealthy_saying("beat", env), timeout=30, what="an unhealthy beat"
        )
    finally:
        beat.send_signal(signal.SIGCONT)

    assert said.startswith("unhealthy: the beat last proved its work")
    eventually(lambda: healthy("beat", env), timeout=30, what="beat healthy again")


def test_the_poller_is_healthy_while_it_receives_and_unhealthy_while_it_does_not(env, launcher):
    poller = launcher.spawn([DLQ_CLI, "poll"], "poller", env)
    eventually(lambda: healthy("poller", env), timeout=60, what="a healthy poller")

    poller.send_signal(signal.SIGSTOP)  # a poller that does not receive
    try:
        said = eventually(
            lambda: unhealthy_saying("poller", env), timeout=30, what="an unhealthy poller"
        )
    finally:
        poller.send_signal(signal.SIGCONT)

    assert said.startswith("unhealthy: the poller last proved its work")
    assert "has not completed a receive" in said
