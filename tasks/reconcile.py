"""The reconciler task, run by `celery -A tasks beat` (see `beat_schedule`)."""

from __future__ import annotations

from tasks.application import app
from tasks.names import RECONCILE_TASK
from tasks.runtime import runtime


@app.task(name=RECONCILE_TASK, ignore_result=True)
def reconcile() -> dict[str, int]:
    """Re-enqueue from the ledger whatever Redis lost."""
    return dict(runtime().reconciler.run())
