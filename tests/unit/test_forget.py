"""`dlq.forget`: which items an operator's forget takes, and what it leaves (MemoryLedger)."""

from __future__ import annotations

import json
import uuid

import pytest
from helpers import RULE, genesys_event, parsed, received_message

from dlq.clock import FakeClock, iso
from dlq.events import EventKey
from dlq.forget import ForgetFilter, forget, select
from dlq.ledger import LedgerItem, MemoryLedger, Status

TARGET = "arn:aws:sqs:us-east-1:111122223333:crm-events"


def item(ledger: MemoryLedger, conversation_id: str, status: Status) -> LedgerItem:
    """An item of the conversation brought to `status` by the store's own transitions."""
    event, message = parsed(genesys_event(conversation_id=conversation_id), TARGET)
    ledger.put_received(event, message)
    key = EventKey(event.key.event_id, TARGET, RULE)
    if status is not Status.RECEIVED:
        claimed = ledger.claim(key, lease_seconds=60)
        if status is not Status.IN_PROGRESS:
            ledger.finish(claimed, status, outcome=status.value, error="503", next_attempt_at=(
                ledger.clock.now() + 60 if status is Status.RETRY_SCHEDULED else None))  # fmt: skip
    found = ledger.get(key)
    assert found is not None
    return found


def ids(items: list[LedgerItem]) -> set[str]:
    return {i.event_id for i in items}


def test_a_filter_names_a_conversation_or_a_time() -> None:
    with pytest.raises(ValueError, match="forget never takes everything"):
        ForgetFilter()


def test_a_conversation_s_final_items_are_taken_and_its_pending_ones_reported(
    ledger: MemoryLedger,
) -> None:
    conversation = str(uuid.uuid4())
    final = [item(ledger, conversation, s) for s in (Status.REPLAYED, Status.FAILED)]
    pending = [item(ledger, conversation, s) for s in (Status.RECEIVED, Status.RETRY_SCHEDULED)]
    item(ledger, str(uuid.uuid4()), Status.FAILED)  # another conversation

    chosen = select(ledger, ForgetFilter(conversation_id=conversation))

    assert ids(chosen.forgettable) == ids(final)
    assert ids(chosen.pending) == ids(pending)


def test_rejected_messages_that_mention_the_conversation_are_taken_too(
    ledger: MemoryLedger,
) -> None:
    conversation = str(uuid.uuid4())
    mentions = received_message(json.dumps(genesys_event(conversation_id=conversation)), TARGET)
    ledger.put_rejected(mentions, "event from another org")
    ledger.put_rejected(received_message("{not json", TARGET), "body is not JSON")

    chosen = select(ledger, ForgetFilter(conversation_id=conversation))

    assert ids(chosen.forgettable) == {f"rejected:{mentions.message_id}"}


def test_a_time_takes_what_was_last_updated_before_it_in_every_status(
    ledger: MemoryLedger, clock: FakeClock
) -> None:
    old = [item(ledger, str(uuid.uuid4()), s) for s in (Status.REPLAYED, Status.EXHAUSTED)]
    old_pending = item(ledger, str(uuid.uuid4()), Status.RECEIVED)
    clock.advance(3600)
    cutoff = iso(clock.now())
    clock.advance(1)
    item(ledger, str(uuid.uuid4()), Status.FAILED)  # after the cutoff

    chosen = select(ledger, ForgetFilter(updated_before=cutoff))

    assert ids(chosen.forgettable) == ids(old)
    assert ids(chosen.pending) == {old_pending.event_id}


def test_what_was_forgotten_already_is_not_taken_again(ledger: MemoryLedger) -> None:
    conversation = str(uuid.uuid4())
    done = item(ledger, conversation, Status.REPLAYED)
    forget(ledger, [done])

    chosen = select(ledger, ForgetFilter(conversation_id=conversation))

    assert (chosen.forgettable, chosen.pending) == ([], [])


def test_an_item_that_changed_since_it_was_listed_is_skipped(
    ledger: MemoryLedger, clock: FakeClock
) -> None:
    conversation = str(uuid.uuid4())
    listed = item(ledger, conversation, Status.FAILED)
    clock.advance(1)
    ledger.redrive(listed.key)  # back to work meanwhile
    other = item(ledger, conversation, Status.REPLAYED)

    result = forget(ledger, [listed, other], note="forgotten by ops")

    assert result.forgotten == 1
    assert ids(result.skipped) == {listed.event_id}
    redriven = ledger.get(listed.key)
    assert redriven is not None and redriven.body and redriven.forgotten_at is None
