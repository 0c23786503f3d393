"""Two beats (a deployment briefly running two) enqueue each pending item once.

Each beat's tick is the reconcile task, run here as a worker runs it (the task's own
code, its runtime built from the environment) against the session's Redis and a ledger
table on moto. The items are ones whose task Redis lost: retries overdue and claims
whose lease lapsed (the reconciler requeues those whatever the queue's length). What the
ticks leave in the broker's replay queue is counted.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from typing import Any

import pytest
from broker import queued_tasks
from helpers import genesys_event, received_message

from dlq.aws import aws_client
from dlq.ledger import Ledger, Status, create_table
from dlq.settings import load_settings
from ingest.frontdoor import FrontDoor
from tasks.names import REPLAY_TASK
from tasks.runtime import environment

pytestmark = pytest.mark.slow

TARGET = "arn:aws:sqs:us-east-1:123456789012:target"
GRACE_SECONDS = 1.0


class LostByRedis:
    """The enqueuer of an ingest whose tasks Redis then lost."""

    def enqueue_replay(self, key: Any, **_: Any) -> None:
        return None


def ticks_at_once(n: int) -> list[dict[str, int]]:
    """`n` beats' ticks that run together (one reconcile task each, on its own thread)."""
    from tasks.reconcile import reconcile

    reports: list[dict[str, int]] = []
    threads = [
        threading.Thread(target=lambda: reports.append(reconcile.apply().get())) for _ in range(n)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return reports


def test_two_beats_ticks_enqueue_each_pending_item_once(redis_client, moto_server, unique):
    table = f"ledger-{unique}"
    config = load_settings(_env_file=None)
    create_table(aws_client("dynamodb", config), table)
    ledger = Ledger(aws_client("dynamodb", config), table)
    door = FrontDoor(ledger=ledger, enqueuer=LostByRedis())
    keys = []
    for _ in range(12):
        result = door.handle(received_message(json.dumps(genesys_event()), TARGET))
        assert result.key is not None, result
        keys.append(result.key)
    for n, key in enumerate(keys):
        if n % 2:
            claimed = ledger.claim(key, lease_seconds=1)  # its worker died
            assert claimed is not None
        else:
            claimed = ledger.claim(key, lease_seconds=60)
            ledger.finish(
                claimed,
                Status.RETRY_SCHEDULED,
                outcome="retry_scheduled",
                error="503",
                next_attempt_at=time.time() - 10 * GRACE_SECONDS,
            )
    time.sleep(1.5)  # the leases lapse

    with environment(
        {
            "LEDGER_TABLE": table,
            "REPLAY_RECONCILE_GRACE_SECONDS": str(GRACE_SECONDS),
            "GENESYS_CLIENT_ID": "id",
            "GENESYS_CLIENT_SECRET": "secret",
            "REPLAY_METRICS_PORT": "0",
        }
    ):
        together = ticks_at_once(2)  # both beats tick in the same second
        later = ticks_at_once(1)  # the first beat's next tick finds them pending still

    queued = Counter(args[0] for name, args in queued_tasks(redis_client) if name == REPLAY_TASK)
    assert queued == Counter({key.event_id: 1 for key in keys})
    requeued = sum(r.get("retry_overdue", 0) + r.get("lease_lapsed", 0) for r in together)
    assert requeued == len(keys)
    assert later == [{"already_requeued": len(keys)}]
