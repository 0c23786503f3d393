"""A redrive's `--rate`: a temporary pace on the redriven items' targets, for the workers.

Enqueueing at N a second paces nothing once the items wait in the broker: the workers take
them as fast as they come. So a redrive at a rate also installs that rate on the pace of
each target its items go to (`dlq.ratelimit.Pace.set_temporary`); every worker's pace gate
reads it beside REPLAY_TARGET_RATES and the lower wins, within a second (a worker reuses
its finding that a target without a rate had none for that long: the command waits it out
before its first enqueue). It paces every send to those
targets while it lasts, not only the redriven items', and lasts twice the time the items
take at that rate plus `MARGIN_SECONDS` (retries and waits stretch a drain), then expires
on its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from dlq.ledger import LedgerItem
from dlq.ratelimit.pace import Pace

#: Added to the temporary pace's lifetime: the workers may start late or retry.
MARGIN_SECONDS = 60.0
#: The longest a temporary pace lasts; a longer drain is paced by REPLAY_TARGET_RATES.
MAX_SECONDS = 24 * 3600.0


def destinations(
    item: LedgerItem, *, target_override: str | None, overrides: Mapping[str, str]
) -> set[str]:
    """Where the workers may send `item`: its target, or where an override routes it."""
    routed = target_override or item.target_override or overrides.get(item.target_arn)
    return {item.target_arn, *([routed] if routed else [])}


def lifetime(count: int, rate: float) -> float:
    """How long a temporary pace for `count` items at `rate` a second lasts (seconds)."""
    return min(2 * count / rate + MARGIN_SECONDS, MAX_SECONDS)


def install(
    pace: Pace,
    items: Iterable[LedgerItem],
    *,
    rate: float,
    target_override: str | None = None,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """Pace each target of `items` at `rate` a second for a while; answers each target's
    temporary pace's lifetime (seconds)."""
    if rate <= 0:
        raise ValueError("a redrive's rate is above 0")
    counts: Counter[str] = Counter()
    for item in items:
        for target in destinations(
            item, target_override=target_override, overrides=overrides or {}
        ):
            counts[target] += 1
    lasting = {target: lifetime(count, rate) for target, count in counts.items()}
    for target, seconds in lasting.items():
        pace.set_temporary(target, rate, seconds=seconds)
    return lasting
