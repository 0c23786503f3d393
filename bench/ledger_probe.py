"""Does a DynamoDB server do what the ledger needs? One table, the ledger's own calls, findings.

Creates the ledger table with the product's `create_table` (both indexes, TTL), then runs
the ledger's conditional transitions through `dlq.ledger.Ledger`: a claim, a second
claim refused while the first holds, a finish with a stale claim token refused, the
finish, a `by-conversation` index query. It also asks whether the server answers a failed
condition with the item when `ReturnValuesOnConditionCheckFailure=ALL_OLD` is sent (the
ledger does not rely on it: a refused claim reads the item again). Prints the backend
line and the findings, writes them as JSON.

    .venv/bin/python -m bench.ledger_probe                     # dynalite if node, else moto
    .venv/bin/python -m bench.ledger_probe --dynamodb dynalite
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from bench import backends
from bench.backends import NODE_PREFIX, DynamoDbBackend, dynamodb_backend
from bench.common import RESULTS_DIR, write_results
from devstack.moto_server import MotoServer
from devstack.synthetic import generate
from dlq.events import DlqMessage, EventKey, parse_dlq_message
from dlq.ledger import (
    BY_CONVERSATION_INDEX,
    ClaimRefused,
    Ledger,
    LedgerItem,
    StaleClaim,
    Status,
    create_table,
    marshal,
)
from dlq.ledger.model import route_of

RESULTS = RESULTS_DIR / "ledger-probe.json"
TABLE = "ledger-probe"
TARGET = "arn:aws:sqs:us-east-1:111122223333:crm-events"


def probe(client: Any) -> dict[str, Any]:
    """The findings, one key per question, on an empty server."""
    found: dict[str, Any] = {}
    try:
        create_table(client, TABLE)
        found["create_table"] = "table, indexes and TTL"
    except ClientError as exc:
        found["create_table"] = f"table and indexes, then {exc.response['Error']['Code']}"
    table = client.describe_table(TableName=TABLE)["Table"]
    found["indexes"] = sorted(i["IndexName"] for i in table.get("GlobalSecondaryIndexes", []))
    try:
        ttl = client.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
        found["ttl_status"] = ttl.get("TimeToLiveStatus")
    except ClientError as exc:
        found["ttl_status"] = exc.response["Error"]["Code"]

    ledger = Ledger(client, TABLE)
    message, conversation = _dlq_message()
    parsed = parse_dlq_message(message)
    found["put_received_new"] = ledger.put_received(parsed, message) is None
    found["put_received_again_refused"] = ledger.put_received(parsed, message) is not None
    claimed = ledger.claim(parsed.key, lease_seconds=60)
    found["claim"] = claimed.status.value
    try:
        ledger.claim(parsed.key, lease_seconds=60)
        found["second_claim_refused"] = False
    except ClaimRefused as refused:
        found["second_claim_refused"] = refused.current is not None
    stale = LedgerItem.from_item({**_plain(client, parsed.key), "claim_token": "not-the-token"})
    try:
        ledger.finish(stale, Status.REPLAYED, outcome="replayed")
        found["stale_finish_refused"] = False
    except StaleClaim:
        found["stale_finish_refused"] = True
    found["finish"] = ledger.finish(claimed, Status.REPLAYED, outcome="replayed").status.value
    found[f"{BY_CONVERSATION_INDEX}_items"] = len(ledger.by_conversation(conversation))
    found["return_values_on_condition_check_failure"] = _return_values_on_failure(
        client, parsed.key
    )
    return found


def _dlq_message() -> tuple[DlqMessage, str]:
    """One synthetic conversation event as the DLQ would hand it over; its conversation."""
    synthetic = generate(
        conversations=1, events_per_conversation=1, presence_events=0, target_arns=(TARGET,)
    ).messages[0]
    assert synthetic.conversation_id is not None
    message = DlqMessage.from_receive_message(
        {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": "probe",
            "Body": synthetic.body,
            "MessageAttributes": {
                name: {"StringValue": value, "DataType": "String"}
                for name, value in synthetic.attributes.items()
            },
            "Attributes": {"ApproximateReceiveCount": "1"},
        }
    )
    return message, synthetic.conversation_id


def _plain(client: Any, key: EventKey) -> dict[str, Any]:
    item = client.get_item(
        TableName=TABLE, Key=marshal.key(key.event_id, route_of(key)), ConsistentRead=True
    )
    return marshal.plain(item["Item"])


def _return_values_on_failure(client: Any, key: EventKey) -> str:
    """'returned' (the item comes with the refusal), 'ignored', or the error code."""
    try:
        client.update_item(
            TableName=TABLE,
            Key=marshal.key(key.event_id, route_of(key)),
            UpdateExpression="SET #s = :new",
            ConditionExpression="#s = :other",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=marshal.values(new="in_progress", other="received"),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code != "ConditionalCheckFailedException":
            return str(code)
        return "returned" if exc.response.get("Item") else "ignored"
    # A condition on the current status can only fail: reaching here means it was skipped.
    return "condition not checked"


def _client(url: str) -> Any:
    return boto3.session.Session().client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def run(requested: str, *, prefix: Path) -> tuple[DynamoDbBackend, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as work:
        workdir = Path(work)
        with dynamodb_backend(requested, workdir, prefix=prefix) as backend:
            print(backend.message, flush=True)
            if backend.url:
                return backend, probe(_client(backend.url))
            with MotoServer(workdir / "moto") as moto:
                return backend, probe(_client(moto.url))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.ledger_probe", description=__doc__.splitlines()[0])
    backends.add_option(parser)
    parser.add_argument(
        "--node-prefix", type=Path, default=NODE_PREFIX, help="where npm installs dynalite"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    backend, found = run(args.dynamodb, prefix=args.node_prefix)
    write_results(args.output, {"dynamodb_backend": backend.describe(), "findings": found})
    for key, value in found.items():
        print(f"  {key}: {json.dumps(value)}")
    print(f"  written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
