"""The batch verification task: a thin adapter over `dlq.verify.Prefetcher`."""

from __future__ import annotations

from tasks.application import app
from tasks.names import VERIFY_TASK
from tasks.runtime import runtime


@app.task(name=VERIFY_TASK, ignore_result=True)
def verify() -> str:
    """Verify the oldest batch of the to-verify list; the run schedules the next itself.

    No autoretry: a run that fails leaves its ids in the list, the next ingest schedules
    another run once the debounce flag lapses, and replays look up on their own meanwhile.
    """
    prefetcher = runtime().prefetcher
    if prefetcher is None:
        return "disabled"
    return prefetcher.run().outcome.value
