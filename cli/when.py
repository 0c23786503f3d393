"""Times an operator types: `--since`, `--until`, `--older-than`, read one way by every command.

Three forms, all UTC unless they say otherwise:

- a duration back from now: `90s`, `30m`, `1h`, `2d` (a decimal too: `1.5h`);
- a date: `2026-12-01`, its midnight UTC;
- an ISO 8601 time: `2026-12-01T10:00:00Z`, `2026-12-01T10:00`, `2026-12-01T11:00+01:00`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import click

from dlq.clock import SYSTEM_CLOCK, Clock

#: What a bad value's error names: every form `parse_when` takes.
FORMS = (
    "a duration back from now (30m, 1h, 2d), a date (2026-12-01, midnight UTC) or an "
    "ISO 8601 time (2026-12-01T10:00:00Z; UTC unless it gives an offset)"
)

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: A date or a date and time; `fromisoformat` alone would also take `20261201` and week dates.
_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}.*)?$")


def parse_when(text: str, *, now: float) -> float:
    """`text` as epoch seconds: a duration back from `now`, a date or an ISO 8601 time.

    Raises `ValueError` naming the accepted forms when `text` is none of them.
    """
    value = text.strip()
    duration = _DURATION.match(value)
    if duration:
        return now - float(duration.group(1)) * _SECONDS[duration.group(2).lower()]
    if _MOMENT.match(value):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    raise ValueError(f"{text!r} is not a time: use {FORMS}")


class When(click.ParamType[float, Any]):
    """The click type of a time option: its value is epoch seconds (`parse_when`)."""

    name = "when"

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_when(str(value), now=self._clock.now())
        except ValueError as error:
            self.fail(str(error), param, ctx)


WHEN = When()

#: The help text's account of the forms, for an option's help to end with.
WHEN_HELP = (
    "WHEN: a duration back (30m, 1h, 2d), a date (2026-12-01) or an ISO time "
    "(2026-12-01T10:00:00Z); UTC unless it gives an offset."
)


def age(seconds: float) -> str:
    """How long ago, in the largest unit that keeps it readable: `40 s`, `12 min`, `3 h`, `2 d`."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600:.0f} h"
    return f"{seconds // 86400:.0f} d"
