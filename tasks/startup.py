"""A worker or beat that cannot work says so once, and ends.

As `celery -A tasks worker` starts (`celeryd_init`, before it connects to anything) and
as beat starts (`beat_init`), `dlq.startup.check_ready` looks at AWS credentials, the
ledger table (workers) and Redis. On a failure the process logs its one line at ERROR,
naming the fix (the line the CLI prints for the same cause), and exits: 2 when an
operator must change something, 1 for an outage. Exiting, not staying up unhealthy: a
fleet restarts the task with backoff and shows the line as the stop reason's log, and no
task is taken only to fail, retried every minute with a traceback.

In-process test workers (`celery.contrib.testing`) send no `celeryd_init`: not checked.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import beat_init, celeryd_init

from dlq.logs import configure_logging
from dlq.startup import check_ready
from tasks.config import redis_credentials, settings
from tasks.health import heartbeat_of

log = logging.getLogger("dlq-replay")


def require_ready(service: str, *, ledger: bool) -> None:
    """Withdraw `service`'s old heartbeat, then end the process if it cannot work."""
    config = settings()
    heartbeat_of(service).clear()
    unready = check_ready(config, ledger=ledger, redis_auth=redis_credentials())
    if unready is None:
        return
    if not logging.getLogger().handlers:
        configure_logging()
    log.error(unready.text, extra={"outcome": "unready"})
    raise SystemExit(unready.status)


@celeryd_init.connect
def _worker_ready(**_: Any) -> None:
    require_ready("worker", ledger=True)


@beat_init.connect
def _beat_ready(**_: Any) -> None:
    require_ready("beat", ledger=False)
