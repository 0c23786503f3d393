"""The paces of targets (REPLAY_TARGET_RATES): a part of `Settings`, kept in a module of its
own so the settings module stays short.

The variable is a JSON object, `{"<ARN or pattern>": <sends a second>}`, or a comma list
of `<ARN or pattern>=<sends a second>`; `*` in an ARN matches anything (`dlq.targets.pacing`
says how entries combine).
"""

from __future__ import annotations

import json
import math
from typing import Annotated

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode


def parse_rates(value: object) -> dict[str, float]:
    """ARN (or pattern) to sends a second, from a JSON object or `ARN=rate,ARN=rate`."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ValueError(f"not a JSON object: {exc}") from None
        else:
            pairs = {}
            for part in filter(None, (p.strip() for p in text.split(","))):
                arn, equals, rate = part.rpartition("=")
                if not equals or not arn.strip():
                    raise ValueError(f"{part!r} is not ARN=rate")
                pairs[arn.strip()] = rate.strip()
            value = pairs
    if not isinstance(value, dict):
        raise ValueError('must be a JSON object {"ARN": rate} or ARN=rate,ARN=rate')
    rates: dict[str, float] = {}
    for arn, rate in value.items():
        try:
            number = float(rate)
        except (TypeError, ValueError):
            raise ValueError(f"the rate of {arn!r} is not a number: {rate!r}") from None
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"the rate of {arn!r} must be above 0 (sends a second): {rate!r}")
        rates[str(arn).strip()] = number
    return rates


#: pydantic-settings would read the variable as JSON only; `NoDecode` hands it over as is.
TargetRateMap = Annotated[dict[str, float], NoDecode, BeforeValidator(parse_rates)]


class PaceSettings(BaseSettings):
    """REPLAY_TARGET_RATES: each target's pace, fleet-wide, for every kind of target."""

    #: ARN or `*` pattern -> sends a second; a target matched by none has no pace of its
    #: own (an API destination keeps its InvocationRateLimitPerSecond).
    replay_target_rates: TargetRateMap = Field(default_factory=dict)
