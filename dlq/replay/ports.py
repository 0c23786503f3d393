"""What the replay use case needs from the world, as small interfaces the faces implement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dlq.ledger import LedgerItem
from dlq.targets.delivery import Delivery


class TargetSender(Protocol):
    """Sends an event to the target that missed it (`dlq.targets.Redeliverer`)."""

    def redeliver(
        self,
        *,
        target_arn: str,
        event_id: str,
        body: str,
        conversation_id: str | None = None,
        rule_arn: str = "",
        override: str | None = None,
    ) -> Delivery: ...

    def forget(self, target_arn: str, *, rule_arn: str = "") -> None:
        """Drop what was cached about a target and its rule (an operator changed them)."""


class Parking(Protocol):
    """Keeps an exhausted item's message where an operator can take it back (`dlq.parking`)."""

    def park(self, item: LedgerItem, reason: str) -> None: ...


class News(Protocol):
    """Tells the tracking side that a conversation has a new outcome."""

    def mark(self, conversation_id: str, *, snapshot: Sequence[LedgerItem] = ()) -> None: ...
