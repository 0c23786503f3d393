"""The settings of an outage's operator controls: the target breaker and target pauses.

A mixin of `dlq.settings.Settings` (which inherits it), kept apart so that the one
settings object stays short enough to read; the environment variable of each field is
its name in upper case, as everywhere.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings

_Seconds = Annotated[float, Field(gt=0)]


class OutageSettings(BaseSettings):
    """The fleet-wide breaker per target, and how a paused target's items wait."""

    #: Failures that say the target is unwell (5xx, timeouts, throttling, no connection;
    #: never a 4xx about one event) within REPLAY_BREAKER_WINDOW_SECONDS that open the
    #: target's breaker; 0 turns the breaker off.
    replay_breaker_failures: Annotated[int, Field(ge=0)] = 5
    replay_breaker_window_seconds: _Seconds = 60.0
    #: How long an open breaker holds its target's items before one probe may go.
    replay_breaker_cooldown_seconds: _Seconds = 30.0
    #: How often an item of a paused target looks again (a `resume` takes effect within
    #: it); a pause with `--for` that ends sooner wakes its items when it ends.
    replay_pause_recheck_seconds: _Seconds = 30.0
    #: How long a worker trusts the fleet's Redis copy of the pauses before it reads the
    #: ledger (the truth) again; `pause` and `resume` refresh the copy at once.
    replay_pause_cache_seconds: _Seconds = 10.0
