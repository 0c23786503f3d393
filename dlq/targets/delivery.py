"""The value objects of a redelivery: what to send where (`Replay`) and the receipt (`Delivery`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dlq.targets.jsonpath import PathSyntaxError, select

if TYPE_CHECKING:
    from dlq.targets.rules import RuleTarget


@dataclass(frozen=True, slots=True)
class Delivery:
    """The receipt of one redelivery, for the ledger.

    `target_arn` is the target the event missed, `delivered_to` where it went (another
    ARN when REPLAY_TARGET_OVERRIDES routes it elsewhere), `kind` the kind of
    `delivered_to`, `detail` what the target answered (a message id, an execution ARN...).
    `transformed` says whether the target's input transformation changed the payload,
    `digest` is the payload's SHA-256, and `route` how the destination was chosen
    (`rule`, `override`, `trusted`).
    """

    target_arn: str
    delivered_to: str
    kind: str
    detail: str | None
    transformed: bool = False
    digest: str | None = None
    route: str = "rule"


@dataclass(frozen=True, slots=True)
class Replay:
    """One event on its way to one target.

    `body` is the DLQ message body (the original event); `payload` what the target is
    sent: the rule target's input transformation of it, or the body itself. `target` is
    the rule's configuration of this target when it was read (None when routed without
    the rule: REPLAY_TRUST_TARGET_ARN or an override).
    """

    target_arn: str
    delivered_to: str
    event_id: str
    body: str
    conversation_id: str | None = None
    rule_arn: str = ""
    payload: str | None = None
    target: RuleTarget | None = None

    @property
    def content(self) -> str:
        """What is sent, as text."""
        return self.body if self.payload is None else self.payload

    @property
    def data(self) -> bytes:
        """What is sent, as bytes: the payload (or the DLQ body) byte for byte."""
        return self.content.encode("utf-8")

    @property
    def dedup_id(self) -> str:
        """A key that is the same for every attempt of this (event, rule, target).

        Keyed on the missed target and its rule, like the ledger item, so two targets
        routed to the same place are still two deliveries; 64 hex characters fit every
        service's limit.
        """
        key = f"{self.event_id}\n{self.target_arn}\n{self.rule_arn}"
        return hashlib.sha256(key.encode()).hexdigest()

    @property
    def group_id(self) -> str:
        """A FIFO target's group: the rule target's `MessageGroupId`, else the conversation
        (or the event) when the rule was not read."""
        if self.target is not None and self.target.message_group_id:
            return self.target.message_group_id
        return (self.conversation_id or self.event_id)[:128]

    @property
    def partition_key(self) -> str:
        """A Kinesis record's key: `PartitionKeyPath` applied to the event, else the event
        id (EventBridge's default, per the PutTargets API reference)."""
        path = self.target.partition_key_path if self.target is not None else None
        if path:
            try:
                selected = select(path, json.loads(self.body))
            except (ValueError, PathSyntaxError):
                selected = None
            if selected is not None and selected.found and selected.value is not None:
                return _key_text(selected.value)[:256]
        return self.event_id[:256]


def _key_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
