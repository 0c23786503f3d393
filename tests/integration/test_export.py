"""`dlq-replay export`: the rows a filter chooses, streamed page by page with flat memory.

On moto's server: the command's CSV and JSON lines, and a measurement (tracemalloc) of
the export of a table three times the size of another: its peak memory grows with the
ledger's pages, not with its items.
"""

from __future__ import annotations

import csv
import io
import json

import boto3
import pytest
from botocore.config import Config
from click.testing import CliRunner
from helpers import genesys_event, parsed

from bench.export import fill, measure
from cli.main import main
from dlq.aws import aws_client
from dlq.ledger import Ledger, Status, create_table
from dlq.settings import load_settings

CRM = "arn:aws:sqs:us-east-1:111122223333:crm-events"
WEBHOOK = "arn:aws:events:us-east-1:111122223333:api-destination/crm-webhook/x"


@pytest.fixture()
def env(moto_server, redis_url, unique) -> dict[str, str]:
    return {"LEDGER_TABLE": f"ledger-{unique}", "REDIS_URL": redis_url}


@pytest.fixture()
def client(env):
    settings = load_settings(_env_file=None, **{k.lower(): v for k, v in env.items()})
    dynamodb = aws_client("dynamodb", settings)
    create_table(dynamodb, env["LEDGER_TABLE"])
    return dynamodb


def ended(ledger: Ledger, target: str, status: Status):
    event, message = parsed(genesys_event(), target)
    ledger.put_received(event, message)
    claimed = ledger.claim(event.key, lease_seconds=60)
    ledger.finish(claimed, status, outcome=status.value, error="503", error_code="HTTP503")
    return event


def test_export_writes_the_chosen_items_as_csv_with_the_operator_actions(env, client, tmp_path):
    ledger = Ledger(client, env["LEDGER_TABLE"])
    event = ended(ledger, CRM, Status.FAILED)
    ended(ledger, WEBHOOK, Status.FAILED)
    ledger.redrive(event.key, note="redrive by operator", operator="=alice")
    output = tmp_path / "items.csv"

    result = CliRunner().invoke(
        main, ["export", "--target-arn", CRM, "--output", str(output)], env=env
    )

    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(io.StringIO(output.read_text())))
    assert (row["event_id"], row["target_arn"], row["status"]) == (
        event.key.event_id,
        CRM,
        "received",
    )
    assert (row["conversation_id"], row["attempts"]) == (event.conversation_id, "0")
    assert row["operator_actions"].endswith("redrive by operator by =alice")
    assert list(row) == [
        "event_id", "conversation_id", "rule_arn", "target_arn", "status", "last_error_code",
        "attempts", "received_at", "updated_at", "operator_actions",
    ]  # fmt: skip


def test_export_as_json_lines_to_stdout(env, client):
    ledger = Ledger(client, env["LEDGER_TABLE"])
    event = ended(ledger, CRM, Status.EXHAUSTED)

    result = CliRunner().invoke(main, ["export", "--format", "jsonl", "--status", "exhausted"],
                                env=env)  # fmt: skip

    [line] = result.stdout.splitlines()
    row = json.loads(line)
    assert (row["event_id"], row["last_error_code"], row["operator_actions"]) == (
        event.key.event_id, "HTTP503", []
    )  # fmt: skip


def test_a_cell_a_spreadsheet_would_read_as_a_formula_is_quoted(env, client):
    ledger = Ledger(client, env["LEDGER_TABLE"])
    event = ended(ledger, CRM, Status.FAILED)
    ledger.redrive(event.key, operator="=HYPERLINK(1)")

    result = CliRunner().invoke(main, ["export"], env=env)

    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["operator_actions"].startswith("20")  # a time: no formula in front
    assert "'=HYPERLINK" not in row["operator_actions"]  # inside the cell: not its start


def test_export_memory_grows_with_pages_not_items(env, unique):
    # Its own client: a 1 MB page from moto on a loaded two-core machine can take longer
    # than the ledger's 5 s read timeout (this measures memory, not speed).
    client = boto3.client("dynamodb", config=Config(read_timeout=60))
    small, large = f"{env['LEDGER_TABLE']}-small", f"{env['LEDGER_TABLE']}-large"
    # Both span more than two of DynamoDB's 1 MB pages (moto's: 543 of these items).
    for table, count in ((small, 1200), (large, 2400)):
        create_table(client, table)
        fill(client, table, count)

    measure(Ledger(client, small), trace=False)  # the first pays for imports and caches
    few = measure(Ledger(client, small))
    many = measure(Ledger(client, large))

    assert (few["rows"], many["rows"]) == (1200, 2400)
    print(f"export peak: {few['peak_bytes']} B for 1200 items, {many['peak_bytes']} B for 2400")
    assert many["peak_bytes"] < 1.25 * few["peak_bytes"]  # a list of the items: twice
