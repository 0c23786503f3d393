"""Rule-aware routing: a DLQ message's TARGET_ARN is a claim, checked against its rule.

Anyone allowed `sqs:SendMessage` on the DLQ can write a message naming any ARN, so a
replay goes only to a target that the message's own rule lists (`events:ListTargetsByRule`),
and takes from that listing what EventBridge would have used: the input transformation
and the target's parameters. The listing is read once per rule per `ttl_seconds` for the
whole fleet (cached in Redis), not once per event.

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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import redis
from botocore.exceptions import ClientError

from dlq.errors import ConfigurationError
from dlq.memo import Memo
from dlq.targets.arn import Arn
from dlq.targets.errors import TargetFatal
from dlq.targets.transform import TargetInput

log = logging.getLogger(__name__)

CACHE_PREFIX = "dlq:rule:"
FILL_PREFIX = "dlq:rule-fill:"
#: Per rule ARN: how many times the fleet called ListTargetsByRule (operators, tests).
#: The hash expires `LOOKUPS_TTL_SECONDS` after the latest call (each call sets it again).
LOOKUPS_KEY = "dlq:stats:rule-lookups"
LOOKUPS_TTL_SECONDS = 86400
#: How long a worker waits for another worker's lookup of the same rule before its own.
FILL_WAIT_SECONDS = 5.0
#: How long a process keeps a rule's targets to itself (at most half the fleet's TTL).
LOCAL_SECONDS = 5.0

EventsClientFor = Callable[[str], Any]


class RuleTargetError(TargetFatal):
    """The event cannot go where its message says; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class RuleRef:
    """Which rule an ARN names: `arn:aws:events:<region>:<account>:rule/[<bus>/]<name>`.

    A partner bus's name holds slashes (`aws.partner/genesys.com/cloud/<org>/<suffix>`),
    so the rule's name is the last part and the bus everything between.
    """

    arn: str
    region: str
    bus: str
    name: str

    @classmethod
    def parse(cls, rule_arn: str) -> RuleRef | None:
        arn = Arn.parse(rule_arn)
        if arn is None or arn.service != "events" or not arn.resource.startswith("rule/"):
            return None
        path = arn.resource.removeprefix("rule/")
        bus, _, name = path.rpartition("/")
        if not name or not arn.region:
            return None
        return cls(arn=rule_arn, region=arn.region, bus=bus or "default", name=name)


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
    """The targets of each rule, read with ListTargetsByRule and shared by the fleet.

    `events_for(region)` is an EventBridge client for that region. Answers are cached in
    Redis for `ttl_seconds`; a rule found gone is cached too, so a backlog for a deleted
    rule costs one call per period, not one per event. Concurrent misses of one rule wait
    for whichever worker fetches it.
    """

    def __init__(
        self, events_for: EventsClientFor, cache: redis.Redis, *, ttl_seconds: float = 60.0
    ) -> None:
        self._events_for = events_for
        self._cache = cache
        self._ttl = max(1, round(ttl_seconds))
        self._local = threading.Lock()
        # Each process keeps what it read for a few seconds more: the fleet's copy in
        # Redis costs a read and a parse per event otherwise.
        self._recent: Memo[str, list[RuleTarget] | None] = Memo(min(LOCAL_SECONDS, ttl_seconds / 2))

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
            raise RuleTargetError(
                f"rule {rule_arn} no longer exists, so the event was not redelivered: restore "
                f"the rule with its target {target_arn}, or route the target explicitly with "
                "REPLAY_TARGET_OVERRIDES on the replay workers (restart them with it) or "
                "`dlq-replay redrive --target-override`, then redrive",
                target_arn=target_arn,
                code="RuleNotFound",
            )
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

    def forget(self, rule_arn: str) -> None:
        """Drop the fleet's copy of a rule's targets (an operator changed the rule)."""
        self._recent.forget(rule_arn)
        self._cache.delete(CACHE_PREFIX + rule_arn)

    def targets(self, rule_arn: str) -> list[RuleTarget] | None:
        """The rule's targets (None when the rule is gone), from the caches or EventBridge."""
        return self._recent.get(rule_arn, lambda: self._shared(rule_arn))

    def _shared(self, rule_arn: str) -> list[RuleTarget] | None:
        cached = self._cached(rule_arn)
        if cached is not None:
            return cached.targets
        with self._local:  # one thread of this process asks; the others read its answer
            cached = self._cached(rule_arn)
            if cached is not None:
                return cached.targets
            claimed = self._cache.set(FILL_PREFIX + rule_arn, "1", nx=True, ex=30)
            if not claimed:
                cached = self._await_other_worker(rule_arn)
                if cached is not None:
                    return cached.targets
            try:
                cached = self._cached(rule_arn)  # filled between our miss and our claim
                if cached is not None:
                    return cached.targets
                listed = self._list(rule_arn)
                document = None if listed is None else [t.to_dict() for t in listed]
                self._cache.set(CACHE_PREFIX + rule_arn, json.dumps(document), ex=self._ttl)
            finally:
                if claimed:  # never release another worker's claim
                    self._cache.delete(FILL_PREFIX + rule_arn)
            return listed

    def _cached(self, rule_arn: str) -> _Cached | None:
        raw = self._cache.get(CACHE_PREFIX + rule_arn)
        if raw is None:
            return None
        document = json.loads(raw)
        return _Cached(None if document is None else [RuleTarget.from_target(t) for t in document])

    def _await_other_worker(self, rule_arn: str) -> _Cached | None:
        deadline = time.monotonic() + FILL_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.05)
            cached = self._cached(rule_arn)
            if cached is not None:
                return cached
        return None

    def _list(self, rule_arn: str) -> list[RuleTarget] | None:
        rule = RuleRef.parse(rule_arn)
        if rule is None:
            return None
        client = self._events_for(rule.region)
        pipe = self._cache.pipeline(transaction=False)
        pipe.hincrby(LOOKUPS_KEY, rule_arn, 1)
        pipe.expire(LOOKUPS_KEY, LOOKUPS_TTL_SECONDS)
        pipe.execute()
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
            code = error.response.get("Error", {}).get("Code", "")
            if code == "ResourceNotFoundException":
                log.warning("a rule named in the DLQ is gone", extra={"rule_arn": rule_arn})
                return None
            if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
                raise ConfigurationError(
                    f"events:ListTargetsByRule on {rule_arn} was denied: grant the workers "
                    "events:ListTargetsByRule on the rule (see the README's IAM section), or "
                    "set REPLAY_TRUST_TARGET_ARN=true to redeliver to TARGET_ARN unchecked"
                ) from None
            raise


@dataclass(frozen=True, slots=True)
class _Cached:
    """A cache hit: the rule's targets, or None for a rule known to be gone."""

    targets: list[RuleTarget] | None
