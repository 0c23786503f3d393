"""The targets held now, as `status` and `status --watch` show them: paused targets and
open breakers, since when, and how many of their items wait."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from dlq.aws import aws_client
from dlq.clock import iso
from dlq.codes import TARGET_BREAKER_OPEN, TARGET_PAUSED
from dlq.holds.breaker import BreakerRule
from dlq.holds.fleet import FleetBreakers
from dlq.holds.pauses import Pauses
from dlq.ledger.pauses import LedgerPauses, PauseBook
from dlq.settings import Settings


@dataclass(frozen=True, slots=True)
class TargetHold:
    """One held target: `hold` is `paused`, `breaker open` or `breaker half-open`."""

    target_arn: str
    hold: str
    since: float
    #: The pause's end (None: until resumed), or when the breaker's probe may go.
    until: float | None
    #: Who paused it and why; for a breaker, what it waits for.
    detail: str
    #: Items of the target waiting under the hold's code (None: not counted).
    waiting: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "target_arn": self.target_arn,
            "hold": self.hold,
            "since": iso(self.since),
            "until": iso(self.until) if self.until is not None else None,
            "detail": self.detail,
            "items_waiting": self.waiting,
        }


def targets_held(
    breakers: FleetBreakers,
    pauses: PauseBook,
    *,
    now: float,
    waiting: Mapping[str, Mapping[str, int]] | None = None,
) -> list[TargetHold]:
    """Every held target, paused ones first; `waiting` is target -> code -> items (the
    status report's count of retry_scheduled items by hold code)."""

    def count(target: str, code: str) -> int | None:
        return None if waiting is None else int(waiting.get(target, {}).get(code, 0))

    held = [
        TargetHold(
            p.target_arn,
            "paused",
            p.since,
            p.until,
            f"by {p.operator}: {p.reason}",
            count(p.target_arn, TARGET_PAUSED),
        )
        for p in pauses.in_effect(now)
    ]
    cooldown = breakers.rule.cooldown
    for found in sorted(breakers.held(), key=lambda t: t.target_arn):
        breaker = found.breaker
        half = breaker.state.value == "half_open"
        held.append(
            TargetHold(
                found.target_arn,
                "breaker half-open" if half else "breaker open",
                breaker.since,
                None if half else breaker.since + cooldown,
                "one probe in flight" if half else "one probe after the cool-down",
                count(found.target_arn, TARGET_BREAKER_OPEN),
            )
        )
    return held


def held_now(settings: Settings, client: redis.Redis) -> list[TargetHold]:
    """The targets held now, from the fleet's Redis alone (the pauses' copy, rebuilt from
    the ledger when missing, and the breakers): what `status --watch` refreshes."""
    store = LedgerPauses(aws_client("dynamodb", settings), settings.ledger_table)
    pauses = Pauses(store, client, cache_seconds=settings.replay_pause_cache_seconds)
    return targets_held(FleetBreakers(client, rule_of(settings)), pauses.book(), now=time.time())


def rule_of(settings: Settings) -> BreakerRule:
    """The breaker rule the settings describe (REPLAY_BREAKER_*)."""
    return BreakerRule(
        failures=settings.replay_breaker_failures,
        window=settings.replay_breaker_window_seconds,
        cooldown=settings.replay_breaker_cooldown_seconds,
        probe_seconds=settings.attempt_bound_seconds,
    )
