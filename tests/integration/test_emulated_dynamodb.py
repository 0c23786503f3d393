"""The DynamoDB of devstack's moto (`devstack.moto_atomic`) answers item operations with
their results dumped as they are (`plain_item_answers`), not through moto's shape-walking
serializer: the two give the same JSON for every item operation, whatever its values.
(The ledger's own requests and answers are the contract's: tests/contract.)"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler

from devstack.moto_atomic import ITEM_OPERATIONS, plain_item_answers


def test_every_item_operation_answers_the_same_json_as_motos_serializer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Binary values, sets, nested maps and lists, numbers, capacity, batches,
    transactions, an empty page, a delete that returns the old item: moto in this process,
    each answer written both ways."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)  # moto in this process, not a server
    shaped = DynamoHandler.serialized
    monkeypatch.setattr(DynamoHandler, "serialized", shaped)  # put back after the test
    plain_item_answers()
    plain = DynamoHandler.serialized
    compared: Counter[str] = Counter()
    differing: list[str] = []

    def both(self: DynamoHandler, action_result: Any) -> Any:
        reference, answer = shaped(self, action_result), plain(self, action_result)
        operation = self._get_action()
        if operation in ITEM_OPERATIONS and isinstance(action_result.result, dict):
            compared[operation] += 1
            status, headers, body = answer
            if (status, headers.get("Content-Type"), json.loads(body)) != (
                reference[0], reference[1].get("Content-Type"), json.loads(reference[2])
            ):  # fmt: skip
                differing.append(f"{operation}: {body!r} != {reference[2]!r}")
        return answer

    monkeypatch.setattr(DynamoHandler, "serialized", both)
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        )  # fmt: skip
        item = {
            "k": {"S": "a"}, "b": {"B": b"\x00\xff"}, "bs": {"BS": [b"\x01"]}, "n": {"N": "1.5"},
            "ss": {"SS": ["x", "y"]}, "e": {"S": "é\n\"'"},
            "m": {"M": {"l": {"L": [{"BOOL": True}, {"NULL": True}, {"NS": ["1", "2"]}]}}},
        }  # fmt: skip
        total: dict[str, Any] = {"ReturnConsumedCapacity": "TOTAL"}
        db.put_item(TableName="t", Item=item, **total)
        db.get_item(TableName="t", Key={"k": {"S": "a"}}, **total)
        db.get_item(TableName="t", Key={"k": {"S": "absent"}})
        db.update_item(
            TableName="t", Key={"k": {"S": "a"}}, UpdateExpression="SET n = n + :one",
            ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="ALL_NEW", **total,
        )  # fmt: skip
        with pytest.raises(db.exceptions.ConditionalCheckFailedException):
            db.put_item(TableName="t", Item=item, ConditionExpression="attribute_not_exists(k)")
        db.query(
            TableName="t", KeyConditionExpression="k = :k",
            ExpressionAttributeValues={":k": {"S": "none"}},
        )  # fmt: skip
        db.scan(TableName="t", Limit=1, **total)
        db.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {"k": {"S": "b"}}}}]})
        db.batch_get_item(RequestItems={"t": {"Keys": [{"k": {"S": "a"}}, {"k": {"S": "b"}}]}})
        db.transact_write_items(
            TransactItems=[{"Put": {"TableName": "t", "Item": {"k": {"S": "c"}}}}]
        )
        db.transact_get_items(TransactItems=[{"Get": {"TableName": "t", "Key": {"k": {"S": "c"}}}}])
        db.delete_item(TableName="t", Key={"k": {"S": "a"}}, ReturnValues="ALL_OLD")

    assert differing == []
    assert set(compared) == ITEM_OPERATIONS
