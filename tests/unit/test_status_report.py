"""`status_report`: what it reads of the ledger to say what waits."""

from __future__ import annotations

from dlq.ledger import Status
from dlq.metrics.report import status_report

from .fakes import settle


def test_the_oldest_waiting_item_is_read_one_item_per_pending_status(
    receive, ledger, cache, clock, monkeypatch
):
    oldest = receive()
    clock.advance(5)
    for _ in range(3):
        receive()
    settle(ledger, receive(), Status.RETRY_SCHEDULED, error="503", next_attempt_at=clock.now())
    heads: list[int | None] = []
    by_status = ledger.by_status

    def spied(status, **kwargs):
        if "limit" in kwargs:
            heads.append(kwargs["limit"])
        return by_status(status, **kwargs)

    monkeypatch.setattr(ledger, "by_status", spied)

    report = status_report(ledger, cache, "ledger-t", now=clock.now())

    assert report["oldest_pending"]["event_id"] == oldest.event_id
    assert heads == [1, 1, 1]  # received, in_progress, retry_scheduled: their heads alone
