"""The target breakers in Redis, shared by every worker of the fleet.

One hash per target (`dlq:breaker:<digest of the ARN>`) holds its `Breaker`. A read that
changes nothing is one HGETALL (the attempts' gate, `dlq.replay.holds`, reuses one that
found it clean for a second); a change is made in a WATCH/MULTI transaction around the
pure decision (`dlq.holds.breaker`), retried when another worker changed the hash
meanwhile, so two workers never both take the half-open breaker's one probe. Every
change of state is logged on one line and told to the metrics (`target_hold`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.exceptions import WatchError
from redis.typing import EncodableT, FieldT

from dlq.fleet import digest, fleet_key
from dlq.holds.breaker import (
    Admission,
    Breaker,
    BreakerRule,
    BreakerState,
    admit,
    failed,
    released,
    succeeded,
)
from dlq.observe import NO_METRICS, MetricsObserver

log = logging.getLogger("dlq.holds")

T = TypeVar("T")

#: A held breaker's hash outlives an idle fleet by this long, then the target is closed.
HELD_TTL_SECONDS = 24 * 3600


def breaker_key(target_arn: str) -> str:
    return fleet_key("breaker", digest(target_arn))


@dataclass(frozen=True, slots=True)
class TargetBreaker:
    """A target's breaker as `status` shows it."""

    target_arn: str
    breaker: Breaker


class FleetBreakers:
    """Every target's breaker, in the fleet's Redis."""

    def __init__(
        self, client: redis.Redis, rule: BreakerRule, *, metrics: MetricsObserver = NO_METRICS
    ) -> None:
        self._redis = client
        self.rule = rule
        self._metrics = metrics

    def admit(self, target_arn: str, *, now: float, caller: str) -> Admission:
        """May `caller` send to the target now (`breaker.admit`)? One probe, fleet-wide."""
        if not self.rule.enabled:
            return Admission(True)
        return self._change(target_arn, lambda b: admit(self.rule, b, now=now, caller=caller))

    def failed(self, target_arn: str, *, now: float) -> None:
        """A send failed in a way that says the target is unwell."""
        if self.rule.enabled:
            self._change(target_arn, lambda b: (None, failed(self.rule, b, now=now)))

    def succeeded(self, target_arn: str) -> None:
        """The target answered a send."""
        if self.rule.enabled:
            self._change(target_arn, lambda b: (None, succeeded(b)))

    def released(self, target_arn: str, *, caller: str) -> None:
        """The probe's holder sent nothing: the next caller may probe."""
        if self.rule.enabled:
            self._change(target_arn, lambda b: (None, released(b, caller=caller)))

    def read(self, target_arn: str) -> Breaker:
        return decode(self._redis.hgetall(breaker_key(target_arn)))[1]

    def held(self) -> Iterator[TargetBreaker]:
        """Every target whose breaker is open or half-open (a SCAN: for `status`)."""
        for key in self._redis.scan_iter(match=fleet_key("breaker", "*"), count=500):
            target, breaker = decode(self._redis.hgetall(key))
            if breaker.holds and target:
                yield TargetBreaker(target, breaker)

    def _change(self, target_arn: str, step: Callable[[Breaker], tuple[T, Breaker]]) -> T:
        key = breaker_key(target_arn)
        _, before = decode(self._redis.hgetall(key))
        answer, after = step(before)
        if after == before:
            return answer  # the common case: one round trip, nothing written
        with self._redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)  # type: ignore[no-untyped-call]
                    _, before = decode(pipe.hgetall(key))
                    answer, after = step(before)
                    if after == before:
                        pipe.unwatch()
                        return answer
                    pipe.multi()
                    pipe.delete(key)
                    if after != Breaker():
                        pipe.hset(key, mapping=encode(target_arn, after))
                        ttl = HELD_TTL_SECONDS if after.holds else self.rule.window
                        pipe.expire(key, max(1, int(ttl) + 1))
                    pipe.execute()
                except WatchError:
                    continue
                break
        if after.state is not before.state:
            self._told(target_arn, before, after)
        return answer

    def _told(self, target_arn: str, before: Breaker, after: Breaker) -> None:
        if after.state is BreakerState.OPEN:
            why = (
                "its probe failed"
                if before.state is BreakerState.HALF_OPEN
                else f"{self.rule.failures} unwell failures within {self.rule.window:g} s"
            )
            said = (
                f"target breaker opened ({why}): its items wait, no attempt spent; one probe "
                f"in {self.rule.cooldown:g} s"
            )
        elif after.state is BreakerState.HALF_OPEN:
            said = "target breaker half-open: one probe goes, the other items keep waiting"
        else:
            said = "target breaker closed (the target answered): its waiting items drain"
        log.warning(said, extra={"target_arn": target_arn, "outcome": f"breaker_{after.state}"})
        self._metrics.target_hold(target_arn, f"breaker_{after.state}")


def encode(target_arn: str, breaker: Breaker) -> dict[FieldT, EncodableT]:
    return {
        "target": target_arn,
        "state": breaker.state.value,
        "since": repr(breaker.since),
        "failures": ",".join(repr(t) for t in breaker.failures),
        "probe": breaker.probe,
        "probe_until": repr(breaker.probe_until),
    }


def decode(raw: Mapping[Any, Any]) -> tuple[str, Breaker]:
    """(target ARN, breaker) of a hash; a missing or unreadable one is a closed breaker."""
    fields = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in raw.items()
    }
    try:
        breaker = Breaker(
            BreakerState(fields.get("state", "closed")),
            since=float(fields.get("since") or 0.0),
            failures=tuple(float(t) for t in (fields.get("failures") or "").split(",") if t),
            probe=fields.get("probe", ""),
            probe_until=float(fields.get("probe_until") or 0.0),
        )
    except ValueError:
        breaker = Breaker()
    return fields.get("target", ""), breaker
