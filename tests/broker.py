"""Reading what the producer left in Redis: Celery messages of the Redis transport."""

from __future__ import annotations

import base64
import json
import runpy

import pytest
import redis
from celery import Celery
from celery.app.defaults import DEFAULTS
from helpers import REPO

from tasks.names import REPLAY_QUEUE


def queued_tasks(client: redis.Redis, queue: str = REPLAY_QUEUE) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in a Celery queue on Redis."""
    tasks = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        tasks.append((message["headers"]["task"], args))
    return tasks


def drop_tasks(client: redis.Redis, event_ids: set[str], queue: str = REPLAY_QUEUE) -> int:
    """Take the replay messages of `event_ids` out of the queue, as a lost write would;
    how many were taken."""
    dropped = 0
    for raw in client.lrange(queue, 0, -1):
        args = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
        if args and args[0] in event_ids:
            dropped += int(client.lrem(queue, 1, raw.decode() if isinstance(raw, bytes) else raw))
    return dropped


def celery_app(env: dict[str, str]) -> Celery:
    """An app configured by the project's celeryconfig.py under `env`, as `celery -A tasks`
    configures a worker's, beat's or Flower's at start (the session's `tasks.application.app`
    keeps the broker it was first configured with)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        config = runpy.run_path(str(REPO / "celeryconfig.py"))
    app = Celery("test-producer", set_as_current=False)
    app.conf.update({key: value for key, value in config.items() if key in DEFAULTS})
    return app
