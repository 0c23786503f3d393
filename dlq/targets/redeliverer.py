"""The Redeliverer: routes an event to the target that missed it and sends it there once.

Routing (`plan`) checks the message's TARGET_ARN against its rule's own targets, and the
event against the rule's pattern, unless the operator routed it explicitly
(REPLAY_TARGET_OVERRIDES, or an item's redrive override: the escape hatch, logged) or
chose to trust the attribute (REPLAY_TRUST_TARGET_ARN). The payload is then what
EventBridge would have sent: the rule target's input transformation of the original event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
import requests
from botocore.exceptions import BotoCoreError, ClientError

from dlq.aws import aws_client, target_client
from dlq.errors import ConfigurationError
from dlq.ratelimit.pace import Pace, Slots
from dlq.settings import Settings
from dlq.targets.arn import Arn
from dlq.targets.connections import Connections
from dlq.targets.delivery import Delivery, Replay
from dlq.targets.errors import UnsupportedTarget, from_botocore_error, from_client_error
from dlq.targets.facts import TargetFacts
from dlq.targets.http import new_session
from dlq.targets.kind import TargetKind
from dlq.targets.options import SendOptions
from dlq.targets.pacing import NO_LIMITS, PaceGate, TargetRates
from dlq.targets.registry import kind_of
from dlq.targets.rules import RuleBook, RuleTarget
from dlq.targets.transform import Rendered, render

log = logging.getLogger(__name__)

ClientFactory = Callable[[str, str], Any]


@dataclass(frozen=True, slots=True)
class Plan:
    """Where an event goes and why: `route` is `rule`, `override` or `trusted`."""

    destination: str
    kind: TargetKind
    target: RuleTarget | None
    route: str


class Redeliverer:
    """Redelivers events to their targets; one per worker process, shared by its threads.

    `client_factory(service, region)` builds a boto3 client (default: one try per send,
    `dlq.aws.target_client`, for that region); clients are built on first use and kept,
    one per (service, region), since a target's region comes from its ARN. It is also the
    `SendContext` each kind's `send` is given. `cache` is the fleet's Redis: the rules'
    target lists and the targets' paces live there (`dlq.targets.pacing`); without it,
    only explicit or trusted routing works, unpaced.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        cache: redis.Redis | None = None,
        client_factory: ClientFactory | None = None,
        http: requests.Session | None = None,
    ) -> None:
        self._settings = settings
        self._factory = client_factory or self._default_client
        self._http = http or new_session()
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._options = SendOptions.from_settings(settings)
        self._facts = TargetFacts()
        self._cache = cache
        self._rules = (
            RuleBook(self._reader("events"), cache, ttl_seconds=settings.replay_rule_cache_seconds)
            if cache is not None
            else None
        )
        self._connections = Connections(
            lambda service, region: self._reader(service)(region),
            self._http,
            facts=self._facts,
            timeout=settings.send_timeouts,
        )
        self._paces = PaceGate(
            Pace(cache) if cache is not None else None,
            Slots(cache) if cache is not None else None,
            TargetRates(settings.replay_target_rates),
            lease_seconds=sum(settings.send_timeouts) + 5.0,
        )

    @property
    def rules(self) -> RuleBook | None:
        return self._rules

    @property
    def connections(self) -> Connections:
        return self._connections

    def take_slot(
        self, destination: str, *, target_arn: str = "", rate: float | None, patience: float = 0.0
    ) -> None:
        """A slot of `destination`'s pace (own `rate` included), or `BudgetWait`."""
        self._paces.take(destination, target_arn=target_arn, own=rate, patience=patience)

    @property
    def options(self) -> SendOptions:
        return self._options

    @property
    def http(self) -> requests.Session:
        return self._http

    @property
    def facts(self) -> TargetFacts:
        return self._facts

    def plan(self, target_arn: str, *, rule_arn: str = "", override: str | None = None) -> Plan:
        """Where an event for `target_arn` (of rule `rule_arn`) goes, and why.

        An explicit route wins (`override`, then REPLAY_TARGET_OVERRIDES: one hop, no
        chains); then, with REPLAY_TRUST_TARGET_ARN, the ARN as the message says; else
        the rule's own target of that ARN, read with ListTargetsByRule (an ARN listed in
        REPLAY_HTTP_TARGETS is then sent to its URL). Raises `UnsupportedTarget`,
        `RuleTargetError` or `ConfigurationError` with what to do.
        """
        settings = self._settings
        http_targets = settings.replay_http_targets.keys()
        explicit = override or settings.replay_target_overrides.get(target_arn)
        if explicit:
            log.warning(
                "routing explicitly (the escape hatch), without the rule's check or input "
                "transformation",
                extra={"target_arn": target_arn, "delivered_to": explicit, "rule_arn": rule_arn},
            )
            try:
                return Plan(
                    explicit, kind_of(explicit, http_targets=http_targets), None, "override"
                )
            except UnsupportedTarget as error:
                raise UnsupportedTarget(
                    f"the override routes {target_arn!r} elsewhere, but {error}",
                    target_arn=explicit,
                    code=error.code,
                ) from None
        kind = kind_of(target_arn, http_targets=http_targets)
        if settings.replay_trust_target_arn:
            return Plan(target_arn, kind, None, "trusted")
        if self._rules is None:
            raise ConfigurationError(
                "checking a target against its rule needs the fleet's Redis (REDIS_URL); "
                "or set REPLAY_TRUST_TARGET_ARN=true on the replay workers"
            )
        return Plan(target_arn, kind, self._rules.target(rule_arn, target_arn), "rule")

    def redeliver(
        self,
        *,
        target_arn: str,
        event_id: str,
        body: str,
        conversation_id: str | None = None,
        rule_arn: str = "",
        override: str | None = None,
    ) -> Delivery:
        """Send what EventBridge would have sent for `body` (the DLQ message body) to the
        target that missed it: one try.

        Raises a `TargetError`: `RetryLater` subclasses when another attempt may pass,
        `GiveUp` subclasses when none will; `Rejected` when the rule's event pattern does
        not match the event (routed by the rule only); `ConfigurationError` when an
        operator must act (credentials, a permission).
        """
        plan = self.plan(target_arn, rule_arn=rule_arn, override=override)
        if plan.route == "rule" and self._rules is not None:
            # What the rule would have delivered at all: an explicit route is the
            # operator's word instead, and a trusted one asks EventBridge nothing.
            self._rules.check_pattern(rule_arn, target_arn, body)
        if plan.target is not None:
            rendered = render(plan.target.input, body, rule_arn=rule_arn)
        else:
            rendered = Rendered(body, transformed=False)
        replay = Replay(
            target_arn,
            plan.destination,
            event_id,
            body,
            conversation_id,
            rule_arn=rule_arn,
            payload=rendered.payload if rendered.transformed else None,
            target=plan.target,
        )
        try:
            limits = plan.kind.limits(self, plan.destination) if plan.kind.limits else NO_LIMITS
            if plan.kind.prepare is not None:
                plan.kind.prepare(self, plan.destination)
            # The pace gates the send itself: nothing of the event's is built or read after it.
            with self._paces.sending(plan.destination, target_arn=target_arn, limits=limits):
                detail = plan.kind.send(self, replay)
        except ClientError as error:
            raise from_client_error(plan.destination, error) from error
        except BotoCoreError as error:
            raise from_botocore_error(plan.destination, error) from error
        return Delivery(
            target_arn=target_arn,
            delivered_to=plan.destination,
            kind=plan.kind.name,
            detail=detail,
            transformed=rendered.transformed,
            digest=rendered.digest,
            route=plan.route,
        )

    def forget(self, target_arn: str, *, rule_arn: str = "") -> None:
        """Drop what this process and the fleet cached about a target and its rule, so the
        next send reads them again (after an operator's fix and redrive)."""
        if self._rules is not None and rule_arn:
            self._rules.forget(rule_arn)
        self._connections.forget_target(target_arn)
        self._facts.forget(target_arn)

    def client(self, service: str, target_arn: str) -> Any:
        """The boto3 client of `service` in `target_arn`'s region, built once."""
        arn = Arn.parse(target_arn)
        assert arn is not None  # route() accepted it
        key = (service, arn.region)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._factory(*key)
        return client

    def _reader(self, service: str) -> Callable[[str], Any]:
        """Clients for reads of our own (rules, destinations, secrets): standard retries."""

        def build(region: str) -> Any:
            key = (f"read:{service}", region)
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    settings = self._settings.model_copy(update={"aws_region": region})
                    client = self._clients[key] = aws_client(service, settings)
            return client

        return build

    def _default_client(self, service: str, region: str) -> Any:
        settings = self._settings
        if region != settings.aws_region:
            settings = settings.model_copy(update={"aws_region": region})
        return target_client(service, settings)
