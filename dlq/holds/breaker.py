"""The circuit breaker of one target, as pure decisions: a state, fed failures and time.

    closed --N unwell failures within the window--> open --cool-down over--> half_open
    half_open --the probe's success--> closed        half_open --its failure--> open

While it is open, the target's items wait (no attempt spent); once the cool-down is
over, exactly one caller is granted the probe (`half_open`, with a lease so that a probe
that never reports does not hold the target forever). Nothing here reads a clock or a
store: `dlq.holds.fleet` keeps the state in Redis and applies these decisions atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerRule:
    """REPLAY_BREAKER_FAILURES within REPLAY_BREAKER_WINDOW_SECONDS open it for
    REPLAY_BREAKER_COOLDOWN_SECONDS; a probe holds the half-open breaker at most
    `probe_seconds` (the longest attempt) before another caller may probe."""

    failures: int = 5
    window: float = 60.0
    cooldown: float = 30.0
    probe_seconds: float = 150.0

    @property
    def enabled(self) -> bool:
        return self.failures > 0

    @property
    def recheck(self) -> float:
        """How soon an item held behind another caller's probe looks again: a probe takes
        a send's time, and its success should release the waiting items promptly."""
        return min(self.cooldown, max(1.0, self.cooldown / 10))


@dataclass(frozen=True, slots=True)
class Breaker:
    """One target's breaker at a moment. `since`: when it entered `state`; `failures`:
    the times of the latest unwell failures (closed); `probe`: who holds the probe and
    until when (half-open)."""

    state: BreakerState = BreakerState.CLOSED
    since: float = 0.0
    failures: tuple[float, ...] = ()
    probe: str = ""
    probe_until: float = 0.0

    @property
    def holds(self) -> bool:
        return self.state is not BreakerState.CLOSED


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether a caller may send now; if not, how long before it looks again."""

    allowed: bool
    #: The caller holds the half-open breaker's one probe.
    probe: bool = False
    retry_after: float = 0.0


def admit(
    rule: BreakerRule, breaker: Breaker, *, now: float, caller: str
) -> tuple[Admission, Breaker]:
    """May `caller` send now? The answer and the breaker after it (a probe granted)."""
    if not rule.enabled or breaker.state is BreakerState.CLOSED:
        return Admission(True), breaker
    if breaker.state is BreakerState.OPEN:
        reopens = breaker.since + rule.cooldown
        if now < reopens:
            return Admission(False, retry_after=reopens - now), breaker
    elif breaker.probe_until > now and breaker.probe != caller:
        return Admission(False, retry_after=min(rule.recheck, breaker.probe_until - now)), breaker
    probing = Breaker(
        BreakerState.HALF_OPEN,
        since=breaker.since if breaker.state is BreakerState.HALF_OPEN else now,
        probe=caller,
        probe_until=now + rule.probe_seconds,
    )
    return Admission(True, probe=True), probing


def failed(rule: BreakerRule, breaker: Breaker, *, now: float) -> Breaker:
    """An unwell failure: counted while closed (N within the window open it); a failed
    probe opens it again for a new cool-down."""
    if not rule.enabled:
        return breaker
    if breaker.state is BreakerState.HALF_OPEN:
        return Breaker(BreakerState.OPEN, since=now)
    if breaker.state is BreakerState.OPEN:
        return breaker  # a send that began before it opened
    recent = tuple(t for t in breaker.failures if t > now - rule.window)[-(rule.failures - 1) :]
    if len(recent) + 1 >= rule.failures:
        return Breaker(BreakerState.OPEN, since=now)
    return replace(breaker, failures=(*recent, now) if rule.failures > 1 else ())


def succeeded(breaker: Breaker) -> Breaker:
    """The target answered: a run of failures is broken, and a held breaker closes."""
    if breaker.state is BreakerState.CLOSED and not breaker.failures:
        return breaker
    return Breaker()


def released(breaker: Breaker, *, caller: str) -> Breaker:
    """The probe's holder sent nothing (its item waited for Genesys, say): the next caller
    may probe at once."""
    if breaker.state is BreakerState.HALF_OPEN and breaker.probe == caller:
        return replace(breaker, probe="", probe_until=0.0)
    return breaker
