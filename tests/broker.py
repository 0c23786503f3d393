"""Reading what the producer left in Redis: Celery messages of the Redis transport."""

from __future__ import annotations

import base64
import json

import redis

from tasks.names import REPLAY_QUEUE


def queued_tasks(client: redis.Redis, queue: str = REPLAY_QUEUE) -> list[tuple[str, list]]:
    """(task name, args) of every message waiting in a Celery queue on Redis."""
    tasks = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        tasks.append((message["headers"]["task"], args))
    return tasks
