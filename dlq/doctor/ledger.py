"""`doctor`'s checks of the DynamoDB ledger: the table, its indexes and its TTL."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from dlq.awserrors import aws_error, explain_aws
from dlq.doctor.check import Check
from dlq.ledger.schema import TTL_ATTRIBUTE, table_definition


def check_ledger(dynamodb: Any, table: str) -> list[Check]:
    """The table exists, with the key, indexes and TTL that `setup` gives it."""
    try:
        described = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        skipped = "not checked: the table could not be read"
        if aws_error(exc).code == "ResourceNotFoundException":
            failed = Check(
                "ledger table",
                False,
                f"no table {table} (LEDGER_TABLE) in this account and region",
                "run `dlq-replay setup` (it creates the table, its indexes and TTL), or "
                "deploy template.yaml; or fix LEDGER_TABLE / AWS_REGION",
            )
        else:
            explained = explain_aws(exc)
            failed = Check("ledger table", False, explained.cause, explained.fix)
        return [failed, Check("ledger indexes", None, skipped), Check("ledger ttl", None, skipped)]
    wanted = table_definition(table)
    checks = [_table(described, wanted), _indexes(described, wanted)]
    try:
        ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    except ClientError as exc:
        explained = explain_aws(exc)
        return [*checks, Check("ledger ttl", False, explained.cause, explained.fix)]
    return [*checks, _ttl(ttl, table)]


def _table(described: dict[str, Any], wanted: dict[str, Any]) -> Check:
    status = described.get("TableStatus")
    if described.get("KeySchema") != wanted["KeySchema"]:
        return Check(
            "ledger table",
            False,
            f"{described['TableName']} has another key than the ledger's "
            "(event_id, target_arn): it is not a dlq-replay ledger",
            "point LEDGER_TABLE at the ledger, or a new name for `dlq-replay setup` to create",
        )
    if status != "ACTIVE":
        return Check(
            "ledger table",
            False,
            f"{described['TableName']} is {status}",
            "wait a minute for it to become ACTIVE, then run doctor again",
        )
    return Check("ledger table", True, f"{described['TableName']} is ACTIVE")


def _indexes(described: dict[str, Any], wanted: dict[str, Any]) -> Check:
    found = {i["IndexName"]: i for i in described.get("GlobalSecondaryIndexes", [])}
    problems = []
    for index in wanted["GlobalSecondaryIndexes"]:
        name = index["IndexName"]
        there = found.get(name)
        if there is None:
            problems.append(f"{name} is missing")
        elif there.get("KeySchema") != index["KeySchema"]:
            problems.append(f"{name} has another key")
        elif there.get("IndexStatus", "ACTIVE") != "ACTIVE":
            problems.append(f"{name} is {there['IndexStatus']}")
    names = ", ".join(i["IndexName"] for i in wanted["GlobalSecondaryIndexes"])
    if problems:
        return Check(
            "ledger indexes",
            False,
            "; ".join(problems) + " (the reconciler, redrive and tracking query them)",
            "add the index as template.yaml's LedgerTable defines it (or create a new table "
            "with `dlq-replay setup` and a new LEDGER_TABLE)",
        )
    return Check("ledger indexes", True, f"{names} present and ACTIVE")


def _ttl(ttl: dict[str, Any], table: str) -> Check:
    status, attribute = ttl.get("TimeToLiveStatus"), ttl.get("AttributeName")
    if status in ("ENABLED", "ENABLING") and attribute == TTL_ATTRIBUTE:
        return Check("ledger ttl", True, f"TTL {status.lower()} on {TTL_ATTRIBUTE}")
    return Check(
        "ledger ttl",
        False,
        f"TTL is {status or 'DISABLED'}"
        + (f" on {attribute}" if attribute else "")
        + ": items never expire (LEDGER_TTL_DAYS is not applied)",
        f"run `aws dynamodb update-time-to-live --table-name {table} "
        f"--time-to-live-specification Enabled=true,AttributeName={TTL_ATTRIBUTE}`",
    )
