"""One contract, two stores: `MemoryLedger` and the DynamoDB `Ledger` (on moto's server).

The tests are written once, here, and held against each store by a module that imports
them and provides the `backend` fixture: tests/unit/test_ledger_contract_memory.py
(`memory_backend`, no server, in `make unit`) and tests/contract/
test_ledger_contract_dynamodb.py (`dynamodb_backend`, on moto's server). Both stores must
behave the same: what each `LedgerStore` method writes, when a conditional transition is
refused, and what the reads return, in which order. DynamoDB (moto) is the reference;
the in-memory twin is what unit tests use, so where the two differ, the twin is wrong.

Both stores get a `FakeClock`: time moves only by `clock.advance()`, never by sleeping.
Items are made from real DLQ messages (`tests/helpers.py`), through the stores' own
transitions.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import RULE, genesys_event, parsed, received_message

from dlq.aws import aws_client
from dlq.clock import FakeClock, iso
from dlq.events import DlqError, EventKey
from dlq.ledger import (
    FINAL_STATUSES,
    HISTORY_LIMIT,
    REJECTED_BODY_LIMIT,
    ClaimRefused,
    Ledger,
    LedgerItem,
    LedgerStore,
    MemoryLedger,
    Receipt,
    StaleClaim,
    Status,
    create_table,
    marshal,
)
from dlq.ledger.model import route_of
from dlq.settings import Settings

TARGET = "arn:aws:sqs:us-east-1:111122223333:crm-events"
OTHER_TARGET = "arn:aws:lambda:us-east-1:111122223333:function:crm-sync"
LEASE = 60.0

Key = EventKey


# --- the two stores -------------------------------------------------------------------


class MovesSeen:
    """The status changes a store told (`dlq.ledger.moves.StatusMoves`), in order."""

    def __init__(self) -> None:
        self.moves: list[tuple[Status | None, Status]] = []

    def moved(self, old: Status | None, new: Status) -> None:
        self.moves.append((old, new))

    def net(self) -> Counter[Status]:
        """How many items each status holds, by the moves alone."""
        held: Counter[Status] = Counter()
        for old, new in self.moves:
            if old is not None:
                held[old] -= 1
            held[new] += 1
        return +held


@dataclass(frozen=True)
class Backend:
    """A store under test, its clock, a peek at the raw attributes it holds, and the
    status changes it told."""

    ledger: LedgerStore
    clock: FakeClock
    stored: Callable[[EventKey], dict[str, Any] | None]
    seen: MovesSeen


def memory_backend() -> Backend:
    """`MemoryLedger` on a fresh `FakeClock`."""
    clock = FakeClock()
    seen = MovesSeen()
    memory = MemoryLedger(clock=clock, moves=seen)

    def held(key: EventKey) -> dict[str, Any] | None:
        return copy.deepcopy(memory._items.get((key.event_id, route_of(key))))

    return Backend(memory, clock, held, seen)


def dynamodb_backend(settings: Settings, table: str) -> Backend:
    """The DynamoDB `Ledger` on a new `table` (created here), on a fresh `FakeClock`."""
    clock = FakeClock()
    client = aws_client("dynamodb", settings)
    create_table(client, table)

    def stored(key: EventKey) -> dict[str, Any] | None:
        response = client.get_item(
            TableName=table, Key=marshal.key(key.event_id, route_of(key)), ConsistentRead=True
        )
        return marshal.plain(response["Item"]) if "Item" in response else None

    seen = MovesSeen()
    return Backend(Ledger(client, table, clock=clock, moves=seen), clock, stored, seen)


@pytest.fixture()
def ledger(backend: Backend) -> LedgerStore:
    return backend.ledger


@pytest.fixture()
def clock(backend: Backend) -> FakeClock:
    return backend.clock


@pytest.fixture()
def seen(backend: Backend) -> MovesSeen:
    return backend.seen


@pytest.fixture()
def stored(backend: Backend) -> Callable[[EventKey], dict[str, Any] | None]:
    return backend.stored


# --- making items -----------------------------------------------------------------------


def receive(
    ledger: LedgerStore,
    *,
    target: str = TARGET,
    event_id: str | None = None,
    conversation_id: str | None = None,
) -> str:
    """Put a new `received` item made from a real DLQ message; its event id."""
    event, message = parsed(
        genesys_event(event_id=event_id, conversation_id=conversation_id), target
    )
    assert ledger.put_received(event, message) is None
    return str(event.key.event_id)


def item_in(ledger: LedgerStore, status: Status) -> Key:
    """A new item brought to `status` through the store's own transitions; its key."""
    if status is Status.REJECTED:
        message = received_message("{not json", TARGET)
        assert ledger.put_rejected(message, "body is not JSON") is True
        return EventKey(f"rejected:{message.message_id}", TARGET)
    if status is Status.RESOLVED:  # an operator's word on a failed item
        key = item_in(ledger, Status.FAILED)
        ledger.resolve(current(ledger, key), reason="sent by hand", operator="ops")
        return key
    key = key_of(receive(ledger))
    if status is Status.RECEIVED:
        return key
    claimed = ledger.claim(key, lease_seconds=LEASE)
    if status is not Status.IN_PROGRESS:
        ledger.finish(
            claimed,
            status,
            outcome=status.value,
            error=None if status is Status.REPLAYED else "503 from the target",
            next_attempt_at=(ledger.clock.now() + 30 if status is Status.RETRY_SCHEDULED else None),
        )
    return key


def key_of(event_id: str, target: str = TARGET) -> EventKey:
    """The key of an item `receive` made: its messages name the helpers' rule."""
    return EventKey(event_id, target, RULE)


def current(ledger: LedgerStore, key: Key) -> LedgerItem:
    item = ledger.get(key)
    assert item is not None
    return item


def event_ids(items: Any) -> list[str]:
    return [item.event_id for item in items]


# --- ingest: put_received, put_rejected, count_duplicate ---------------------------------


def test_put_received_stores_a_new_key_as_received_and_returns_none(ledger, clock, stored):
    event, message = parsed(genesys_event(), TARGET)
    assert ledger.put_received(event, message) is None

    item = current(ledger, event.key)
    now = clock.now()
    assert (item.status, item.attempts, item.duplicates) == (Status.RECEIVED, 0, 0)
    assert item.body == message.body
    assert item.received_at == item.updated_at == iso(now)
    assert item.next_attempt_at == now
    assert (item.conversation_id, item.participant_id) == (
        event.conversation_id,
        event.participant_id,
    )
    assert item.correlation_id == event.correlation_id
    assert item.sqs_message_id == message.message_id
    assert item.dlq.error_code == "THROTTLING"
    assert item.dlq.retry_attempts == 185
    assert item.history == ({"at": iso(now), "outcome": "received"},)
    assert (item.lease_until, item.claim_token, item.last_error) == (None, None, None)
    assert stored(event.key)["expires_at"] == int(now) + 90 * 86400


def test_put_received_of_a_known_key_returns_the_existing_item_and_leaves_it_unchanged(
    ledger, clock
):
    body = genesys_event()
    first, message = parsed(body, TARGET)
    again, copy_of_it = parsed(body, TARGET)
    assert ledger.put_received(first, message) is None
    before = current(ledger, key_of(body["id"]))

    clock.advance(5)
    existing = ledger.put_received(again, copy_of_it)

    assert existing == before
    assert existing.sqs_message_id == message.message_id != copy_of_it.message_id
    assert current(ledger, key_of(body["id"])) == before


def test_put_rejected_is_keyed_by_the_sqs_message_id_and_is_idempotent(ledger, clock):
    message = received_message("{not json", TARGET, message_id="m-bad")
    assert ledger.put_rejected(message, "body is not JSON") is True
    before = current(ledger, EventKey("rejected:m-bad", TARGET))

    clock.advance(5)
    assert ledger.put_rejected(message, "another reason") is False

    assert ledger.items_for_event("rejected:m-bad") == [before]


def test_put_rejected_keeps_the_reason_and_the_raw_body(ledger, clock, stored):
    message = received_message("{not json", TARGET, message_id="m-bad")
    ledger.put_rejected(message, "body is not JSON")

    item = current(ledger, EventKey("rejected:m-bad", TARGET))
    assert (item.status, item.attempts) == (Status.REJECTED, 0)
    assert item.reject_reason == "body is not JSON"
    assert item.body == "{not json"
    assert item.sqs_message_id == "m-bad"
    assert item.history == (
        {"at": iso(clock.now()), "outcome": "rejected", "error": "body is not JSON"},
    )
    raw = stored(EventKey("rejected:m-bad", TARGET))
    assert raw["body_bytes"] == len(b"{not json")
    assert raw["body_sha256"] == hashlib.sha256(b"{not json").hexdigest()
    assert "body_truncated" not in raw


def test_put_rejected_truncates_an_oversize_body_and_keeps_its_size_and_digest(ledger, stored):
    # The cut at REJECTED_BODY_LIMIT bytes falls inside a two-byte character: dropped whole.
    body = "x" * (REJECTED_BODY_LIMIT - 1) + "é" * 1000
    message = received_message(body, TARGET, message_id="m-huge")
    assert ledger.put_rejected(message, "body is too large") is True

    assert current(ledger, EventKey("rejected:m-huge", TARGET)).body == "x" * (
        REJECTED_BODY_LIMIT - 1
    )
    raw = stored(EventKey("rejected:m-huge", TARGET))
    assert raw["body_truncated"] is True
    assert raw["body_bytes"] == len(body.encode())
    assert raw["body_sha256"] == hashlib.sha256(body.encode()).hexdigest()


def test_count_duplicate_increments_the_counter_and_changes_nothing_else(ledger, clock):
    key = key_of(receive(ledger))
    before = current(ledger, key)

    clock.advance(5)
    assert ledger.count_duplicate(key).duplicates == 1
    counted = ledger.count_duplicate(key)

    assert counted.duplicates == 2
    assert counted == current(ledger, key)
    assert counted.updated_at == before.updated_at
    assert counted.history == before.history


def test_put_rejected_with_a_key_keeps_the_event_findable_by_its_own_id(ledger, clock):
    message = received_message('{"failedMessages": []}', TARGET, message_id="m-record")
    key = EventKey("evt-named", OTHER_TARGET, "arn:aws:events:us-east-1:1:subscriber/x")
    error = DlqError(rule_arn=key.rule_arn, target_arn=OTHER_TARGET, error_code="ACCESS_DENIED")

    assert ledger.put_rejected(message, "not carried", key=key, error=error) is True
    assert ledger.put_rejected(message, "not carried", key=key, error=error) is False

    item = current(ledger, key)
    assert (item.status, item.target_arn, item.rule_arn) == (
        Status.REJECTED,
        OTHER_TARGET,
        key.rule_arn,
    )
    assert item.dlq.error_code == "ACCESS_DENIED"
    assert item.reject_reason == "not carried"
    assert ledger.items_for_event("evt-named") == [item]


def test_the_same_event_failing_at_one_target_under_two_rules_is_two_items(ledger):
    body = genesys_event()
    other_rule = RULE.replace("/crm/r", "/crm/audit")
    first, message = parsed(body, TARGET)
    second, again = parsed(body, TARGET, rule_arn=other_rule)

    assert ledger.put_received(first, message) is None
    assert ledger.put_received(second, again) is None

    items = ledger.items_for_event(body["id"])
    assert sorted(item.rule_arn or "" for item in items) == sorted([RULE, other_rule])
    assert {item.key for item in items} == {first.key, second.key}


def test_the_same_event_twice_under_one_rule_and_target_is_one_item(ledger):
    body = genesys_event()
    first, message = parsed(body, TARGET)
    again, duplicate = parsed(body, TARGET)

    assert ledger.put_received(first, message) is None
    assert ledger.put_received(again, duplicate) == current(ledger, first.key)
    assert len(ledger.items_for_event(body["id"])) == 1


def test_count_duplicate_of_an_absent_key_is_refused_and_creates_nothing(ledger):
    # A bare `ADD` would create an item holding only the key and the counter, which no
    # read can parse (it has no status) and which breaks every scan after it.
    with pytest.raises(ClaimRefused) as refused:
        ledger.count_duplicate(EventKey("never-received", TARGET))

    assert refused.value.current is None
    assert ledger.get(EventKey("never-received", TARGET)) is None
    assert list(ledger.scan()) == []


# --- claim ------------------------------------------------------------------------------


def test_claim_of_a_received_item_counts_an_attempt_and_sets_lease_and_token(ledger, clock):
    key = key_of(receive(ledger))
    clock.advance(3)

    claimed = ledger.claim(key, lease_seconds=LEASE)

    assert (claimed.status, claimed.attempts) == (Status.IN_PROGRESS, 1)
    assert claimed.lease_until == clock.now() + LEASE
    assert claimed.claim_token
    assert claimed.updated_at == iso(clock.now())
    assert claimed == current(ledger, key)


def test_claim_stamps_updated_at_with_the_clock_time_cut_to_the_millisecond(ledger, clock):
    key = key_of(receive(ledger))
    clock.advance(0.0009)  # 0.9 ms: `iso` truncates it away; it is not rounded up

    claimed = ledger.claim(key, lease_seconds=LEASE)

    assert claimed.updated_at == iso(clock.now()) == current(ledger, key).received_at


def test_claim_is_refused_while_a_live_lease_holds_the_item(ledger, clock):
    key = key_of(receive(ledger))
    holder = ledger.claim(key, lease_seconds=LEASE)

    clock.advance(LEASE)  # the lease ends *after* lease_until, not at it
    with pytest.raises(ClaimRefused) as refused:
        ledger.claim(key, lease_seconds=LEASE)

    assert refused.value.current == holder == current(ledger, key)


def test_claim_is_refused_for_a_retry_not_yet_due(ledger, clock):
    key = item_in(ledger, Status.RETRY_SCHEDULED)
    before = current(ledger, key)

    clock.advance(29.999)
    with pytest.raises(ClaimRefused) as refused:
        ledger.claim(key, lease_seconds=LEASE)

    assert refused.value.current == before == current(ledger, key)


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES))
def test_claim_is_refused_for_a_final_status(ledger, clock, status):
    key = item_in(ledger, status)
    before = current(ledger, key)

    clock.advance(10_000)
    with pytest.raises(ClaimRefused) as refused:
        ledger.claim(key, lease_seconds=LEASE)

    assert refused.value.current == before == current(ledger, key)


def test_claim_is_refused_for_an_absent_item_and_creates_nothing(ledger):
    with pytest.raises(ClaimRefused) as refused:
        ledger.claim(EventKey("never-received", TARGET), lease_seconds=LEASE)

    assert refused.value.current is None
    assert ledger.get(EventKey("never-received", TARGET)) is None


def test_claim_is_allowed_once_next_attempt_at_is_reached(ledger, clock):
    key = item_in(ledger, Status.RETRY_SCHEDULED)
    due = current(ledger, key).next_attempt_at

    clock.advance(30)
    assert clock.now() == due
    claimed = ledger.claim(key, lease_seconds=LEASE)

    assert (claimed.status, claimed.attempts) == (Status.IN_PROGRESS, 2)


def test_claim_is_allowed_once_the_lease_has_lapsed(ledger, clock):
    key = key_of(receive(ledger))
    first = ledger.claim(key, lease_seconds=LEASE)

    clock.advance(LEASE + 0.001)
    second = ledger.claim(key, lease_seconds=LEASE)

    assert second.attempts == 2
    assert second.claim_token != first.claim_token
    assert second.lease_until == round(clock.now(), 3) + LEASE


def test_concurrent_claims_have_exactly_one_winner(ledger):
    key = key_of(receive(ledger))
    barrier = threading.Barrier(8)
    winners: list[LedgerItem] = []
    refusals: list[Status | None] = []

    def contend() -> None:
        barrier.wait()
        try:
            winners.append(ledger.claim(key, lease_seconds=LEASE))
        except ClaimRefused as exc:
            refusals.append(exc.current.status if exc.current else None)

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(winners) == 1
    assert refusals == [Status.IN_PROGRESS] * 7
    assert current(ledger, key).attempts == 1


# --- finish -----------------------------------------------------------------------------


def test_finish_with_the_claim_token_ends_the_attempt_and_records_it(ledger, clock):
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)
    clock.advance(2)

    done = ledger.finish(claimed, Status.REPLAYED, outcome="replayed", task_id="task-1")

    assert (done.status, done.attempts) == (Status.REPLAYED, 1)
    assert done.updated_at == iso(clock.now())
    assert (done.lease_until, done.claim_token) == (None, None)
    assert done.history == (
        *claimed.history,
        {"at": iso(clock.now()), "outcome": "replayed", "task_id": "task-1"},
    )
    assert done == current(ledger, key)


def test_finish_records_where_the_event_went_and_the_receipt(ledger, clock):
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)

    done = ledger.finish(
        claimed,
        Status.REPLAYED,
        outcome="replayed",
        sent=Receipt("arn:x", "msg-1", route="rule", transformed=True, digest="sha256:ab"),
    )

    assert done.history[-1] == {
        "at": iso(clock.now()),
        "outcome": "replayed",
        "delivered_to": "arn:x",
        "receipt": "msg-1",
        "route": "rule",
        "transformed": True,
        "payload_digest": "sha256:ab",
    }
    assert done == current(ledger, key)


def test_finish_sets_last_error_and_next_attempt_at(ledger, clock):
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)
    due = clock.now() + 45.5

    later = ledger.finish(
        claimed, Status.RETRY_SCHEDULED, outcome="retry", error="503", next_attempt_at=due
    )

    assert (later.status, later.last_error, later.next_attempt_at) == (
        Status.RETRY_SCHEDULED,
        "503",
        due,
    )
    assert later.history[-1] == {"at": iso(clock.now()), "outcome": "retry", "error": "503"}
    assert later == current(ledger, key)


def test_finish_without_next_attempt_at_removes_it(ledger):
    key = key_of(receive(ledger))
    assert current(ledger, key).next_attempt_at is not None
    claimed = ledger.claim(key, lease_seconds=LEASE)

    done = ledger.finish(claimed, Status.FAILED, outcome="failed", error="400")

    assert done.next_attempt_at is None
    assert current(ledger, key).next_attempt_at is None


def test_finish_without_an_error_keeps_the_last_error(ledger, clock):
    key = item_in(ledger, Status.RETRY_SCHEDULED)
    clock.advance(30)
    claimed = ledger.claim(key, lease_seconds=LEASE)

    done = ledger.finish(claimed, Status.REPLAYED, outcome="replayed")

    assert done.last_error == "503 from the target"
    assert "error" not in done.history[-1]


def test_finish_cuts_a_long_error_to_1000_characters_and_500_in_the_history(ledger):
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)

    done = ledger.finish(claimed, Status.FAILED, outcome="failed", error="e" * 5000)

    assert done.last_error == "e" * 1000
    assert done.history[-1]["error"] == "e" * 500


def test_finish_bounds_the_history_to_the_newest_history_limit_entries(ledger):
    key = key_of(receive(ledger))
    rounds = HISTORY_LIMIT + 5
    for n in range(rounds):
        claimed = ledger.claim(key, lease_seconds=LEASE)
        ledger.finish(
            claimed,
            Status.RETRY_SCHEDULED,
            outcome=f"retry-{n}",
            next_attempt_at=ledger.clock.now(),
        )

    history = current(ledger, key).history
    assert len(history) == HISTORY_LIMIT
    assert [entry["outcome"] for entry in history] == [
        f"retry-{n}" for n in range(rounds - HISTORY_LIMIT, rounds)
    ]


def test_finish_after_someone_else_reclaimed_the_item_raises_stale_claim(ledger, clock):
    key = key_of(receive(ledger))
    lost = ledger.claim(key, lease_seconds=LEASE)
    clock.advance(LEASE + 1)
    taken_over = ledger.claim(key, lease_seconds=LEASE)

    with pytest.raises(StaleClaim):
        ledger.finish(lost, Status.REPLAYED, outcome="replayed")

    assert current(ledger, key) == taken_over


def test_finish_twice_with_one_claim_raises_stale_claim(ledger):
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)
    done = ledger.finish(claimed, Status.REPLAYED, outcome="replayed")

    with pytest.raises(StaleClaim):
        ledger.finish(claimed, Status.FAILED, outcome="failed", error="late")

    assert current(ledger, key) == done


@pytest.mark.parametrize("status", [Status.IN_PROGRESS, Status.RECEIVED])
def test_finish_refuses_a_waiting_status_with_value_error(ledger, status):
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)

    with pytest.raises(ValueError, match=status.value):
        ledger.finish(claimed, status, outcome="nonsense")

    assert current(ledger, key) == claimed


def test_finish_to_rejected_keeps_the_reason_and_the_code(ledger):
    # The worker's verdict on an event outside the trust boundary (its rule's pattern).
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)

    ledger.finish(
        claimed, Status.REJECTED, outcome="rejected", error="no match", error_code="PatternMismatch"
    )

    item = current(ledger, key)
    assert (item.status, item.reject_reason) == (Status.REJECTED, "no match")
    assert (item.last_error, item.last_error_code) == ("no match", "PatternMismatch")
    assert item.lease_until is None and item.claim_token is None


def test_put_rejected_keeps_a_code_when_given(ledger):
    message = received_message("{}", TARGET)

    assert ledger.put_rejected(message, "bus not allowed", code="BusNotAllowed") is True

    item = current(ledger, EventKey(f"rejected:{message.message_id}", TARGET))
    assert (item.reject_reason, item.last_error_code) == ("bus not allowed", "BusNotAllowed")


# --- postpone ---------------------------------------------------------------------------


def test_postpone_returns_the_attempt_and_makes_the_item_due_at_until(ledger, clock):
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)
    until = clock.now() + 120

    assert ledger.postpone(claimed, until=until) is None

    waiting = current(ledger, key)
    assert (waiting.status, waiting.attempts) == (Status.RETRY_SCHEDULED, 0)
    assert waiting.next_attempt_at == until
    assert (waiting.lease_until, waiting.claim_token) == (None, None)
    assert waiting.updated_at == iso(clock.now())
    assert waiting.history == claimed.history
    clock.advance(119.999)
    with pytest.raises(ClaimRefused):
        ledger.claim(key, lease_seconds=LEASE)
    clock.advance(0.001)
    assert ledger.claim(key, lease_seconds=LEASE).attempts == 1


def test_postpone_after_the_claim_was_lost_raises_stale_claim(ledger, clock):
    key = key_of(receive(ledger))
    lost = ledger.claim(key, lease_seconds=LEASE)
    clock.advance(LEASE + 1)
    taken_over = ledger.claim(key, lease_seconds=LEASE)

    with pytest.raises(StaleClaim):
        ledger.postpone(lost, until=clock.now() + 120)

    assert current(ledger, key) == taken_over


# --- redrive ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.FAILED, Status.EXHAUSTED])
def test_redrive_puts_a_failed_or_exhausted_item_back_to_received_with_a_note(
    ledger, clock, stored, status
):
    key = item_in(ledger, status)
    before = current(ledger, key)
    clock.advance(3600)

    item = ledger.redrive(key, note="redriven by ops")

    assert (item.status, item.attempts) == (Status.RECEIVED, 0)
    assert item.redriven_at == iso(clock.now())
    assert item.next_attempt_at == clock.now()
    assert item.updated_at == iso(clock.now())
    assert item.history == (
        *before.history,
        {"at": iso(clock.now()), "outcome": "redriven by ops", "error": "503 from the target"},
    )
    assert item == current(ledger, key)
    assert stored(key)["redrives"] == 1
    assert ledger.claim(key, lease_seconds=LEASE).attempts == 1


def test_redrive_moves_the_last_error_and_its_code_to_the_history(ledger, clock, stored):
    key = key_of(receive(ledger))
    claimed = ledger.claim(key, lease_seconds=LEASE)
    ledger.finish(
        claimed, Status.EXHAUSTED, outcome="exhausted", error="503 again", error_code="HTTP503"
    )

    item = ledger.redrive(key, note="redrive by operator")

    assert (item.last_error, item.last_error_code) == (None, None)
    assert not {"last_error", "last_error_code"} & set(stored(key))
    assert item.history[-1] == {
        "at": iso(clock.now()),
        "outcome": "redrive by operator",
        "error": "503 again",
        "error_code": "HTTP503",
    }


def test_the_error_a_redrive_left_behind_is_not_the_next_attempts(ledger, clock):
    key = item_in(ledger, Status.FAILED)
    ledger.redrive(key)
    claimed = ledger.claim(key, lease_seconds=LEASE)

    after = ledger.finish(claimed, Status.REPLAYED, outcome="replayed")

    assert (after.status, after.last_error, after.last_error_code) == (Status.REPLAYED, None, None)


@pytest.mark.parametrize(
    "status",
    [
        Status.RECEIVED,
        Status.IN_PROGRESS,
        Status.RETRY_SCHEDULED,
        Status.REPLAYED,
        Status.REJECTED,
    ],
)
def test_redrive_is_refused_for_any_other_status(ledger, status):
    key = item_in(ledger, status)
    before = current(ledger, key)

    with pytest.raises(ClaimRefused) as refused:
        ledger.redrive(key)

    assert refused.value.current == before == current(ledger, key)


def test_redrive_of_an_absent_item_is_refused_with_no_current_item(ledger):
    with pytest.raises(ClaimRefused) as refused:
        ledger.redrive(EventKey("never-received", TARGET))

    assert refused.value.current is None
    assert ledger.get(EventKey("never-received", TARGET)) is None


def test_redrive_is_refused_when_the_item_changed_since_it_was_read(ledger, clock, monkeypatch):
    key = item_in(ledger, Status.FAILED)
    read = ledger.get

    def read_then_let_another_operator_act(key: EventKey) -> LedgerItem | None:
        """Between our read and our write, someone redrives the item and it fails again:
        the status is `failed` as we read it, but the item is not the one we read."""
        seen = read(key)
        monkeypatch.setattr(ledger, "get", read)
        clock.advance(1)
        ledger.redrive(key, note="the other operator")
        claimed = ledger.claim(key, lease_seconds=LEASE)
        ledger.finish(claimed, Status.FAILED, outcome="failed", error="still 400")
        return seen

    monkeypatch.setattr(ledger, "get", read_then_let_another_operator_act)
    with pytest.raises(ClaimRefused) as refused:
        ledger.redrive(key)

    after = current(ledger, key)
    assert refused.value.current == after
    assert (after.status, after.attempts, after.last_error) == (Status.FAILED, 1, "still 400")
    assert [entry["outcome"] for entry in after.history[-2:]] == ["the other operator", "failed"]


# --- forget -----------------------------------------------------------------------------

#: What `forget` removes from an item (the texts that may hold customer data).
FORGOTTEN = {"body", "body_truncated", "last_error", "error_message", "reject_reason"}
#: What a history entry keeps after `forget`.
HISTORY_FACTS = {
    "at", "outcome", "task_id", "delivered_to", "route", "transformed", "payload_digest", "times",
    "since",
}  # fmt: skip
PHONE = "+13175550199"


def failed_with_texts(ledger: LedgerStore, conversation_id: str) -> Key:
    """A failed item whose texts quote the customer: its error, its note, the receipt."""
    key = key_of(receive(ledger, conversation_id=conversation_id))
    claimed = ledger.claim(key, lease_seconds=LEASE)
    ledger.finish(
        claimed,
        Status.FAILED,
        outcome="failed",
        error=f"400 from the target: unknown caller {PHONE}",
        error_code="HTTP400",
        task_id="task-1",
        sent=Receipt(delivered_to=TARGET, answer=f"echo {PHONE}", route="rule", digest="d1"),
        note=f"ordering given up for {PHONE}",
    )
    return key


def test_forget_drops_the_body_and_every_text_and_keeps_status_attempts_codes_and_times(
    ledger, clock, stored
):
    conversation = str(uuid.uuid4())
    key = failed_with_texts(ledger, conversation)
    before = stored(key)
    assert FORGOTTEN - {"body_truncated", "reject_reason"} <= set(before)
    clock.advance(60)

    item = ledger.forget(current(ledger, key), note="forgotten by ops")

    after = stored(key)
    assert not FORGOTTEN & set(after)
    assert PHONE not in repr(after) and conversation not in after.get("body", "")
    kept = {k: v for k, v in before.items() if k not in FORGOTTEN | {"history"}}
    assert {k: v for k, v in after.items() if k not in {"history", "forgotten_at"}} == kept
    assert after["forgotten_at"] == iso(clock.now())
    assert after["history"] == [
        *({k: v for k, v in h.items() if k in HISTORY_FACTS} for h in before["history"]),
        {"at": iso(clock.now()), "outcome": "forgotten by ops"},
    ]
    assert after["history"][-2]["delivered_to"] == TARGET  # where it went is not a text
    assert (item.status, item.attempts, item.last_error_code) == (Status.FAILED, 1, "HTTP400")
    assert (item.body, item.last_error, item.forgotten_at) == ("", None, iso(clock.now()))
    assert item == current(ledger, key)


def test_forget_of_a_rejected_item_drops_its_raw_body_and_reason_and_keeps_its_digest(
    ledger, stored
):
    key = item_in(ledger, Status.REJECTED)
    before = stored(key)

    ledger.forget(current(ledger, key))

    after = stored(key)
    assert not FORGOTTEN & set(after)
    assert (after["status"], after["body_sha256"], after["body_bytes"]) == (
        "rejected",
        before["body_sha256"],
        before["body_bytes"],
    )


def test_forget_keeps_the_item_where_the_indexes_find_it(ledger):
    conversation = str(uuid.uuid4())
    key = failed_with_texts(ledger, conversation)

    ledger.forget(current(ledger, key))

    assert event_ids(ledger.by_status(Status.FAILED)) == [key.event_id]
    assert event_ids(ledger.by_conversation(conversation)) == [key.event_id]


@pytest.mark.parametrize("status", [Status.RECEIVED, Status.IN_PROGRESS, Status.RETRY_SCHEDULED])
def test_forget_is_refused_for_a_pending_item_which_still_needs_its_body(ledger, stored, status):
    key = item_in(ledger, status)
    before = stored(key)

    with pytest.raises(ClaimRefused) as refused:
        ledger.forget(current(ledger, key))

    assert refused.value.current == current(ledger, key)
    assert stored(key) == before


def test_forget_is_refused_when_the_item_changed_since_it_was_listed(ledger, clock, stored):
    key = item_in(ledger, Status.FAILED)
    listed = current(ledger, key)
    clock.advance(1)
    ledger.redrive(key, note="the other operator")  # back to work: its body is needed
    before = stored(key)

    with pytest.raises(ClaimRefused) as refused:
        ledger.forget(listed)

    assert refused.value.current == current(ledger, key)
    assert stored(key) == before and "body" in before


def test_forget_twice_is_refused_the_second_time_and_changes_nothing(ledger, clock, stored):
    key = item_in(ledger, Status.REPLAYED)
    ledger.forget(current(ledger, key))
    forgotten = current(ledger, key)
    before = stored(key)
    clock.advance(1)

    with pytest.raises(ClaimRefused):
        ledger.forget(forgotten)

    assert stored(key) == before


@pytest.mark.parametrize("status", [Status.FAILED, Status.EXHAUSTED])
def test_a_forgotten_item_is_never_redriven(ledger, stored, status):
    key = item_in(ledger, status)
    ledger.forget(current(ledger, key))
    before = stored(key)

    with pytest.raises(ClaimRefused):
        ledger.redrive(key)

    assert stored(key) == before


def test_a_redrive_that_read_the_item_before_it_was_forgotten_is_refused(
    ledger, stored, monkeypatch
):
    key = item_in(ledger, Status.FAILED)
    read = ledger.get

    def read_then_let_another_operator_forget(key: EventKey) -> LedgerItem | None:
        """Between the redrive's read and its write, another operator forgets the item."""
        seen = read(key)
        monkeypatch.setattr(ledger, "get", read)
        assert seen is not None
        ledger.forget(seen)
        return seen

    monkeypatch.setattr(ledger, "get", read_then_let_another_operator_forget)
    with pytest.raises(ClaimRefused):
        ledger.redrive(key)

    after = stored(key)
    assert (after["status"], "body" in after) == ("failed", False)


# --- reading ----------------------------------------------------------------------------


def test_get_of_an_absent_key_is_none(ledger):
    receive(ledger)
    assert ledger.get(EventKey("never-received", TARGET)) is None


def test_items_for_event_lists_every_target_of_one_event_in_target_order(ledger):
    event_id = str(uuid.uuid4())
    for target in (TARGET, OTHER_TARGET):
        receive(ledger, event_id=event_id, target=target)
    receive(ledger)  # another event

    items = ledger.items_for_event(event_id)

    assert [item.target_arn for item in items] == [OTHER_TARGET, TARGET]
    assert event_ids(items) == [event_id, event_id]
    assert ledger.items_for_event("never-received") == []


def test_by_status_lists_one_status_oldest_update_first(ledger, clock):
    for event_id in ("evt-c", "evt-a", "evt-b"):
        receive(ledger, event_id=event_id)
        clock.advance(1)
    ledger.claim(key_of("evt-a"), lease_seconds=LEASE)

    assert event_ids(ledger.by_status(Status.RECEIVED)) == ["evt-c", "evt-b"]
    assert event_ids(ledger.by_status(Status.IN_PROGRESS)) == ["evt-a"]
    assert event_ids(ledger.by_status(Status.FAILED)) == []


def test_by_status_newest_first_reads_the_index_backwards(ledger, clock):
    for event_id in ("evt-c", "evt-a", "evt-b"):
        receive(ledger, event_id=event_id)
        clock.advance(1)

    assert event_ids(ledger.by_status(Status.RECEIVED, newest_first=True)) == [
        "evt-b",
        "evt-a",
        "evt-c",
    ]


def test_by_status_limit_stops_after_that_many_items(ledger, clock):
    for n in range(5):
        receive(ledger, event_id=f"evt-{n}")
        clock.advance(1)

    assert event_ids(ledger.by_status(Status.RECEIVED, limit=2)) == ["evt-0", "evt-1"]
    newest = ledger.by_status(Status.RECEIVED, newest_first=True, limit=2)
    assert event_ids(newest) == ["evt-4", "evt-3"]


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        pytest.param({"updated_before": 2}, ["evt-0", "evt-1"], id="before-is-exclusive"),
        pytest.param({"updated_after": 2}, ["evt-3", "evt-4"], id="after-is-exclusive"),
        pytest.param(
            {"updated_after": 1, "updated_before": 3},
            ["evt-1", "evt-2", "evt-3"],
            id="both-are-inclusive",
        ),
    ],
)
def test_by_status_bounds_on_updated_at(ledger, clock, bounds, expected):
    moments = []
    for n in range(5):
        receive(ledger, event_id=f"evt-{n}")
        moments.append(iso(clock.now()))
        clock.advance(1)
    receive(ledger, event_id="other-status")
    ledger.claim(key_of("other-status"), lease_seconds=LEASE)

    wanted = {name: moments[n] for name, n in bounds.items()}

    assert event_ids(ledger.by_status(Status.RECEIVED, **wanted)) == expected


def test_by_conversation_lists_one_conversation_oldest_update_first(ledger, clock):
    conversation = str(uuid.uuid4())
    for event_id in ("evt-c", "evt-a", "evt-b"):
        receive(ledger, event_id=event_id, conversation_id=conversation)
        clock.advance(1)
    receive(ledger, event_id="evt-other")  # another conversation
    claimed = ledger.claim(key_of("evt-c"), lease_seconds=LEASE)
    ledger.finish(claimed, Status.REPLAYED, outcome="replayed")

    assert event_ids(ledger.by_conversation(conversation)) == ["evt-a", "evt-b", "evt-c"]
    assert ledger.by_conversation(str(uuid.uuid4())) == []


def test_index_reads_break_updated_at_ties_in_key_order(ledger):
    # Moto's order, which the twin copies so that both give the same answers; DynamoDB
    # itself promises no order among equal sort keys, so callers must not rely on it.
    conversation = str(uuid.uuid4())
    for target in (TARGET, OTHER_TARGET):
        for event_id in ("evt-b", "evt-c", "evt-a"):
            receive(ledger, event_id=event_id, target=target, conversation_id=conversation)
    in_key_order = [
        (event_id, target)
        for event_id in ("evt-a", "evt-b", "evt-c")
        for target in (OTHER_TARGET, TARGET)
    ]

    def keys(items: Any) -> list[tuple[str, str]]:
        return [(item.event_id, item.target_arn) for item in items]

    assert keys(ledger.by_status(Status.RECEIVED)) == in_key_order
    assert keys(ledger.by_conversation(conversation)) == in_key_order


def test_scan_lists_every_item_in_key_order(ledger):
    for target in (TARGET, OTHER_TARGET):
        for event_id in ("evt-b", "evt-c", "evt-a"):
            receive(ledger, event_id=event_id, target=target)
    ledger.put_rejected(received_message("{not json", TARGET, message_id="m-bad"), "not JSON")

    assert [(item.event_id, item.target_arn) for item in ledger.scan()] == [
        ("evt-a", OTHER_TARGET),
        ("evt-a", TARGET),
        ("evt-b", OTHER_TARGET),
        ("evt-b", TARGET),
        ("evt-c", OTHER_TARGET),
        ("evt-c", TARGET),
        ("rejected:m-bad", TARGET),
    ]
