"""The Celery application, configured from `celeryconfig` (which reads the settings).

The task modules are listed in `include`, so a worker imports them at start while a
producer (the ingest Lambda, the poller) stays light and sends tasks by name. Flower, which
every start path runs with this app, refuses to serve without authentication
(`tasks.flowerauth`).
"""

from __future__ import annotations

import logging
import os
from functools import cached_property
from typing import Any

from celery import Celery
from celery.signals import import_modules, setup_logging

from dlq.logs import configure_logging
from tasks import metrics as _metrics  # noqa: F401  (connects the /metrics signal handlers)
from tasks import startup as _startup  # noqa: F401  (connects the checks at start)
from tasks.config import settings
from tasks.flowerauth import require_authentication, running_flower
from tasks.health import ConsumerHeartbeat


class _App(Celery):  # type: ignore[misc]
    """The Celery app whose workers print the broker URL as configured (`tasks.banner`)."""

    @cached_property
    def Worker(self) -> Any:
        return self.subclass_with_self("tasks.banner:Worker")


app = _App("dlq-replay", include=["tasks.replay", "tasks.track", "tasks.reconcile", "tasks.verify"])
app.config_from_object("celeryconfig")
# Proof of work for `dlq-replay health` (tasks.health): a worker's consumer and beat's
# scheduler touch their heartbeat files. fleet.yaml's beat names a subclass of its own.
app.steps["consumer"].add(ConsumerHeartbeat)
app.conf.beat_scheduler = "tasks.health:HeartbeatScheduler"


@setup_logging.connect
def _json_logs(loglevel: Any = None, **_: Any) -> None:
    """Workers and beat log JSON lines, with the client secret scrubbed from every line."""
    # `celery worker --loglevel X` arrives as a number; a name is accepted too.
    level = logging.getLevelName(loglevel) if isinstance(loglevel, int) else loglevel or "INFO"
    configure_logging(level=level, secrets=[settings().genesys_client_secret.get_secret_value()])


@import_modules.connect
def _flower_requires_auth(sender: Any = None, **_: Any) -> None:
    """Flower sends this once its options are final, before it listens: stop it there
    unless it has authentication (`tasks.flowerauth` says why here and not elsewhere)."""
    if sender is app and running_flower():
        from tornado.options import options

        require_authentication(options, os.environ)
