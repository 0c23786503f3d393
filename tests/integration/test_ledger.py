"""The DynamoDB ledger on moto's server: items, conditional transitions, indexes."""

from __future__ import annotations

import threading
import uuid

import pytest
from helpers import genesys_event, new_ledger, parsed, received_message

from dlq.aws import aws_client
from dlq.ledger import HISTORY_LIMIT, ClaimRefused, StaleClaim, Status, create_table
from dlq.settings import MAX_EVENT_BYTES

TARGET = "arn:aws:sqs:us-east-1:111122223333:crm-events"


@pytest.fixture()
def ledger(moto_server, make_settings, unique):
    return new_ledger(make_settings(), f"ledger-{unique}")


def test_create_table_is_idempotent(moto_server, make_settings, unique):
    client = aws_client("dynamodb", make_settings())
    assert create_table(client, f"t-{unique}") is True
    assert create_table(client, f"t-{unique}") is False
    ttl = client.describe_time_to_live(TableName=f"t-{unique}")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires_at"


def test_a_received_item_keeps_the_event_and_the_dlq_context(ledger):
    event, message = parsed(genesys_event(), TARGET)
    assert ledger.put_received(event, message) is None
    item = ledger.get(event.key)
    assert item.status is Status.RECEIVED
    assert item.body == message.body
    assert item.conversation_id == event.conversation_id
    assert item.dlq.error_code == "THROTTLING"
    assert item.dlq.retry_attempts == 185
    assert item.dlq.rule_arn.startswith("arn:aws:events:")
    assert item.attempts == 0


def test_the_same_event_twice_is_one_item_and_counted_as_a_duplicate(ledger):
    body = genesys_event()
    first, message = parsed(body, TARGET)
    second, again = parsed(body, TARGET)
    assert message.message_id != again.message_id
    assert ledger.put_received(first, message) is None
    existing = ledger.put_received(second, again)
    assert existing is not None and existing.sqs_message_id == message.message_id
    assert ledger.count_duplicate(first.key).duplicates == 1
    assert len(ledger.items_for_event(first.key.event_id)) == 1


def test_the_same_event_for_two_targets_is_two_items(ledger):
    body = genesys_event()
    for target in (TARGET, "arn:aws:lambda:us-east-1:111122223333:function:crm-sync"):
        event, message = parsed(body, target)
        assert ledger.put_received(event, message) is None
    assert len(ledger.items_for_event(body["id"])) == 2


def test_the_largest_eventbridge_event_fits_in_an_item(ledger):
    body = genesys_event()
    body["detail"]["eventBody"]["padding"] = ""
    size = len(str(body).encode())
    body["detail"]["eventBody"]["padding"] = "x" * (MAX_EVENT_BYTES - size - 200)
    event, message = parsed(body, TARGET)
    assert len(message.body.encode()) > MAX_EVENT_BYTES - 400
    assert ledger.put_received(event, message) is None
    assert ledger.get(event.key).body == message.body


def test_a_rejected_message_keeps_its_reason_and_raw_body(ledger):
    message = received_message("{not json", TARGET, message_id="m-bad")
    assert ledger.put_rejected(message, "body is not JSON") is True
    assert ledger.put_rejected(message, "body is not JSON") is False
    [item] = ledger.items_for_event("rejected:m-bad")
    assert item.status is Status.REJECTED
    assert item.reject_reason == "body is not JSON"
    assert item.body == "{not json"


def test_two_concurrent_claims_have_exactly_one_winner(ledger):
    event, message = parsed(genesys_event(), TARGET)
    ledger.put_received(event, message)
    barrier = threading.Barrier(8)
    winners, refusals = [], []

    def contend():
        barrier.wait()
        try:
            winners.append(ledger.claim(event.key, lease_seconds=60))
        except ClaimRefused as exc:
            refusals.append(exc.current.status)

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert refusals == [Status.IN_PROGRESS] * 7
    assert winners[0].attempts == 1


def test_two_concurrent_finishes_have_exactly_one_winner(ledger):
    event, message = parsed(genesys_event(), TARGET)
    ledger.put_received(event, message)
    claimed = ledger.claim(event.key, lease_seconds=60)
    barrier = threading.Barrier(2)
    results = []

    def finish(status):
        barrier.wait()
        try:
            results.append(ledger.finish(claimed, status, outcome=status.value).status)
        except StaleClaim:
            results.append("stale")

    threads = [threading.Thread(target=finish, args=(s,)) for s in (Status.REPLAYED, Status.FAILED)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(map(str, results)).count("stale") == 1


def test_a_replayed_item_cannot_be_claimed_again(ledger):
    event, message = parsed(genesys_event(), TARGET)
    ledger.put_received(event, message)
    claimed = ledger.claim(event.key, lease_seconds=60)
    ledger.finish(claimed, Status.REPLAYED, outcome="replayed")
    with pytest.raises(ClaimRefused) as caught:
        ledger.claim(event.key, lease_seconds=60)
    assert caught.value.current.status is Status.REPLAYED


def test_an_expired_lease_can_be_taken_over_and_the_old_claim_goes_stale(ledger):
    event, message = parsed(genesys_event(), TARGET)
    ledger.put_received(event, message)
    first = ledger.claim(event.key, lease_seconds=-1)
    second = ledger.claim(event.key, lease_seconds=60)
    assert second.attempts == 2
    with pytest.raises(StaleClaim):
        ledger.finish(first, Status.REPLAYED, outcome="replayed")
    assert ledger.finish(second, Status.REPLAYED, outcome="replayed").status is Status.REPLAYED


@pytest.mark.parametrize(("next_attempt_at", "claimable"), [(4e9, False), (1.0, True)])
def test_a_retry_is_claimable_only_when_due(ledger, next_attempt_at, claimable):
    event, message = parsed(genesys_event(), TARGET)
    ledger.put_received(event, message)
    claimed = ledger.claim(event.key, lease_seconds=60)
    later = ledger.finish(
        claimed,
        Status.RETRY_SCHEDULED,
        outcome="retry",
        error="503",
        next_attempt_at=next_attempt_at,
    )
    assert later.last_error == "503"
    if claimable:
        assert ledger.claim(event.key, lease_seconds=60).attempts == 2
    else:
        with pytest.raises(ClaimRefused):
            ledger.claim(event.key, lease_seconds=60)


def test_the_history_is_bounded(ledger):
    event, message = parsed(genesys_event(), TARGET)
    ledger.put_received(event, message)
    for _ in range(HISTORY_LIMIT + 5):
        claimed = ledger.claim(event.key, lease_seconds=-1)
        ledger.finish(claimed, Status.FAILED, outcome="failed", error="boom")
        ledger.redrive(event.key)
    item = ledger.get(event.key)
    assert len(item.history) == HISTORY_LIMIT
    assert item.history[-1]["outcome"] == "redrive"


def test_redrive_moves_only_failed_or_exhausted_items_back_to_received(ledger):
    event, message = parsed(genesys_event(), TARGET)
    ledger.put_received(event, message)
    with pytest.raises(ClaimRefused):
        ledger.redrive(event.key)
    claimed = ledger.claim(event.key, lease_seconds=60)
    ledger.finish(claimed, Status.EXHAUSTED, outcome="exhausted", error="still down")
    item = ledger.redrive(event.key)
    assert (item.status, item.attempts) == (Status.RECEIVED, 0)
    assert item.last_error is None  # the error it was redriven from is history now
    assert item.history[-1]["error"] == "still down"


def test_the_indexes_find_items_by_status_and_by_conversation(ledger):
    conversation = str(uuid.uuid4())
    keys = []
    for topic in ("customer.start", "customer.end", "acw"):
        event, message = parsed(genesys_event(conversation_id=conversation, topic=topic), TARGET)
        ledger.put_received(event, message)
        keys.append(event.key)
    claimed = ledger.claim(keys[0], lease_seconds=60)
    ledger.finish(claimed, Status.REPLAYED, outcome="replayed")
    assert {i.key for i in ledger.by_conversation(conversation)} == set(keys)
    assert {i.key for i in ledger.by_status(Status.RECEIVED)} >= set(keys[1:])
    assert keys[0] in {i.key for i in ledger.by_status(Status.REPLAYED)}
