"""What both front doors share: the ledger, the producer and the org check, built once."""

from __future__ import annotations

from dataclasses import dataclass

from dlq.aws import aws_client
from dlq.broker import ReplayEnqueuer
from dlq.events import DlqMessage
from dlq.ingest import IngestResult, admit
from dlq.ledger import Ledger, LedgerStore
from dlq.settings import Settings


@dataclass(frozen=True, slots=True)
class FrontDoor:
    """Hands DLQ messages to the ingest core."""

    ledger: LedgerStore
    enqueuer: ReplayEnqueuer
    org_id: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> FrontDoor:
        from tasks.application import app
        from tasks.producer import CeleryEnqueuer

        ledger = Ledger(
            aws_client("dynamodb", settings),
            settings.ledger_table,
            ttl_days=settings.ledger_ttl_days,
        )
        return cls(ledger=ledger, enqueuer=CeleryEnqueuer(app), org_id=settings.genesys_org_id)

    def handle(self, message: DlqMessage) -> IngestResult:
        """Ingest one message; raises `HandOffError` when it must stay in the queue."""
        return admit(message, ledger=self.ledger, enqueuer=self.enqueuer, org_id=self.org_id)
