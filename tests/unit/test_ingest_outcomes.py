"""What the ingest says of a message it receives again: SQS delivers at least once, and a
delete that fails (or a visibility timeout that runs out on a busy host) brings it back."""

from __future__ import annotations

import json

from helpers import genesys_event, received_message

from dlq.ingest import IngestOutcome, admit
from dlq.ledger import MemoryLedger, Status

from .fakes import TARGET_ARN, RecordingEnqueuer


def test_a_rejected_message_received_again_is_one_rejected_item_and_then_a_duplicate():
    ledger, enqueuer = MemoryLedger(), RecordingEnqueuer()
    message = received_message("{not json", TARGET_ARN)

    first = admit(message, ledger=ledger, enqueuer=enqueuer)
    again = admit(message, ledger=ledger, enqueuer=enqueuer)

    assert (first.outcome, again.outcome) == (IngestOutcome.REJECTED, IngestOutcome.DUPLICATE)
    assert again.reason == f"already kept as rejected: {first.reason}"
    assert [i.status for i in ledger.scan()] == [Status.REJECTED]
    assert enqueuer.keys == []


def test_a_message_outside_the_trust_boundary_received_again_counts_one_rejection():
    ledger, enqueuer = MemoryLedger(), RecordingEnqueuer()
    event = {**genesys_event(), "source": "aws.partner/example.com/other"}
    message = received_message(json.dumps(event), TARGET_ARN)

    outcomes = [admit(message, ledger=ledger, enqueuer=enqueuer).outcome for _ in range(3)]

    assert outcomes == [IngestOutcome.REJECTED, IngestOutcome.DUPLICATE, IngestOutcome.DUPLICATE]
    assert len(list(ledger.scan())) == 1
