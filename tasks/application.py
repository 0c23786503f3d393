"""The Celery application, configured from `celeryconfig` (which reads the settings)."""

from __future__ import annotations

from celery import Celery

REPLAY_TASK = "dlq.replay"
TRACK_TASK = "dlq.track"
RECONCILE_TASK = "dlq.reconcile"

app = Celery("dlq-replay")
app.config_from_object("celeryconfig")
