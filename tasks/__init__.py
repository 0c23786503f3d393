"""Celery tasks: thin adapters over the `dlq` domain (`celery -A tasks worker`)."""

from tasks.application import app

__all__ = ["app"]
