"""`bench.deployed` notes when the poller sent each task and with what countdown, and the
floor's task is priced by sending no-op tasks the same way (`bench.floor._send_as`).

Celery's own CPU per task depends on how tasks reach the worker (docs/performance.md):
these check what is recorded and replayed, never a time.
"""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery

from bench.deployed import counting_sent_tasks
from bench.floor import TASK, _send_as
from tasks.names import REPLAY_QUEUE


def test_each_task_sent_is_noted_with_its_countdown() -> None:
    app = Celery("sent-schedule", broker="memory://")
    with counting_sent_tasks() as sent:
        app.send_task("dlq.replay", args=("e1",), countdown=30)
        app.send_task("dlq.replay", args=("e2",))
        app.send_task("dlq.track", args=("c1",), countdown=0.5)

    assert dict(sent) == {"dlq.replay": 2, "dlq.track": 1}
    (first, a), (second, b), (third, c) = sent.schedule
    assert 0 <= first <= second <= third
    assert a == pytest.approx(30, abs=2) and b is None and c == pytest.approx(0.5, abs=0.5)


class _Recording:
    """Stands in for the Celery app: what `send_task` was asked, in order."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append({"name": name, **options})


def test_the_floor_sends_one_no_op_task_per_entry_with_its_countdown() -> None:
    app = _Recording()

    _send_as(app, [(10.0, 60.2), (10.01, None), (10.02, 2.1)])

    assert [task["name"] for task in app.sent] == [TASK] * 3
    assert [task["countdown"] for task in app.sent] == [60.2, None, 2.1]
    assert {task["queue"] for task in app.sent} == {REPLAY_QUEUE}
