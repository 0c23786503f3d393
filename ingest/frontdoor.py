"""What both front doors share: the ledger, the producer and the org check, built once."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from dlq.aws import aws_client
from dlq.broker import ReplayEnqueuer
from dlq.events import DlqMessage
from dlq.genesys.pending import PendingVerifications
from dlq.ingest import IngestResult, admit
from dlq.ledger import Ledger, LedgerStore
from dlq.observe import NO_METRICS, MetricsObserver
from dlq.settings import Settings


@dataclass(frozen=True, slots=True)
class FrontDoor:
    """Hands DLQ messages to the ingest core."""

    ledger: LedgerStore
    enqueuer: ReplayEnqueuer
    org_id: str | None = None
    #: The fleet's to-verify list, when conversations are verified before redelivery.
    verifications: PendingVerifications | None = None
    #: Hears each message's outcome (counters, Prometheus, EMF).
    metrics: MetricsObserver = NO_METRICS

    @classmethod
    def from_settings(
        cls, settings: Settings, *, metrics: MetricsObserver = NO_METRICS
    ) -> FrontDoor:
        from tasks.application import app
        from tasks.producer import CeleryEnqueuer, VerifyScheduler

        ledger = Ledger(
            aws_client("dynamodb", settings),
            settings.ledger_table,
            ttl_days=settings.ledger_ttl_days,
        )
        verifications = None
        if settings.replay_verify_conversation:
            # Connects on first use, not here.
            client = redis.Redis.from_url(settings.redis_url, health_check_interval=30)
            verifications = PendingVerifications(client, VerifyScheduler(app))
        return cls(
            ledger=ledger,
            enqueuer=CeleryEnqueuer(app),
            org_id=settings.genesys_org_id,
            verifications=verifications,
            metrics=metrics,
        )

    def handle(self, message: DlqMessage) -> IngestResult:
        """Ingest one message; raises `HandOffError` when it must stay in the queue."""
        return admit(
            message,
            ledger=self.ledger,
            enqueuer=self.enqueuer,
            org_id=self.org_id,
            verifications=self.verifications,
            metrics=self.metrics,
        )
