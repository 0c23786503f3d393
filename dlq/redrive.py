"""The redrive use case: choose failed or exhausted items and give them a fresh start.

The operator narrows the choice (statuses, error code, DLQ error code, target, rule,
detail-type, conversation, update time); each chosen item goes back to `received` with a
fresh attempt budget and a history note, and its replay is enqueued again. An item that
changed since it was listed is left alone.

The error code is the replay's own (`HTTP503`, `NotARuleTarget`: what `status` counts
failed and exhausted items by); the DLQ error code is EventBridge's `ERROR_CODE`
(`ERROR_FROM_TARGET`). `dlq.codes` says which is which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dlq.broker import ReplayEnqueuer
from dlq.clock import iso
from dlq.codes import shown_code
from dlq.events import EventKey
from dlq.ledger import REDRIVABLE_STATUSES, ClaimRefused, LedgerItem, LedgerStore, Status
from dlq.locks import lock_name


@dataclass(frozen=True, slots=True)
class RedriveFilter:
    """Which items to redrive; an unset field matches every item."""

    statuses: tuple[Status, ...] = tuple(sorted(REDRIVABLE_STATUSES))
    #: The replay's last failure code, spelt as `status` shows it (`none`: no code).
    error_code: str | None = None
    #: The DLQ's ERROR_CODE, as EventBridge wrote it.
    dlq_error_code: str | None = None
    target_arn: str | None = None
    rule_arn: str | None = None
    detail_type: str | None = None
    conversation_id: str | None = None
    #: Last updated after / before these moments (naive ones are UTC).
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, item: LedgerItem) -> bool:
        # Pairs, not a dict keyed by the wanted values: two filters may want one value.
        wanted = (
            (self.error_code and shown_code(self.error_code), shown_code(item.last_error_code)),
            (self.dlq_error_code, item.dlq.error_code),
            (self.target_arn, item.target_arn),
            (self.rule_arn, item.dlq.rule_arn),
            (self.detail_type, item.detail_type),
            (self.conversation_id, item.conversation_id),
        )
        return all(not want or have == want for want, have in wanted)


@dataclass
class RedriveResult:
    redriven: int = 0
    skipped: int = 0
    keys: list[EventKey] = field(default_factory=list)


def select(
    ledger: LedgerStore,
    chosen: RedriveFilter,
    *,
    allowed: frozenset[Status] = REDRIVABLE_STATUSES,
    forgotten: bool = False,
) -> Iterator[LedgerItem]:
    """The items the filter chooses, status by status, oldest update first, read page by
    page (a generator: `resolve` and `export` share it). `allowed`: the statuses the
    caller may choose from; `forgotten`: whether forgotten items are chosen too (a
    redrive has no body left to replay for them)."""
    after = _written(chosen.since)
    before = _written(chosen.until)
    for status in chosen.statuses:
        if status not in allowed:
            raise ValueError(f"only {sorted(allowed)} items can be chosen here")
        for item in ledger.by_status(status, updated_after=after, updated_before=before):
            if chosen.matches(item) and (forgotten or item.forgotten_at is None):
                yield item


def _written(when: datetime | None) -> str | None:
    """A bound as the ledger writes its times (`iso`), so text order is time order; a naive
    datetime is UTC."""
    if when is None:
        return None
    return iso((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


def redrive(
    ledger: LedgerStore,
    enqueuer: ReplayEnqueuer,
    items: list[LedgerItem],
    *,
    note: str = "redrive by operator",
    target_override: str | None = None,
    each: Callable[[LedgerItem], None] = lambda _: None,
    operator: str | None = None,
    edited_body: str | None = None,
) -> RedriveResult:
    """Redrive `items`; `each` is called after every item (progress, pacing).

    `target_override` routes every one of them to that ARN instead of their target (the
    escape hatch for a rule that is gone or changed; the history says so). `operator` is
    who redrives (each history entry names them); `edited_body` is what the item sends
    from now on (`redrive --body-file`: one item, checked by `dlq.edits`).
    """
    result = RedriveResult()
    for item in items:
        try:
            redriven = ledger.redrive(
                item.key,
                note=note,
                target_override=target_override,
                operator=operator,
                edited_body=edited_body,
            )
        except ClaimRefused:
            result.skipped += 1  # changed since it was listed: leave it
        else:
            key = item.key
            enqueuer.enqueue_replay(
                key,
                lock=lock_name(key, item.conversation_id),
                generation=redriven.redriven_at,
            )
            result.keys.append(key)
            result.redriven += 1
        each(item)
    return result
