"""The Celery application, configured from `celeryconfig` (which reads the settings).

The task modules are listed in `include`, so a worker imports them at start while a
producer (the ingest Lambda, the poller) stays light and sends tasks by name.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import setup_logging

from dlq.logs import configure_logging
from tasks import metrics as _metrics  # noqa: F401  (connects the /metrics signal handlers)
from tasks.config import settings

app = Celery(
    "dlq-replay", include=["tasks.replay", "tasks.track", "tasks.reconcile", "tasks.verify"]
)
app.config_from_object("celeryconfig")


@setup_logging.connect
def _json_logs(loglevel: Any = None, **_: Any) -> None:
    """Workers and beat log JSON lines, with the client secret scrubbed from every line."""
    # `celery worker --loglevel X` arrives as a number; a name is accepted too.
    level = logging.getLevelName(loglevel) if isinstance(loglevel, int) else loglevel or "INFO"
    configure_logging(level=level, secrets=[settings().genesys_client_secret.get_secret_value()])
