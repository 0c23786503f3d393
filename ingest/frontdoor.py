"""What both front doors share: the ledger, the producer and the trust boundary, built once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from dlq.arrivals import Arrivals
from dlq.aws import aws_client
from dlq.boundary import TrustBoundary
from dlq.broker import ReplayEnqueuer
from dlq.events import DlqMessage
from dlq.genesys.pending import PendingVerifications
from dlq.ingest import IngestResult, admit, resume_parked
from dlq.ledger import Ledger, LedgerStore
from dlq.metrics.buffer import CountBuffer
from dlq.metrics.tally import StatusTally
from dlq.observe import NO_METRICS, MetricsObserver
from dlq.redisclient import redis_client
from dlq.secrets.redis_auth import RedisCredentials
from dlq.settings import Settings
from dlq.tracking import TrackingNews

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FrontDoor:
    """Hands DLQ messages to the ingest core."""

    ledger: LedgerStore
    enqueuer: ReplayEnqueuer
    org_id: str | None = None
    #: Which rules' events are admitted (default: the Genesys partner buses of `org_id`).
    boundary: TrustBoundary | None = None
    #: The fleet's to-verify list, when conversations are verified before redelivery.
    verifications: PendingVerifications | None = None
    #: Hears each message's outcome (counters, Prometheus, EMF).
    metrics: MetricsObserver = NO_METRICS
    #: Tells ordered passes of events still arriving (REPLAY_ORDER=conversation).
    arrivals: Arrivals | None = None
    #: REPLAY_INGEST_QUIET_SECONDS: how long after the drain's end its parked passes go.
    quiet_seconds: float = 2.0
    #: Tracking's (`TrackingNews.wake`): told of the conversations whose tracking parked
    #: for the drain, when it ends.
    tracking_news: Callable[[str], None] | None = None
    #: Where the ledger's status moves and `metrics`' outcome counts wait for their flush
    #: (None: written as they happen).
    counts: CountBuffer | None = None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        metrics: MetricsObserver = NO_METRICS,
        redis_auth: RedisCredentials | None = None,
        counts: CountBuffer | None = None,
    ) -> FrontDoor:
        """`redis_auth`: the Redis password from a secret store (default: the settings');
        `counts`: the process's count buffer, which `metrics` should share."""
        from tasks.application import app
        from tasks.producer import CeleryEnqueuer, TrackingScheduler, VerifyScheduler

        # Connects on first use, not here.
        redis_auth = redis_auth or RedisCredentials.from_settings(settings)
        client = redis_client(settings, redis_auth, health_check_interval=30)
        ledger = Ledger(
            # As the worker's (tasks/runtime.py): the requests are dlq.ledger's alone, and
            # the contract tests check them with validation on (0.28 ms per write saved).
            aws_client("dynamodb", settings, validate=False),
            settings.ledger_table,
            ttl_days=settings.ledger_ttl_days,
            moves=StatusTally(client, settings.ledger_table, counts=counts),
        )
        verifications = None
        if settings.replay_verify_conversation:
            verifications = PendingVerifications(client, VerifyScheduler(app, broker=client))
        arrivals = None
        if settings.replay_order == "conversation":
            arrivals = Arrivals(client, keep_seconds=settings.replay_ingest_max_hold_seconds)
        news = TrackingNews(
            client,
            TrackingScheduler(app),
            debounce_seconds=settings.replay_tracking_debounce_seconds,
        )
        return cls(
            ledger=ledger,
            enqueuer=CeleryEnqueuer(app),
            org_id=settings.genesys_org_id or None,
            boundary=TrustBoundary.from_settings(settings),
            verifications=verifications,
            metrics=metrics,
            arrivals=arrivals,
            quiet_seconds=settings.replay_ingest_quiet_seconds,
            tracking_news=news.wake,
            counts=counts,
        )

    def handle(self, message: DlqMessage, *, draining: bool = False) -> IngestResult:
        """Ingest one message; raises `HandOffError` when it must stay in the queue.
        `draining`: the poller's receive brought it (the Lambda's cannot tell)."""
        return admit(
            message,
            ledger=self.ledger,
            enqueuer=self.enqueuer,
            org_id=self.org_id,
            boundary=self.boundary,
            verifications=self.verifications,
            metrics=self.metrics,
            arrivals=self.arrivals,
            draining=draining,
        )

    def flush_counts(self) -> None:
        """Write the counts waiting in the buffer now (the end of a Lambda invocation)."""
        if self.counts is not None:
            self.counts.flush()

    def received(self, count: int, *, wait_seconds: float) -> None:
        """The poller's receive brought `count` messages: while they come, the DLQ drains.
        The receive that ends a drain sends the passes parked for it."""
        if self.arrivals is None:
            return
        try:
            # A long poll that finds nothing takes `wait_seconds`: the note outlives it.
            ended = self.arrivals.draining(count > 0, for_seconds=wait_seconds + 5)
            # This process parked passes since they were last taken: the drain ended even
            # if its note was gone (another receiver ended it first, or a hand-off slower
            # than the note's life let it lapse), and they go now too.
            if ended or (count == 0 and self.arrivals.parked_here()):
                if self.verifications is not None:
                    # The batch verification held its partial batch for the drain.
                    self.verifications.kick()
                resume_parked(
                    self.arrivals,
                    self.enqueuer,
                    after=self.quiet_seconds,
                    news=self.tracking_news,
                )
        except Exception as exc:
            # The parked passes still come back when their holds end.
            log.warning(f"could not note whether the DLQ is draining: {exc}")
