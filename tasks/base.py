"""What every dlq task shares: the retry policy applied at run time, and waits.

Celery's `retry_backoff` options are read once, when a task is decorated; the policy
lives in `dlq.retry.RetryPolicy` instead and is asked for each countdown here, so the
countdown follows the settings the worker runs with (`autoretry_for` still catches).
"""

from __future__ import annotations

from typing import Any

from celery import Task, uuid
from celery.exceptions import Ignore
from celery.worker.request import Request

from dlq.ledger import StaleClaim
from dlq.replay import AttemptFailed
from dlq.retry import RetryPolicy, cap_countdown

WAIT_FLOOR_SECONDS = 0.5
#: What a task that waited answers (the worker logs it: `succeeded in ...: 'waiting'`).
WAITING = "waiting"


class NamedRequest(Request):  # type: ignore[misc]
    """A worker's request whose every task event names its task.

    Celery names a task only in `task-received`; a monitor that starts listening after
    that event (Flower started after the workers, or switching task events on once it
    runs: they are off by default) sees the task's `task-started`, `task-retried`,
    `task-failed` or `task-succeeded` without a name, and Flower lists it under no task
    type. With the name in every event, Celery's event state (Flower's) fills it in from
    whichever event it sees first.
    """

    def send_event(self, type: str, **fields: Any) -> None:
        fields.setdefault("name", self.name)
        super().send_event(type, **fields)


class BoundedTask(Task):  # type: ignore[misc]
    """A task whose retries follow its `RetryPolicy` and stay below the broker's bound.

    Celery's autoretry catches the error and calls `retry`; this is where the policy
    chooses the countdown (backoff with jitter, stretched to a server's `Retry-After`,
    capped below the visibility timeout), bounds the task's retries, and records a failed
    attempt's retry in the ledger before it is scheduled. Its task events name the task
    (`NamedRequest`).
    """

    Request = NamedRequest

    def policy(self) -> RetryPolicy:
        """The policy this task's retries follow (the worker's runtime holds one per task)."""
        from tasks.runtime import runtime  # the runtime imports the app that holds this task

        return runtime().policies[self.name]

    def retry(self, *args: Any, exc: BaseException | None = None, **options: Any) -> Any:
        policy = self.policy()
        server_wait = getattr(exc, "retry_after", None)
        if options.get("countdown") is None and options.get("eta") is None:
            options["countdown"] = policy.countdown(self.request.retries, retry_after=server_wait)
        elif options.get("countdown") is not None:
            options["countdown"] = cap_countdown(max(options["countdown"], server_wait or 0.0))
        options.setdefault("max_retries", policy.task_retries)
        if isinstance(exc, AttemptFailed):
            try:
                exc.schedule(options.get("countdown") or 0.0)
            except StaleClaim:
                # Another worker took the item over while this one failed: no retry here.
                raise Ignore() from None
        return super().retry(*args, exc=exc, **options)

    def wait(self, seconds: float | None) -> str:
        """Come back in `seconds` without using up a retry (lock busy, budget says wait).

        Waits are floored: a refused caller asking again within milliseconds would only
        churn the broker and the limiter. The copy gets a task id of its own: Celery's
        event state (Flower's) keeps the first SUCCESS a task id reports, so under one id
        a wait's SUCCESS would hide the FAILURE of the run that ends the event. Each wait
        is therefore a task that succeeds with the result 'waiting' (see the README's
        Flower section for how to read the counts).
        """
        delay = cap_countdown(max(seconds or 0.0, WAIT_FLOOR_SECONDS))
        self.signature_from_request(countdown=delay, task_id=uuid()).apply_async()
        return WAITING
