"""Rule-aware routing: a DLQ message's TARGET_ARN is a claim, checked against its rule.

Anyone allowed `sqs:SendMessage` on the DLQ can write a message naming any ARN, so a
replay goes only to a target that the message's own rule lists (`events:ListTargetsByRule`),
and takes from that listing what EventBridge would have used: the input transformation
and the target's parameters; and only an event that the rule's pattern matches
(`events:DescribeRule`, `pattern`). The listing and the pattern are read once per rule per
`ttl_seconds` for the whole fleet (cached in Redis), not once per event.

A rule may list one ARN under several target ids (one Lambda twice, with two inputs). The
message names the ARN only, so when those targets differ the replay cannot know which one
missed the event and sends nothing (`AmbiguousTarget`); when they are alike, the ARN says
all there is to know.

EventBridge API reference, ListTargetsByRule:
https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListTargetsByRule.html
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any

import redis
from botocore.exceptions import ClientError

from dlq.boundary import PATTERN_MISMATCH
from dlq.errors import ConfigurationError, Rejected
from dlq.rulearn import RuleRef as RuleRef  # re-exported: where routing reads rule ARNs
from dlq.targets.errors import TargetFatal
from dlq.targets.pattern import EventPattern, PatternUnsupported
from dlq.targets.rulecache import FleetCache, Keys
from dlq.targets.transform import TargetInput

log = logging.getLogger(__name__)

CACHE_PREFIX = "dlq:rule:"
FILL_PREFIX = "dlq:rule-fill:"
#: Per rule ARN: how many times the fleet called ListTargetsByRule (operators, tests).
#: The hash expires a day after the latest call (`rulecache.LOOKUPS_TTL_SECONDS`).
LOOKUPS_KEY = "dlq:stats:rule-lookups"
#: The same three for a rule's event pattern (DescribeRule).
PATTERN_PREFIX = "dlq:rule-pattern:"
PATTERN_FILL_PREFIX = "dlq:rule-pattern-fill:"
PATTERN_LOOKUPS_KEY = "dlq:stats:rule-pattern-lookups"

EventsClientFor = Callable[[str], Any]


class RuleTargetError(TargetFatal):
    """The event cannot go where its message says; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class HttpParameters:
    """A target's `HttpParameters` (API Gateway and API destinations)."""

    path_values: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    query: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_target(cls, target: Mapping[str, Any]) -> HttpParameters | None:
        raw = target.get("HttpParameters")
        if not isinstance(raw, Mapping):
            return None
        return cls(
            path_values=tuple(str(v) for v in raw.get("PathParameterValues") or ()),
            headers=MappingProxyType(
                {str(k): str(v) for k, v in (raw.get("HeaderParameters") or {}).items()}
            ),
            query=MappingProxyType(
                {str(k): str(v) for k, v in (raw.get("QueryStringParameters") or {}).items()}
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "PathParameterValues": list(self.path_values),
            "HeaderParameters": dict(self.headers),
            "QueryStringParameters": dict(self.query),
        }


@dataclass(frozen=True, slots=True)
class RuleTarget:
    """One target of a rule: its ARN, its input transformation and its parameters."""

    arn: str
    target_id: str = ""
    input: TargetInput = field(default_factory=TargetInput)
    #: SqsParameters.MessageGroupId (FIFO queues).
    message_group_id: str | None = None
    #: KinesisParameters.PartitionKeyPath; EventBridge's default key is the event id.
    partition_key_path: str | None = None
    http: HttpParameters | None = None

    @classmethod
    def from_target(cls, target: Mapping[str, Any]) -> RuleTarget:
        """From a `Target` of ListTargetsByRule (or `to_dict`'s own output)."""
        sqs = target.get("SqsParameters") or {}
        kinesis = target.get("KinesisParameters") or {}
        return cls(
            arn=str(target["Arn"]),
            target_id=str(target.get("Id", "")),
            input=TargetInput.from_target(target),
            message_group_id=sqs.get("MessageGroupId"),
            partition_key_path=kinesis.get("PartitionKeyPath"),
            http=HttpParameters.from_target(target),
        )

    def delivers_like(self, other: RuleTarget) -> bool:
        """Whether `other` sends the same payload the same way; target ids aside."""
        return replace(self, target_id="") == replace(other, target_id="")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Arn": self.arn, "Id": self.target_id, **self.input.to_dict()}
        if self.message_group_id is not None:
            out["SqsParameters"] = {"MessageGroupId": self.message_group_id}
        if self.partition_key_path is not None:
            out["KinesisParameters"] = {"PartitionKeyPath": self.partition_key_path}
        if self.http is not None:
            out["HttpParameters"] = self.http.to_dict()
        return out


def listed_target(
    rule_arn: str, target_arn: str, listed: Sequence[RuleTarget]
) -> RuleTarget | None:
    """The rule's one way of delivering to `target_arn`, or None when it lists no such ARN.

    Targets of the same ARN that differ in what `RuleTarget` keeps (input, input path,
    input transformer, parameters) raise a `RuleTargetError` coded `AmbiguousTarget`: the
    DLQ message cannot say which of them missed the event, and a guess would send one
    target's payload in place of the other's. Alike ones are one delivery: the first.
    """
    same = [target for target in listed if target.arn == target_arn]
    if not same:
        return None
    if all(same[0].delivers_like(other) for other in same[1:]):
        return same[0]
    ids = ", ".join(target.target_id or "?" for target in same)
    raise RuleTargetError(
        f"rule {rule_arn} lists {target_arn} {len(same)} times (targets {ids}) with "
        "different input or parameters, and a DLQ message names only the ARN, so which of "
        "them missed the event is unknown: nothing was redelivered. To send it anyway, route "
        "it explicitly: `dlq-replay redrive --error-code AmbiguousTarget --target-arn "
        f"{target_arn} --target-override {target_arn}` (narrow with --rule-arn or "
        "--conversation-id; the original event is sent, without any target's input "
        "transformation). To prevent it, give each of the rule's targets its own ARN (a "
        "Lambda alias or version each, a queue each)",
        target_arn=target_arn,
        code="AmbiguousTarget",
    )


class RuleBook:
    """The targets and the event pattern of each rule, read with ListTargetsByRule and
    DescribeRule and shared by the fleet.

    `events_for(region)` is an EventBridge client for that region. Each answer is cached
    in Redis for `ttl_seconds` (`rulecache`): one call of each kind per rule per period,
    whatever the backlog, a rule found gone included; `forget` drops both.
    """

    def __init__(
        self, events_for: EventsClientFor, cache: redis.Redis, *, ttl_seconds: float = 60.0
    ) -> None:
        self._events_for = events_for
        self._targets: FleetCache[list[RuleTarget]] = FleetCache(
            cache,
            Keys(CACHE_PREFIX, FILL_PREFIX, LOOKUPS_KEY),
            ttl_seconds=ttl_seconds,
            fetch=self._list,
            encode=lambda targets: [t.to_dict() for t in targets],
            decode=lambda document: [RuleTarget.from_target(t) for t in document],
        )
        self._patterns: FleetCache[RulePattern] = FleetCache(
            cache,
            Keys(PATTERN_PREFIX, PATTERN_FILL_PREFIX, PATTERN_LOOKUPS_KEY),
            ttl_seconds=ttl_seconds,
            fetch=self._describe,
            encode=lambda pattern: {"EventPattern": pattern.text},
            decode=lambda document: RulePattern(document.get("EventPattern")),
        )

    def target(self, rule_arn: str, target_arn: str) -> RuleTarget:
        """The rule's own target whose ARN is `target_arn`, else a `RuleTargetError`."""
        if not rule_arn:
            raise RuleTargetError(
                f"the DLQ message names no RULE_ARN, so {target_arn} cannot be checked against "
                "a rule and was not redelivered; route it explicitly with "
                "REPLAY_TARGET_OVERRIDES (or set REPLAY_TRUST_TARGET_ARN=true) on the replay "
                "workers (restart them with it), then redrive",
                target_arn=target_arn,
                code="NoRule",
            )
        listed = self.targets(rule_arn)
        if listed is None:
            raise _rule_not_found(rule_arn, target_arn)
        target = listed_target(rule_arn, target_arn, listed)
        if target is not None:
            return target
        raise RuleTargetError(
            f"{target_arn} is not a target of rule {rule_arn} (the DLQ message's TARGET_ARN "
            "is not what the rule delivers to), so the event was not redelivered: if the rule "
            "changed, restore the target or route it explicitly with REPLAY_TARGET_OVERRIDES "
            "on the replay workers (restart them with it) or `dlq-replay redrive "
            "--target-override`, then redrive; if not, someone wrote "
            "this message to the DLQ: check who may sqs:SendMessage on it",
            target_arn=target_arn,
            code="NotARuleTarget",
        )

    def check_pattern(self, rule_arn: str, target_arn: str, body: str) -> None:
        """Raise `Rejected` (`PatternMismatch`) unless the rule's event pattern matches
        the event in `body`, as EventBridge would have matched it before delivering."""
        described = self.pattern(rule_arn)
        if described is None:
            raise _rule_not_found(rule_arn, target_arn)
        if described.text is None:
            raise Rejected(
                f"rule {rule_arn} has no event pattern (a scheduled rule): it never delivered "
                "this event, so a message naming it was not written by EventBridge; nothing "
                "was sent (check who may sqs:SendMessage on the DLQ)",
                code=PATTERN_MISMATCH,
            )
        try:
            pattern = described.parsed
        except PatternUnsupported as exc:
            raise RuleTargetError(
                f"the event pattern of rule {rule_arn} cannot be evaluated here ({exc}), so "
                "whether the rule delivered this event is unknown and nothing was sent: "
                "upgrade dlq-replay, or send it anyway with `dlq-replay redrive --error-code "
                f"PatternUnsupported --target-override {target_arn}` (no input transformation)",
                target_arn=target_arn,
                code="PatternUnsupported",
            ) from None
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not pattern.matches(event):
            raise Rejected(
                f"the event does not match the event pattern of rule {rule_arn}: EventBridge "
                "would never have delivered it to the rule's targets, so nothing was sent; if "
                "the rule's pattern changed since, the event is no longer the rule's; if not, "
                "someone wrote this message to the DLQ: check who may sqs:SendMessage on it",
                code=PATTERN_MISMATCH,
            )

    def forget(self, rule_arn: str) -> None:
        """Drop the fleet's copy of a rule's targets and pattern (an operator changed it)."""
        self._targets.forget(rule_arn)
        self._patterns.forget(rule_arn)

    def targets(self, rule_arn: str) -> list[RuleTarget] | None:
        """The rule's targets (None when the rule is gone), from the caches or EventBridge."""
        return self._targets.get(rule_arn)

    def pattern(self, rule_arn: str) -> RulePattern | None:
        """The rule's event pattern (None when the rule is gone), cached as its targets are."""
        return self._patterns.get(rule_arn)

    def _list(self, rule_arn: str) -> list[RuleTarget] | None:
        rule = RuleRef.parse(rule_arn)
        if rule is None:
            return None
        client = self._events_for(rule.region)
        targets: list[RuleTarget] = []
        token: str | None = None
        try:
            while True:
                page = client.list_targets_by_rule(
                    Rule=rule.name,
                    EventBusName=rule.bus,
                    **({"NextToken": token} if token else {}),
                )
                targets.extend(RuleTarget.from_target(t) for t in page.get("Targets", []))
                token = page.get("NextToken")
                if not token:
                    return targets
        except ClientError as error:
            _gone_or_raise(error, rule_arn, "ListTargetsByRule")
            return None

    def _describe(self, rule_arn: str) -> RulePattern | None:
        rule = RuleRef.parse(rule_arn)
        if rule is None:
            return None
        try:
            answer = self._events_for(rule.region).describe_rule(
                Name=rule.name, EventBusName=rule.bus
            )
        except ClientError as error:
            _gone_or_raise(error, rule_arn, "DescribeRule")
            return None
        return RulePattern(answer.get("EventPattern") or None)


@dataclass(frozen=True)
class RulePattern:
    """What DescribeRule says of a rule's pattern: its text (None: a scheduled rule)."""

    text: str | None

    @cached_property
    def parsed(self) -> EventPattern:
        """The pattern, parsed once (`PatternUnsupported` when it cannot be evaluated)."""
        return EventPattern.parse(self.text or "{}")


def _rule_not_found(rule_arn: str, target_arn: str) -> RuleTargetError:
    return RuleTargetError(
        f"rule {rule_arn} no longer exists, so the event was not redelivered: restore "
        f"the rule with its target {target_arn}, or route the target explicitly with "
        "REPLAY_TARGET_OVERRIDES on the replay workers (restart them with it) or "
        "`dlq-replay redrive --target-override`, then redrive",
        target_arn=target_arn,
        code="RuleNotFound",
    )


def _gone_or_raise(error: ClientError, rule_arn: str, action: str) -> None:
    """Return for a rule that is gone; raise a denial as a `ConfigurationError`, any
    other error as it is."""
    code = error.response.get("Error", {}).get("Code", "")
    if code == "ResourceNotFoundException":
        log.warning("a rule named in the DLQ is gone", extra={"rule_arn": rule_arn})
        return
    if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
        raise ConfigurationError(
            f"events:{action} on {rule_arn} was denied: grant the workers events:{action} "
            "on the rule (see the README's IAM section), or set REPLAY_TRUST_TARGET_ARN=true "
            "to redeliver to TARGET_ARN unchecked"
        ) from None
    raise error
