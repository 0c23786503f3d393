"""Flower's counts against the ledger: a real worker, a real Flower started after it.

As deployed: a `celery -A tasks worker` process with task events off (celeryconfig), and
`celery -A tasks flower` started later, which switches them on (`enable_events`, every
5 s). One event is attempted before Flower listens and ends after: Celery names a task
only in `task-received`, so without `tasks.base.NamedRequest` Flower would list that
task under no name. Then replayed, failed and exhausted events run while it listens,
and Flower's API must add up to the ledger: one FAILURE per event that ended `failed`
or `exhausted`, a RETRY (not a failure) per retried attempt, a SUCCESS per replayed one.

In a file of its own: it needs the broker to itself (test_flower_truth.py keeps an
in-process worker on the session's Redis for its whole module).
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from helpers import REPO, eventually, genesys_event
from stack import HttpSink, Stack, configured, sim_env

from devstack.process import free_port, wait_for_port
from devstack.stack import DevStack
from dlq.ledger import Status
from tasks.names import REPLAY_TASK

pytestmark = pytest.mark.slow

REFUSES = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f"  # 400: failed
UNAVAILABLE = "arn:aws:events:us-east-1:111122223333:api-destination/erp/1a2b3c"  # 503
AUTH = ("flower", "counts-test-password")
#: Retries come back after exactly this long (no jitter): long enough for the event
#: attempted before Flower to be retried only once Flower listens.
BACKOFF_SECONDS = 15


@pytest.fixture()
def sinks() -> Iterator[dict[str, HttpSink]]:
    with HttpSink(status=400) as refuses, HttpSink(status=503) as unavailable:
        yield {REFUSES: refuses, UNAVAILABLE: unavailable}


@pytest.fixture()
def env(redis_url, moto_server, genesys_sim, sim_admin, unique, sinks) -> dict[str, str]:
    """What the worker and this process (the ingest) run with."""
    sim_admin.configure(auto_create=True, rate_limit=100_000)
    return {
        **sim_env(genesys_sim),
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_METRICS_PORT": "0",
        "REPLAY_VERIFY_CONVERSATION": "false",
        "REPLAY_MAX_ATTEMPTS": "2",
        # The 503 target's events are to end exhausted, not wait behind its breaker.
        "REPLAY_BREAKER_FAILURES": "0",
        "REPLAY_BACKOFF_BASE": str(BACKOFF_SECONDS),
        "REPLAY_BACKOFF_MAX": str(BACKOFF_SECONDS),
        "REPLAY_BACKOFF_JITTER": "false",
        "REPLAY_HTTP_TARGETS": json.dumps({arn: sink.url for arn, sink in sinks.items()}),
    }


def start_worker(launcher: DevStack, env: dict[str, str]) -> None:
    """The worker as deployed: task events as celeryconfig sets them (off)."""
    launcher.start_worker(concurrency=4, env={**os.environ, **env})
    eventually(lambda: "ready." in worker_log(launcher), timeout=60, what="the worker to be ready")


def start_flower(launcher: DevStack, tmp_path: Path) -> str:
    """`celery -A tasks flower` with basic auth and its state in tmp_path; its URL."""
    port = free_port()
    argv = [
        sys.executable, "-m", "celery", "-A", "tasks", "flower",
        f"--port={port}", "--address=127.0.0.1", f"--conf={REPO / 'flowerconfig.py'}",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    env.update(FLOWER_BASIC_AUTH=":".join(AUTH), FLOWER_DB=str(tmp_path / "flower.db"))
    process = launcher.spawn(argv, "flower", env)
    wait_for_port(port, process=process, timeout=60)
    return f"http://127.0.0.1:{port}"


def worker_log(launcher: DevStack) -> str:
    path = launcher.workdir / "worker.log"
    return path.read_text() if path.exists() else ""


def flower_tasks(flower: str) -> dict[str, dict[str, Any]]:
    """Flower's replay tasks (`/api/tasks?taskname=dlq.replay`), by task id."""
    response = requests.get(
        f"{flower}/api/tasks", params={"taskname": REPLAY_TASK}, auth=AUTH, timeout=10
    )
    response.raise_for_status()
    return dict(response.json())


def flower_counters(flower: str) -> dict[str, int]:
    """The dashboard's per-worker counts (`task-failed`...), summed over the workers."""
    response = requests.get(f"{flower}/workers", params={"json": 1}, auth=AUTH, timeout=10)
    response.raise_for_status()
    totals: dict[str, int] = {}
    for worker in response.json()["data"]:
        for name in ("task-received", "task-failed", "task-retried", "task-succeeded"):
            totals[name] = totals.get(name, 0) + int(worker.get(name) or 0)
    return totals


def event_of(task: dict[str, Any]) -> str:
    """The event id a failed task names in its exception (a task whose `task-received`
    Flower missed has no args, but its `task-failed` event carries the exception)."""
    text = str(task.get("exception") or "")
    return text.split("event ", 1)[1].split(" ", 1)[0] if "event " in text else ""


def test_flower_started_after_the_worker_counts_one_failure_per_failed_or_exhausted_event(
    env, launcher, tmp_path
):
    with configured(env):
        stack = Stack(uuid.uuid4().hex[:10], sim=None)
        start_worker(launcher, env)

        # Attempted before Flower listens; its retry is received then (an ETA task the
        # worker holds) and runs BACKOFF_SECONDS later, once Flower listens.
        early = genesys_event()
        stack.put_dlq(early, target_arn=UNAVAILABLE)
        stack.ingest()
        eventually(
            lambda: [i.status for i in stack.ledger.scan()] == [Status.RETRY_SCHEDULED],
            timeout=30,
            what="the early event's first attempt",
        )
        flower = start_flower(launcher, tmp_path)
        eventually(
            lambda: "enabled by remote" in worker_log(launcher),
            timeout=30,
            what="Flower switching the worker's task events on",
        )

        replayed = [genesys_event() for _ in range(3)]
        failed = [genesys_event() for _ in range(2)]
        exhausted = [genesys_event() for _ in range(2)]
        for event in replayed:
            stack.put_dlq(event)
        for event in failed:
            stack.put_dlq(event, target_arn=REFUSES)
        for event in exhausted:
            stack.put_dlq(event, target_arn=UNAVAILABLE)
        stack.ingest()
        items = stack.wait_final(1 + 3 + 2 + 2, timeout=120)

    by_status = {s: {i.event_id for i in items if i.status is s} for s in Status}
    assert by_status[Status.REPLAYED] == {e["id"] for e in replayed}
    assert by_status[Status.FAILED] == {e["id"] for e in failed}
    assert by_status[Status.EXHAUSTED] == {e["id"] for e in [early, *exhausted]}
    not_replayed = by_status[Status.FAILED] | by_status[Status.EXHAUSTED]

    def failures() -> dict[str, dict[str, Any]]:
        found = {u: t for u, t in flower_tasks(flower).items() if t["state"] == "FAILURE"}
        return found if len(found) >= len(not_replayed) else {}

    failed_tasks = eventually(failures, timeout=30, what="Flower's FAILURE tasks", every=0.5)
    # One FAILURE per event that ended failed or exhausted, named (the early one too,
    # though Flower never saw it received), each naming its event.
    assert sorted(event_of(t) for t in failed_tasks.values()) == sorted(not_replayed)
    assert {t["name"] for t in failed_tasks.values()} == {REPLAY_TASK}
    [early_task] = [t for t in failed_tasks.values() if event_of(t) == early["id"]]
    assert early_task["received"] is None  # received before Flower listened
    assert "ended exhausted" in early_task["exception"]

    tasks = flower_tasks(flower)
    succeeded = [t for t in tasks.values() if t["state"] == "SUCCESS"]
    assert sorted(t["result"] for t in succeeded) == ["'replayed'"] * 3
    counters = flower_counters(flower)
    # The dashboard's Failed: events, not attempts. Each exhausted event's first attempt
    # is a RETRY (the early one's was before Flower listened), never a failure.
    assert counters["task-failed"] == len(not_replayed)
    assert counters["task-retried"] == len(exhausted)
