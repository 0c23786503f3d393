"""The worker process's settings: read once, on first use (never at import)."""

from __future__ import annotations

from functools import cache

from dlq.settings import Settings, load_settings


@cache
def settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
