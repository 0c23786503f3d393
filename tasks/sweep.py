"""The sweep: sends the passes the poller parked for a drain whose hold has ended."""

from __future__ import annotations

from redis.exceptions import RedisError

from dlq.ingest import send_due_parked
from tasks.application import app
from tasks.names import SWEEP_TASK
from tasks.producer import CeleryEnqueuer
from tasks.runtime import runtime


@app.task(
    name=SWEEP_TASK,
    ignore_result=True,
    autoretry_for=(RedisError,),
    retry_backoff=True,
    retry_jitter=True,
    max_retries=5,
)
def sweep() -> int:
    """Send the parked passes whose hold has ended (`dlq.ingest.send_due_parked`); how many.

    The poller schedules one for each second in which it parks lines, a hold after it:
    each finds the lines of its second and any before it, or nothing when the drain's
    end sent them. Lines it cannot take stay parked for the next sweep or the drain's
    end; an item nobody replayed is the reconciler's.
    """
    return send_due_parked(runtime().arrivals, CeleryEnqueuer(app))
