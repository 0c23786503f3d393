"""Pauses as the ledger keeps them (dlq.ledger.pauses): who, why, until, and the age they
do not count."""

from __future__ import annotations

import pytest

from dlq.ledger.model import key_part
from dlq.ledger.pauses import (
    PAUSES_KEY,
    MemoryPauses,
    Pause,
    PauseBook,
    PauseConflict,
    is_reserved,
)

TARGET = "arn:aws:sqs:us-east-1:111122223333:crm"
OTHER = "arn:aws:sqs:us-east-1:111122223333:billing"


def paused_at(since: float, *, until: float | None = None, target: str = TARGET) -> PauseBook:
    pause = Pause(target, since=since, reason="CRM maintenance", operator="ops", until=until)
    return PauseBook().paused(pause, now=since)


def test_a_pause_is_in_effect_for_its_target_only() -> None:
    book = paused_at(100.0)
    assert book.active(TARGET, 200.0) is not None
    assert book.active(OTHER, 200.0) is None


def test_a_pause_for_a_while_ends_by_itself() -> None:
    book = paused_at(100.0, until=160.0)
    assert book.active(TARGET, 159.0) is not None
    assert book.active(TARGET, 160.0) is None
    assert book.in_effect(170.0) == []


def test_the_time_paused_is_not_counted_toward_an_items_age() -> None:
    book = paused_at(100.0)
    assert book.paused_seconds(TARGET, start=50.0, now=400.0) == 300.0
    resumed = book.resumed(TARGET, now=400.0)
    assert resumed.active(TARGET, 500.0) is None
    # The past pause still counts, only from the item's own start, and only for it.
    assert resumed.paused_seconds(TARGET, start=50.0, now=1000.0) == 300.0
    assert resumed.paused_seconds(TARGET, start=300.0, now=1000.0) == 100.0
    assert resumed.paused_seconds(TARGET, start=500.0, now=1000.0) == 0.0
    assert resumed.paused_seconds(OTHER, start=50.0, now=1000.0) == 0.0


def test_a_lapsed_pause_counts_up_to_its_end() -> None:
    book = paused_at(100.0, until=160.0)
    assert book.paused_seconds(TARGET, start=0.0, now=1000.0) == 60.0


def test_the_book_travels_as_json_unchanged() -> None:
    book = paused_at(100.0, until=500.0).paused(
        Pause(OTHER, since=200.0, reason="r", operator="o"), now=200.0
    )
    book = book.resumed(OTHER, now=300.0).paused(
        Pause(OTHER, since=400.0, reason="again", operator="o"), now=400.0
    )
    assert PauseBook.from_json(book.to_json()) == book


def test_two_operators_writing_from_the_same_read_do_not_lose_one() -> None:
    store = MemoryPauses()
    read = store.read()
    store.write(read.paused(Pause(TARGET, 1.0, "a", "ops"), now=1.0), now=1.0)
    with pytest.raises(PauseConflict):
        store.write(read.paused(Pause(OTHER, 1.0, "b", "ops"), now=1.0), now=1.0)


def test_no_events_key_is_ever_the_pauses_key() -> None:
    event_id, route = PAUSES_KEY
    assert is_reserved({"event_id": event_id, "route": route})
    # Every route of an event's item is a `key_part`, which never lets a tab through.
    assert key_part(route) != route
    assert not is_reserved({"event_id": event_id, "route": key_part(f"{TARGET} {route}")})
