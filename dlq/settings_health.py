"""The settings of the processes' health checks: where each proves its work, how often.

A mixin of `dlq.settings.Settings` (which inherits it), kept apart so that the one
settings object stays short enough to read; the environment variable of each field is
its name in upper case, as everywhere.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings


def _default_health_dir() -> Path:
    return Path(tempfile.gettempdir()) / "dlq-replay-health"


class HealthSettings(BaseSettings):
    """REPLAY_HEALTH_DIR and REPLAY_HEALTH_INTERVAL_SECONDS (`dlq.health`)."""

    #: Where a worker, beat and the poller touch their heartbeat files, and where
    #: `dlq-replay health` reads them: a directory of the container's own (never shared
    #: by two containers: each would vouch for the other).
    replay_health_dir: Path = Field(default_factory=_default_health_dir)
    #: How often a worker's consumer and beat's scheduler prove their work; the poller
    #: proves it after every receive (a long poll: POLLER_WAIT_SECONDS at most).
    replay_health_interval_seconds: Annotated[float, Field(gt=0)] = 10.0
