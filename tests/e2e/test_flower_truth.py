"""What Flower sees: the task events of a real worker, read as Flower reads them.

A real Celery worker (in this process, task events on) over the real stand-ins; a
receiver on the real Redis feeds Celery's own `events.State` (what Flower's state is
built on) and counts events per task id. An event that ends `failed` or `exhausted`
must end its task FAILURE, after the ledger has recorded it, and never be retried, even
when the event waited first (a busy lock): a wait is a task of its own that answers
'waiting'.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery.events.state import State
from celery.signals import task_failure
from helpers import eventually, genesys_event
from stack import HttpSink, Stack, configured, in_process_worker, sim_env

from dlq.events import EventKey
from dlq.ledger import Status
from tasks.application import app
from tasks.base import WAITING
from tasks.names import REPLAY_TASK
from tasks.replay import EventNotReplayed

pytestmark = pytest.mark.slow
API_DESTINATION = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f"


class Events:
    """Task events as Flower receives them: Celery's `State`, plus counts per task id."""

    def __init__(self) -> None:
        self.state = State()
        self.counts: dict[str, Counter[str]] = defaultdict(Counter)
        self._lock = threading.Lock()

    def on_event(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.state.event(event)
            if event["type"].startswith("task-"):
                self.counts[event["uuid"]][event["type"]] += 1

    def task(self, task_id: str) -> Any:
        with self._lock:
            return self.state.tasks.get(task_id)

    def replay_tasks(self) -> dict[str, Any]:
        with self._lock:
            return {u: t for u, t in self.state.tasks.items() if t.name == REPLAY_TASK}


@pytest.fixture(scope="module")
def events(redis_server) -> Iterator[Events]:
    seen = Events()
    with app.connection_for_read() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": seen.on_event})
        thread = threading.Thread(
            target=lambda: receiver.capture(limit=None, timeout=None, wakeup=False), daemon=True
        )
        thread.start()
        yield seen
        receiver.should_stop = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def worker(redis_server, moto_server, sim, events) -> Iterator[None]:
    # Task events on: what Flower switches on while it runs.
    with configured(sim_env(sim)), in_process_worker(concurrency=4, task_events=True):
        yield


@pytest.fixture()
def stack(worker, sim, unique, redis_url) -> Iterator[Stack]:
    sim.admin.reset()
    sim.admin.configure(rate_limit=100_000)
    with configured({"LEDGER_TABLE": f"ledger-{unique}"}):
        yield Stack(unique, sim)


@pytest.fixture()
def failures(stack) -> Iterator[list[dict[str, Any]]]:
    """Each `task_failure` of a replay task, with the ledger's status at that moment."""
    seen: list[dict[str, Any]] = []

    def record(sender: Any = None, task_id: str = "", exception: Any = None, **_: Any) -> None:
        if getattr(sender, "name", None) != REPLAY_TASK:
            return
        key = EventKey(exception.event_id, exception.target_arn, stack.rule_arn)
        item = stack.ledger.get(key)
        seen.append({"task_id": task_id, "exception": exception, "ledger": item and item.status})

    task_failure.connect(record, weak=False)
    yield seen
    task_failure.disconnect(record)


def task_of(events: Events, event_id: str, *, final: bool = True) -> Any:
    """The replay task that ended `event_id` in Flower's state (a wait's task answers
    'waiting': those are left out), or, with `final=False`, any task of it."""

    def find() -> Any:
        for task in events.replay_tasks().values():
            if event_id not in (task.args or ""):
                continue
            if not final or (task.ready and task.result != repr(WAITING)):
                return task
        return None

    return eventually(find, timeout=60, what=f"the task of {event_id} in the events")


def tasks_of(events: Events, event_id: str) -> list[Any]:
    return [t for t in events.replay_tasks().values() if event_id in (t.args or "")]


def test_an_event_that_fails_ends_its_task_failure_after_the_ledger_recorded_it(
    stack, events, failures, caplog
):
    caplog.set_level(logging.INFO, logger="celery.app.trace")
    conversation = str(uuid.uuid4())  # unknown to the simulator: 404, the event fails
    event = genesys_event(conversation_id=conversation)
    stack.put_dlq(event)
    stack.ingest()

    [item] = stack.wait_final(1)
    task = task_of(events, event["id"])

    assert item.status is Status.FAILED
    assert task.state == "FAILURE"
    assert "EventNotReplayed" in task.exception and event["id"] in task.exception
    assert "ended failed" in task.exception
    [failure] = eventually(lambda: failures, timeout=10, what="the task_failure signal")
    assert failure["task_id"] == task.uuid
    assert isinstance(failure["exception"], EventNotReplayed)
    assert failure["ledger"] is Status.FAILED  # recorded before the task failed
    assert events.counts[task.uuid]["task-retried"] == 0
    assert events.counts[task.uuid]["task-failed"] == 1
    # The worker's log: one line at INFO, no traceback.
    [logged] = [r for r in caplog.records if task.uuid in r.getMessage()]
    assert logged.levelno == logging.INFO and logged.exc_info is None
    assert "raised expected: EventNotReplayed" in logged.getMessage()


def test_an_exhausted_event_ends_its_task_failure_once_not_per_attempt(stack, events):
    event = genesys_event()
    with (
        HttpSink(status=503) as sink,
        configured(
            {
                "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url}),
                "REPLAY_MAX_ATTEMPTS": "2",
                "REPLAY_VERIFY_CONVERSATION": "false",
            }
        ),
    ):
        stack.put_dlq(event, target_arn=API_DESTINATION)
        stack.ingest()
        [item] = stack.wait_final(1)
        task = task_of(events, event["id"])

    assert item.status is Status.EXHAUSTED
    assert task.state == "FAILURE"
    assert "ended exhausted" in task.exception
    # The first attempt's failure was retried (a RETRY), the last one failed the task.
    assert events.counts[task.uuid]["task-retried"] == 1
    assert events.counts[task.uuid]["task-failed"] == 1
    assert events.counts[task.uuid]["task-succeeded"] == 0


def test_a_task_that_waited_for_a_busy_lock_and_then_failed_shows_failure(stack, events, redis_url):
    conversation = str(uuid.uuid4())  # unknown to the simulator: the event fails
    event = genesys_event(conversation_id=conversation)
    # Another worker holds the conversation: this event's task must wait for it first.
    held = redis.Redis.from_url(redis_url).lock(f"dlq:lock:{conversation}", timeout=60)
    assert held.acquire(blocking=False)
    with configured({"REPLAY_VERIFY_CONVERSATION": "true"}):
        stack.put_dlq(event)
        stack.ingest()
        eventually(
            lambda: sum(t.result == repr(WAITING) for t in tasks_of(events, event["id"])) >= 2,
            timeout=30,
            what="the task waiting twice",
        )
        held.release()
        [item] = stack.wait_final(1)
        task = task_of(events, event["id"])

    assert item.status is Status.FAILED
    # Each wait is a task of its own that answered 'waiting'; the run that ended the
    # event is FAILURE (under one task id, Celery's state would have kept a SUCCESS).
    assert task.state == "FAILURE"
    waits = [t for t in tasks_of(events, event["id"]) if t.uuid != task.uuid]
    assert len(waits) >= 2
    assert {(t.state, t.result) for t in waits} == {("SUCCESS", repr(WAITING))}
