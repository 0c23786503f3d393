"""The ledger table's reads: one item, one event's items, a status, a conversation, all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from dlq.events import EventKey
from dlq.ledger import marshal
from dlq.ledger.model import LedgerItem, Status, route_of
from dlq.ledger.pages import pages
from dlq.ledger.pauses import is_reserved
from dlq.ledger.schema import BY_CONVERSATION_INDEX, BY_STATUS_INDEX


class TableReads:
    """The reads of `Ledger` (its writes are in `writes` and `store`), through a low-level
    boto3 client."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self.table = table

    def get(self, key: EventKey) -> LedgerItem | None:
        response = self._client.get_item(
            TableName=self.table, Key=marshal.key(key.event_id, route_of(key)), ConsistentRead=True
        )
        item = response.get("Item")
        return LedgerItem.from_item(marshal.plain(item)) if item else None

    def items_for_event(self, event_id: str) -> list[LedgerItem]:
        """Every (rule, target) item of one event id (also finds `rejected:<message id>`)."""
        return [
            LedgerItem.from_item(item)
            for item in self._query(
                KeyConditionExpression="event_id = :e",
                ExpressionAttributeValues=marshal.values(e=event_id),
                ConsistentRead=True,
            )
            if not is_reserved(item)
        ]

    def by_status(
        self,
        status: Status,
        *,
        updated_before: str | None = None,
        updated_after: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
    ) -> Iterator[LedgerItem]:
        """Items of one status, oldest update first (the reconciler's and redrive's view).

        `newest_first` reads the index backwards and `limit` stops after that many items,
        so an operator's "the latest 20 rejected" costs one page, never the whole index.
        """
        condition = "#s = :s"
        values: dict[str, Any] = {"s": status.value}
        if updated_before and updated_after:
            condition += " AND updated_at BETWEEN :a AND :b"
            values.update(a=updated_after, b=updated_before)
        elif updated_before:
            condition += " AND updated_at < :b"
            values["b"] = updated_before
        elif updated_after:
            condition += " AND updated_at > :a"
            values["a"] = updated_after
        for item in self._query(
            limit=limit,
            IndexName=BY_STATUS_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=marshal.values(**values),
            ScanIndexForward=not newest_first,
        ):
            yield LedgerItem.from_item(item)

    def by_conversation(self, conversation_id: str) -> list[LedgerItem]:
        """Every item of one conversation (what the tracking summary is made from)."""
        return [
            LedgerItem.from_item(item)
            for item in self._query(
                IndexName=BY_CONVERSATION_INDEX,
                KeyConditionExpression="conversation_id = :c",
                ExpressionAttributeValues=marshal.values(c=conversation_id),
            )
        ]

    def scan(self) -> Iterator[LedgerItem]:
        """Every item (for `status` and tests; the table is an operational one, not a lake)."""
        for page in pages(self._client.scan, self.table):
            for item in page.get("Items", []):
                plain = marshal.plain(item)
                if not is_reserved(plain):  # the pauses' item (dlq.ledger.pauses)
                    yield LedgerItem.from_item(plain)

    def count_by_status(self, status: Status) -> int:
        """How many items have `status`: `Select=COUNT` on the by-status index, no items
        read back (for metrics and `status`; DynamoDB still reads the index pages)."""
        return sum(
            int(page.get("Count", 0))
            for page in pages(
                self._client.query,
                self.table,
                IndexName=BY_STATUS_INDEX,
                Select="COUNT",
                KeyConditionExpression="#s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=marshal.values(s=status.value),
            )
        )

    # --- internals ----------------------------------------------------------------

    def _query(self, *, limit: int | None = None, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The items a Query answers, page after page; at most `limit` of them."""
        for page in pages(self._client.query, self.table, limit=limit, **kwargs):
            for item in page.get("Items", []):
                yield marshal.plain(item)
