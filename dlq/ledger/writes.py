"""The ledger table's conditional writes: the primitives `Ledger`'s transitions are made of."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from dlq.ledger import marshal
from dlq.ledger.model import LedgerItem
from dlq.ledger.reads import TableReads


class TableWrites(TableReads):
    """A new item if its key is free, one conditional update; the item as it stands."""

    def _stored(self, event_id: str, route: str) -> LedgerItem | None:
        """The item at this key as it stands (a rejected item's route is not always the
        `route_of` its key: see `rejected_item`)."""
        response = self._client.get_item(
            TableName=self.table, Key=marshal.key(event_id, route), ConsistentRead=True
        )
        item = response.get("Item")
        return LedgerItem.from_item(marshal.plain(item)) if item else None

    def _put_new(self, item: dict[str, Any]) -> bool:
        try:
            self._client.put_item(
                TableName=self.table,
                Item=marshal.typed(item),
                ConditionExpression="attribute_not_exists(event_id)",
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def _update(
        self,
        event_id: str,
        route: str,
        *,
        update: str,
        condition: str,
        values: dict[str, Any],
        refused: Callable[[LedgerItem | None], Exception],
        old_on_refusal: bool = False,
        returns: str = "ALL_NEW",
    ) -> dict[str, Any]:
        """One conditional UpdateItem; the item as `returns` asks (ALL_NEW: after the write,
        ALL_OLD: before it, NONE: empty), or `refused(current)` raised if the check fails.
        With `old_on_refusal`, DynamoDB answers a refusal with the item as it stands
        (`ReturnValuesOnConditionCheckFailure`), so the caller needs no second read; an
        emulator that ignores the parameter answers without it, and `current` is None."""
        names = {"#s": "status"} if "#s" in update or "#s" in condition else None
        extra: dict[str, Any] = {"ExpressionAttributeNames": names} if names else {}
        if old_on_refusal:
            extra["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            response = self._client.update_item(
                TableName=self.table,
                Key=marshal.key(event_id, route),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=marshal.values(**values),
                ReturnValues=returns,
                **extra,
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                old = exc.response.get("Item")
                raise refused(LedgerItem.from_item(marshal.plain(old)) if old else None) from None
            raise
        return marshal.plain(response.get("Attributes", {}))


def is_condition_failure(exc: ClientError) -> bool:
    return bool(exc.response["Error"]["Code"] == "ConditionalCheckFailedException")
