"""The value objects of a redelivery: what to send where (`Replay`) and the receipt (`Delivery`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivery:
    """The receipt of one redelivery, for the ledger.

    `target_arn` is the target the event missed, `delivered_to` where it went (another
    ARN when REPLAY_TARGET_OVERRIDES routes it elsewhere), `kind` the kind of
    `delivered_to`, `detail` what the target answered (a message id, an execution ARN...).
    """

    target_arn: str
    delivered_to: str
    kind: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class Replay:
    """One event on its way to one target."""

    target_arn: str
    delivered_to: str
    event_id: str
    body: str
    conversation_id: str | None = None

    @property
    def payload(self) -> bytes:
        """The body as sent: the DLQ message body, byte for byte."""
        return self.body.encode("utf-8")

    @property
    def dedup_id(self) -> str:
        """A key that is the same for every attempt of this (event, missed target) pair.

        Keyed on the missed target, like the ledger item, so two targets routed to the same
        place are still two deliveries; 64 hex characters fit every service's limit.
        """
        return hashlib.sha256(f"{self.event_id}\n{self.target_arn}".encode()).hexdigest()

    @property
    def group_id(self) -> str:
        """The ordering key: the conversation when there is one, else the event itself."""
        return (self.conversation_id or self.event_id)[:128]
