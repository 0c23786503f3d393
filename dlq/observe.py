"""The observer seam: what the use cases tell metrics, without knowing who listens.

This module imports nothing of the project, so the Genesys client, the rate limiter and
the use cases can all report through it without a path back into them. Every hook is
called where the thing happens (an ingest, a recorded replay outcome, a tracking PATCH,
a Genesys call, a budget decision), never by scanning the ledger, and receives small
values: strings, numbers, or a frozen `Outcome`. An observer must not raise into the
caller: `Fanout` drops and logs what one does, so a metrics outage never costs a replay.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """A replay outcome as recorded: what metrics may know of it, and nothing more."""

    #: `replayed`, `failed` or `exhausted`.
    status: str
    target_arn: str
    #: The replay's own failure code (`HTTP503`, `NotARuleTarget`...), for failures.
    failure_code: str | None = None
    #: What EventBridge gave up on (the DLQ's ERROR_CODE).
    dlq_error_code: str | None = None
    received_at: datetime | None = None
    recorded_at: datetime | None = None

    @property
    def latency_seconds(self) -> float | None:
        """From the DLQ message's ingest to this outcome, when both times are known."""
        if self.received_at is None or self.recorded_at is None:
            return None
        return max(0.0, (self.recorded_at - self.received_at).total_seconds())


class MetricsObserver(Protocol):
    """What the domain reports. Arguments are raw; implementations bound the labels."""

    def ingested(self, outcome: str, *, target_arn: str | None, dlq_error_code: str | None) -> None:
        """A DLQ message was handled: `accepted`, `requeued`, `duplicate` or `rejected`."""

    def finished(self, outcome: Outcome) -> None:
        """A replay outcome was recorded in the ledger."""

    def tracked(self, *, lag_seconds: float) -> None:
        """A conversation's summary was PATCHed, `lag_seconds` after its first news."""

    def genesys_call(self, endpoint: str, status: str) -> None:
        """One Genesys request: `endpoint` is the templated `METHOD /path/{id}` (no ids),
        `status` the HTTP status code, or `timeout` / `connection_error`."""

    def budget(self, priority: str, *, granted: bool, pace_per_minute: float) -> None:
        """The shared Genesys budget answered one `acquire` (granted, or asked to wait)."""

    def dlq_message_age(self, seconds: float) -> None:
        """A DLQ message was received `seconds` after SQS accepted it (`SentTimestamp`)."""

    def target_hold(self, target_arn: str, change: str) -> None:
        """A target's hold changed: `breaker_open`, `breaker_half_open`, `breaker_closed`
        (`dlq.holds.fleet`), `paused`, `resumed` (`dlq.holds.pauses`)."""


class QuietObserver:
    """Every hook a no-op: an observer inherits it and overrides the hooks it counts."""

    def ingested(self, outcome: str, *, target_arn: str | None, dlq_error_code: str | None) -> None:
        return None

    def finished(self, outcome: Outcome) -> None:
        return None

    def tracked(self, *, lag_seconds: float) -> None:
        return None

    def genesys_call(self, endpoint: str, status: str) -> None:
        return None

    def budget(self, priority: str, *, granted: bool, pace_per_minute: float) -> None:
        return None

    def dlq_message_age(self, seconds: float) -> None:
        return None

    def target_hold(self, target_arn: str, change: str) -> None:
        return None


class NoMetrics(QuietObserver):
    """The default observer: counts nothing (and a fanout leaves it out)."""


NO_METRICS: MetricsObserver = NoMetrics()


class Fanout:
    """Tells several observers; one that raises is logged and skipped, never propagated."""

    def __init__(self, observers: Iterable[MetricsObserver]) -> None:
        self.observers = tuple(observers)

    def _each(self, method: str, *args: object, **kwargs: object) -> None:
        for observer in self.observers:
            try:
                getattr(observer, method)(*args, **kwargs)
            except Exception:
                log.warning(f"a metrics observer failed in {method}; the count is lost")

    def ingested(self, outcome: str, *, target_arn: str | None, dlq_error_code: str | None) -> None:
        self._each("ingested", outcome, target_arn=target_arn, dlq_error_code=dlq_error_code)

    def finished(self, outcome: Outcome) -> None:
        self._each("finished", outcome)

    def tracked(self, *, lag_seconds: float) -> None:
        self._each("tracked", lag_seconds=lag_seconds)

    def genesys_call(self, endpoint: str, status: str) -> None:
        self._each("genesys_call", endpoint, status)

    def budget(self, priority: str, *, granted: bool, pace_per_minute: float) -> None:
        self._each("budget", priority, granted=granted, pace_per_minute=pace_per_minute)

    def dlq_message_age(self, seconds: float) -> None:
        self._each("dlq_message_age", seconds)

    def target_hold(self, target_arn: str, change: str) -> None:
        self._each("target_hold", target_arn, change)


def fanout(*observers: MetricsObserver | None) -> MetricsObserver:
    """One observer telling all of `observers` (None and no-ops left out)."""
    kept = [o for o in observers if o is not None and type(o) is not NoMetrics]
    return Fanout(kept) if kept else NO_METRICS
