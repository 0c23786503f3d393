"""What `dlq-replay status --watch` shows, as data: snapshots of the system and rates.

Every read is bounded, so a watch costs the same on a table of a million items as on ten:

- outcomes (replayed, failed, exhausted, rejected) are the items that reached that status
  since the previous snapshot (the first looks back one minute): a by-status index query
  over that span of `updated_at`, at most `cap` items each; rates are those counts over
  the span;
- pending items (received, in progress, retry scheduled): by-status queries, each
  stopped at `cap` (shown as "cap+");
- the top failing targets: the newest `sample` items of failed, exhausted and
  retry_scheduled, grouped by target;
- the DLQ's depth: one GetQueueAttributes; the Genesys budget: the limiter's Redis keys
  (`dlq.ratelimit.usage`); tracking runs waiting: a SCAN of their Redis keys;
- the targets held: the pauses (the Redis copy) and a SCAN of the open breakers.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dlq.clock import SYSTEM_CLOCK, Clock, iso
from dlq.holds.report import TargetHold
from dlq.ledger import LedgerStore, Status
from dlq.ratelimit.usage import BudgetUse

OUTCOMES = (Status.REPLAYED, Status.FAILED, Status.EXHAUSTED, Status.REJECTED)
PENDING = (Status.RECEIVED, Status.IN_PROGRESS, Status.RETRY_SCHEDULED)
TROUBLE = (Status.FAILED, Status.EXHAUSTED, Status.RETRY_SCHEDULED)
FIRST_LOOK_BACK_SECONDS = 60.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """The DLQ's approximate message counts (SQS's own, eventually consistent)."""

    visible: int
    in_flight: int
    delayed: int = 0


@dataclass(frozen=True, slots=True)
class TargetTrouble:
    """A target with items that failed, ran out of attempts or wait for a retry."""

    target_arn: str
    #: status -> items, among the sampled newest ones.
    counts: Mapping[str, int]
    #: The most common `last_error_code`s, most common first.
    error_codes: tuple[str, ...]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The system at one moment, and what finished since the previous moment."""

    at: float
    #: Outcome counts cover (since, at].
    since: float
    outcomes: Mapping[str, int]
    pending: Mapping[str, int]
    #: Statuses whose count stopped at the cap (there are at least that many).
    capped: frozenset[str] = frozenset()
    dlq: QueueDepth | None = None
    #: Why the DLQ's depth is missing (no DLQ_QUEUE_URL, an error), when it is.
    dlq_error: str | None = None
    budget: BudgetUse | None = None
    budget_error: str | None = None
    tracking_runs: int = 0
    top_targets: tuple[TargetTrouble, ...] = field(default_factory=tuple)
    #: Paused targets and open breakers (`dlq.holds.report`).
    held: tuple[TargetHold, ...] = field(default_factory=tuple)

    @property
    def span(self) -> float:
        return max(self.at - self.since, 1e-9)

    def per_minute(self, status: Status | str) -> float:
        """Items per minute that reached `status` over this snapshot's span."""
        return self.outcomes.get(Status(status).value, 0) * 60.0 / self.span

    @property
    def finished_per_minute(self) -> float:
        """Items per minute leaving the pipeline, whatever their outcome."""
        return sum(self.per_minute(s) for s in OUTCOMES)

    @property
    def backlog(self) -> int:
        """What is still to do: messages in the DLQ and items pending in the ledger."""
        queued = self.dlq.visible + self.dlq.in_flight + self.dlq.delayed if self.dlq else 0
        return queued + sum(self.pending.values())

    @property
    def eta_seconds(self) -> float | None:
        """Time to drain the backlog at the current pace; None when nothing moves."""
        if self.backlog == 0:
            return 0.0
        rate = self.finished_per_minute
        return self.backlog / rate * 60.0 if rate > 0 else None


@dataclass
class Watcher:
    """Takes successive snapshots; each one's outcome counts start where the last ended."""

    ledger: LedgerStore
    queue_depth: Callable[[], QueueDepth] | None = None
    budget: Callable[[], BudgetUse] | None = None
    tracking_runs: Callable[[], int] | None = None
    held: Callable[[], Sequence[TargetHold]] | None = None
    clock: Clock = SYSTEM_CLOCK
    #: The most items one status query reads.
    cap: int = 1000
    #: The newest items per trouble status grouped for the top targets.
    sample: int = 200
    top: int = 5
    _last: float | None = None

    def take(self) -> Snapshot:
        now = self.clock.now()
        since = self._last if self._last is not None else now - FIRST_LOOK_BACK_SECONDS
        self._last = now
        capped: set[str] = set()

        def count(status: Status, **bounds: Any) -> int:
            n = sum(1 for _ in self.ledger.by_status(status, limit=self.cap, **bounds))
            if n >= self.cap:
                capped.add(status.value)
            return n

        window = {"updated_after": iso(since), "updated_before": iso(now)}
        outcomes = {s.value: count(s, **window) for s in OUTCOMES}
        pending = {s.value: count(s) for s in PENDING}
        dlq, dlq_error = _guarded(self.queue_depth, "DLQ_QUEUE_URL is not set")
        budget, budget_error = _guarded(self.budget, "GENESYS_CLIENT_ID is not set")
        runs, _ = _guarded(self.tracking_runs, "")
        held, _ = _guarded(self.held, "")
        return Snapshot(
            at=now,
            since=since,
            outcomes=outcomes,
            pending=pending,
            capped=frozenset(capped),
            dlq=dlq,
            dlq_error=dlq_error,
            budget=budget,
            budget_error=budget_error,
            tracking_runs=runs or 0,
            top_targets=self._top_targets(),
            held=tuple(held or ()),
        )

    def _top_targets(self) -> tuple[TargetTrouble, ...]:
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        codes: dict[str, Counter[str]] = defaultdict(Counter)
        for status in TROUBLE:
            for item in self.ledger.by_status(status, newest_first=True, limit=self.sample):
                counts[item.target_arn][status.value] += 1
                codes[item.target_arn][item.last_error_code or "-"] += 1
        troubles = [
            TargetTrouble(arn, dict(c), tuple(code for code, _ in codes[arn].most_common(3)))
            for arn, c in counts.items()
        ]
        troubles.sort(key=lambda t: (-t.total, t.target_arn))
        return tuple(troubles[: self.top])


def _guarded(read: Callable[[], T] | None, missing: str) -> tuple[T | None, str | None]:
    """A source's value, or why there is none: a watch keeps going when one source fails."""
    if read is None:
        return None, missing or None
    try:
        return read(), None
    except Exception as exc:  # shown on screen; the next refresh tries again
        return None, f"{type(exc).__name__}: {exc}"


def sqs_depth(sqs: Any, queue_url: str) -> QueueDepth:
    """The queue's depth from one GetQueueAttributes."""
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    visible, in_flight, delayed = (int(attributes.get(name, 0)) for name in names)
    return QueueDepth(visible=visible, in_flight=in_flight, delayed=delayed)
