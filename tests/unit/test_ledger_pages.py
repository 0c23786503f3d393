"""How the DynamoDB ledger follows a Query's pages (`LastEvaluatedKey`) and stops at a limit.

The client here is a stand-in that answers pages from a list, so that page boundaries
fall where the test says; the contract tests run the same reads against moto.
"""

from __future__ import annotations

from typing import Any

from dlq.ledger import Status, marshal
from dlq.ledger.store import Ledger


def ledger_attributes(event_id: str) -> dict[str, Any]:
    """A `received` item as DynamoDB answers it (typed attribute values)."""
    return marshal.typed(
        {
            "event_id": event_id,
            "route": "rule|target",
            "target_arn": "arn:aws:sqs:us-east-1:111122223333:target",
            "status": "received",
            "received_at": "2026-11-28T20:00:00.000+00:00",
            "updated_at": "2026-11-28T20:00:00.000+00:00",
        }
    )


class PagedClient:
    """Answers each Query with the next page, and records what each request asked for."""

    def __init__(self, pages: list[list[str]]) -> None:
        self._pages = pages
        self.requests: list[dict[str, Any]] = []

    def query(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        n = len(self.requests) - 1
        ids = self._pages[n][: request.get("Limit")]  # as DynamoDB: never more than Limit
        page: dict[str, Any] = {
            "Items": [ledger_attributes(event_id) for event_id in ids],
            "Count": len(ids),
        }
        if n + 1 < len(self._pages):
            page["LastEvaluatedKey"] = {"event_id": {"S": ids[-1]}}
        return page


def test_every_page_is_read_from_where_the_last_one_ended():
    client = PagedClient([["a", "b"], ["c"], ["d", "e"]])

    items = Ledger(client, "ledger").by_status(Status.RECEIVED)

    assert [item.event_id for item in items] == ["a", "b", "c", "d", "e"]
    assert [r.get("ExclusiveStartKey") for r in client.requests] == [
        None,
        {"event_id": {"S": "b"}},
        {"event_id": {"S": "c"}},
    ]


def test_a_limit_asks_each_page_for_what_is_left_and_stops_there():
    client = PagedClient([["a", "b"], ["c", "d"], ["e"]])

    items = Ledger(client, "ledger").by_status(Status.RECEIVED, limit=3)

    assert [item.event_id for item in items] == ["a", "b", "c"]
    assert [r["Limit"] for r in client.requests] == [3, 1]


def test_a_count_adds_up_every_page():
    client = PagedClient([["a", "b"], ["c"]])

    assert Ledger(client, "ledger").count_by_status(Status.RECEIVED) == 3
    assert all(r["Select"] == "COUNT" for r in client.requests)
