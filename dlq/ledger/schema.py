"""The ledger table's shape: keys, the two indexes, on-demand billing and TTL.

The same shape as `LedgerTable` in template.yaml (a test compares them).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

BY_STATUS_INDEX = "by-status"
BY_CONVERSATION_INDEX = "by-conversation"
TTL_ATTRIBUTE = "expires_at"


def table_definition(table: str) -> dict[str, Any]:
    """The CreateTable request of the ledger."""

    def index(name: str, partition: str) -> dict[str, Any]:
        return {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": partition, "KeyType": "HASH"},
                {"AttributeName": "updated_at", "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }

    return {
        "TableName": table,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("event_id", "route", "status", "updated_at", "conversation_id")
        ],
        "KeySchema": [
            {"AttributeName": "event_id", "KeyType": "HASH"},
            {"AttributeName": "route", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            index(BY_STATUS_INDEX, "status"),
            index(BY_CONVERSATION_INDEX, "conversation_id"),
        ],
    }


def create_table(client: Any, table: str) -> bool:
    """Create the ledger table, its indexes and TTL; True if created, False if it existed."""
    try:
        client.create_table(**table_definition(table))
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        return False
    client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1})
    client.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    return True
