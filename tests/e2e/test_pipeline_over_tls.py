"""The pipeline end to end over `rediss://` with a password: the poller's ingest, a worker
(`celery -A tasks worker`, a process of its own), tracking, and beat's reconciler, against
a redis-server that speaks TLS only (`tls_redis`) with its CA in REDIS_TLS_CA_FILE."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from broker import celery_app, drop_tasks, queued_tasks
from celery import Celery
from helpers import REPO
from stack import Stack, configured, sim_env

from dlq.ledger import Status
from dlq.redisclient import redis_client
from dlq.settings import load_settings
from e2e.test_replay_e2e import conversations_with_events, wait_for_tracking
from tasks.names import RECONCILE_TASK, REPLAY_QUEUE, TRACK_QUEUE, VERIFY_QUEUE

pytestmark = pytest.mark.slow

DLQ_CLI = str(Path(sys.executable).with_name("dlq-replay"))


@pytest.fixture()
def env(tls_redis, moto_server, sim, unique) -> Iterator[dict[str, str]]:
    """Every process's environment: rediss:// with the password, the CA, this test's ledger."""
    assert tls_redis.tls is not None
    sim.admin.reset()
    sim.admin.configure(rate_limit=100_000)
    values = {
        **sim_env(sim),
        "REDIS_URL": tls_redis.url.replace("rediss://", f"rediss://:{tls_redis.password}@"),
        "REDIS_TLS_CA_FILE": str(tls_redis.tls.ca),
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_METRICS_PORT": "0",
        "POLLER_METRICS_PORT": "0",
    }
    with configured(values):
        redis_client(load_settings(_env_file=None)).flushall()
        yield values


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "tasks", "worker",
            "--pool", "threads", "-c", "4",
            "-Q", f"{REPLAY_QUEUE},{VERIFY_QUEUE},{TRACK_QUEUE}",
            "--loglevel", "WARNING",
            "--without-heartbeat", "--without-mingle", "--without-gossip",
        ],
        cwd=REPO,
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip


def poll(env: dict[str, str]) -> None:
    """`dlq-replay poll --until-empty`: the poller drains the DLQ into the TLS broker."""
    done = subprocess.run(
        [DLQ_CLI, "poll", "--until-empty"],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_events_are_replayed_tracked_and_reconciled_over_tls(env, sim, unique, tls_redis):
    stack = Stack(unique, sim)
    conversations, events = conversations_with_events(stack, 4, 2)
    lost = set(conversations[2:])
    for event in events:
        stack.put_dlq(event)
    cache = redis_client(stack.settings)

    poll({**env, "DLQ_QUEUE_URL": stack.dlq_url})
    # Redis loses the tasks of two conversations (a failover, say): the ledger still has them.
    assert len(queued_tasks(cache)) == len(events)
    lost_ids = {e["id"] for e in events if e["detail"]["eventBody"]["conversationId"] in lost}
    assert drop_tasks(cache, lost_ids) == len(lost_ids) == 4

    worker = start_worker({**env, "DLQ_QUEUE_URL": stack.dlq_url})
    beat = Beat(celery_app(env))
    try:
        items = stack.wait_final(len(events), timeout=45, tick=beat.tick)
        assert {i.status for i in items} == {Status.REPLAYED}, items
        arrived = Counter(json.loads(body)["id"] for body in stack.target_messages())
        assert arrived == Counter(e["id"] for e in events)
        wait_for_tracking(stack, conversations)
        assert beat.sent > 0 and worker.poll() is None
    finally:
        worker.terminate()
        _, errors = worker.communicate(timeout=30)
        cache.close()
    assert tls_redis.password.encode() not in errors


class Beat:
    """What `celery -A tasks beat` does for the reconciler, every second rather than every
    minute: send its task on the app's broker (the TLS one)."""

    def __init__(self, app: Celery) -> None:
        self._app = app
        self._next = 0.0
        self.sent = 0

    def tick(self) -> None:
        if time.monotonic() >= self._next:
            self._app.send_task(RECONCILE_TASK)
            self.sent += 1
            self._next = time.monotonic() + 1.0
