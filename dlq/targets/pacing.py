"""The pace gate: what stands between a replay and its send, so a target is never flooded.

Every send to a target passes it, right before the call, whatever the target's kind:

- its pace (`dlq.ratelimit.Pace`, fleet-wide, no burst): the lowest of the rate
  REPLAY_TARGET_RATES gives it, the kind's own (an API destination's
  `InvocationRateLimitPerSecond`) and a redrive's temporary `--rate`;
- its sends in flight, when the kind has a cap (a Lambda function's reserved concurrency);
- a hold after it answered 429 with `Retry-After`: the whole fleet waits until then (the
  process that heard the 429 at once, the others within a second when the target has no
  rate: `dlq.ratelimit.pace.UNPACED_REUSE_SECONDS`).

A refusal is a `BudgetWait`: the item waits, without spending an attempt, and comes back
when its slot is due. The pace keys on the destination the send goes to (an override's,
when one routes the event elsewhere); a rate applies when its ARN or pattern matches the
destination or the item's own target ARN.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from dlq.errors import BudgetWait
from dlq.ratelimit.pace import Pace, Slots
from dlq.targets.errors import TargetThrottled

log = logging.getLogger(__name__)

#: How long a send waits when its target accepts no send at all (reserved concurrency 0,
#: an operator's throttle): it asks again then, bounded by the item's age budget.
SHUT_WAIT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class OwnLimits:
    """What a target says of itself: its own rate (sends a second), its cap in flight."""

    rate: float | None = None
    concurrency: int | None = None


NO_LIMITS = OwnLimits()


def lowest(*rates: float | None) -> float | None:
    """The lowest of the rates that are set (None: none is)."""
    present = [rate for rate in rates if rate is not None and rate > 0]
    return min(present) if present else None


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")))


class TargetRates:
    """REPLAY_TARGET_RATES: ARNs or ARN patterns (`*` matches anything, `:` included) to
    sends a second. Each matching target has a pace of its own at that rate (a pattern
    is a shorthand for listing them); when several entries match, the lowest rate wins."""

    def __init__(self, rates: Mapping[str, float]) -> None:
        self._rates = dict(rates)

    def __bool__(self) -> bool:
        return bool(self._rates)

    def rate_for(self, *arns: str) -> float | None:
        """The lowest rate of the entries matching any of `arns`; None when none does."""
        return lowest(
            *(
                rate
                for wanted, rate in self._rates.items()
                if any(_pattern(wanted).fullmatch(arn) for arn in arns if arn)
            )
        )


class PaceGate:
    """Takes a send's slot of its target's pace (and in-flight cap), or raises `BudgetWait`."""

    def __init__(
        self,
        pace: Pace | None,
        slots: Slots | None,
        rates: TargetRates,
        *,
        lease_seconds: float,
    ) -> None:
        """`lease_seconds` bounds a send in flight: a slot whose holder died frees then."""
        self._pace = pace
        self._slots = slots
        self._rates = rates
        self._lease = lease_seconds

    def rate(
        self, destination: str, *, target_arn: str = "", own: float | None = None
    ) -> float | None:
        """The rate a send to `destination` is paced at before any temporary one."""
        return lowest(self._rates.rate_for(destination, target_arn), own)

    @contextmanager
    def sending(
        self, destination: str, *, target_arn: str = "", limits: OwnLimits = NO_LIMITS
    ) -> Iterator[None]:
        """The send inside it goes when its slot is taken; a 429 with `Retry-After` from it
        holds the whole fleet's sends to `destination` until then."""
        token = self._take_flight(destination, limits.concurrency)
        try:
            self.take(destination, target_arn=target_arn, own=limits.rate)
            try:
                yield
            except TargetThrottled as throttled:
                self._held(destination, throttled)
                raise
        finally:
            if token is not None and self._slots is not None:
                self._slots.give_back(destination, token)

    def take(
        self,
        destination: str,
        *,
        target_arn: str = "",
        own: float | None = None,
        patience: float = 0.0,
    ) -> None:
        """A slot of `destination`'s pace now, or `BudgetWait` until one is due.

        `patience`: a slot due within that many seconds is waited for here (the second
        call of one send, after a refreshed token), not handed back to the queue.
        """
        if self._pace is None:
            return
        rate = self.rate(destination, target_arn=target_arn, own=own)
        grant = self._pace.acquire(destination, rate=rate)
        deadline = time.monotonic() + patience
        while not grant.granted and time.monotonic() + grant.wait <= deadline:
            time.sleep(grant.wait)
            grant = self._pace.acquire(destination, rate=rate)
        if grant.granted:
            return
        # Every refused caller hears the same due time; spread them over one interval so
        # they do not all come back at once.
        spread = random.uniform(0, 1 / grant.rate) if grant.rate else 0.0
        why = (
            f"paced at {grant.rate:g} sends a second across the fleet"
            if grant.rate
            else "held after it answered 429 with Retry-After"
        )
        raise BudgetWait(
            f"{destination} is {why}; waiting for its slot, no attempt spent",
            retry_after=grant.wait + spread,
        )

    def _take_flight(self, destination: str, limit: int | None) -> str | None:
        if limit is None or self._slots is None:
            return None
        if limit <= 0:
            raise BudgetWait(
                f"{destination} accepts no invocation now (reserved concurrency 0); waiting "
                "until it does, no attempt spent",
                retry_after=SHUT_WAIT_SECONDS,
            )
        token, wait = self._slots.take(destination, limit=limit, lease_seconds=self._lease)
        if token is None:
            raise BudgetWait(
                f"{destination} has {limit} sends in flight across the fleet (its reserved "
                "concurrency); waiting for one to end, no attempt spent",
                retry_after=min(wait, 1.0) + random.uniform(0, 0.2),
            )
        return token

    def _held(self, destination: str, throttled: TargetThrottled) -> None:
        if throttled.code != "HTTP429" or not throttled.retry_after or self._pace is None:
            return
        held = self._pace.hold(destination, throttled.retry_after)
        log.warning(
            f"{destination} answered 429 with Retry-After: the fleet holds its sends for "
            f"{held:.1f} s",
            extra={"target_arn": destination, "retry_after": throttled.retry_after},
        )
