"""An item's statuses, which of them are final, and the claim rule, stated once.

received --claim--> in_progress --ok--> replayed
                        |  +--retryable--> retry_scheduled --claim--> in_progress
                        +--fatal--> failed
                        +--attempts or age used up--> exhausted
(bad input at ingest) --> rejected          failed | exhausted --redrive--> received
received | in_progress (lease lapsed) | retry_scheduled | failed | exhausted
    --resolve (an operator, with a reason; nothing is sent)--> resolved
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    RECEIVED = "received"
    IN_PROGRESS = "in_progress"
    RETRY_SCHEDULED = "retry_scheduled"
    REPLAYED = "replayed"
    FAILED = "failed"
    EXHAUSTED = "exhausted"
    REJECTED = "rejected"
    #: An operator ended the item without a delivery (`dlq-replay resolve`).
    RESOLVED = "resolved"


FINAL_STATUSES = frozenset(
    {Status.REPLAYED, Status.FAILED, Status.EXHAUSTED, Status.REJECTED, Status.RESOLVED}
)
PENDING_STATUSES = frozenset({Status.RECEIVED, Status.IN_PROGRESS, Status.RETRY_SCHEDULED})
REDRIVABLE_STATUSES = frozenset({Status.FAILED, Status.EXHAUSTED})
#: What an operator may resolve: whatever has not ended on its own account (a delivery, a
#: rejection) nor been resolved already. An item in progress only once its lease lapsed.
RESOLVABLE_STATUSES = PENDING_STATUSES | REDRIVABLE_STATUSES

#: A retry due within this long is about to be attempted, like a `received` item: an
#: ordered pass does not call its conversation at rest, and tracking waits for it.
IMMINENT_SECONDS = 30.0


# The claim rule, stated once: an item may be taken for an attempt when it is `received`,
# when its retry is due, or when the lease of the attempt that held it has lapsed. Both
# stores claim by it (DynamoDB by the condition below, the in-memory twin by `claimable`;
# the contract tests hold them to each other), and an ordered pass reads it to know which
# items of its line it may take.
CLAIM_CONDITION = (
    "attribute_exists(event_id) AND (#s = :received "
    "OR (#s = :retry AND next_attempt_at <= :epoch) "
    "OR (#s = :in_progress AND lease_until < :epoch))"
)


def claimable(
    status: Status | str | None,
    *,
    next_attempt_at: float | None,
    lease_until: float | None,
    now: float,
) -> bool:
    """Whether a claim at `now` (epoch seconds, as the stores round it) would succeed."""
    if status == Status.RECEIVED:
        return True
    if status == Status.RETRY_SCHEDULED:
        return next_attempt_at is not None and next_attempt_at <= now
    if status == Status.IN_PROGRESS:
        return lease_until is not None and lease_until < now
    return False


def about_to_change(
    status: Status, *, next_attempt_at: float | None, now: float, within: float = IMMINENT_SECONDS
) -> bool:
    """Whether an item is about to get an outcome: not final, and not a retry far off."""
    if status in (Status.RECEIVED, Status.IN_PROGRESS):
        return True
    return status is Status.RETRY_SCHEDULED and (next_attempt_at or 0.0) <= now + within


def check_finish_status(status: Status) -> None:
    """`finish()` ends an attempt; it never moves an item back to a waiting state (it may
    end `rejected`: the worker found the event outside the trust boundary), and never to
    `resolved`, which is an operator's word (`LedgerStore.resolve`), not an attempt's."""
    if status in (Status.IN_PROGRESS, Status.RECEIVED, Status.RESOLVED):
        raise ValueError(f"finish() cannot move an item to {status}")
