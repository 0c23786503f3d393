"""`dlq-replay resolve`: items end `resolved` on an operator's word, nothing sent.

Against moto's server (the ledger, STS's GetCallerIdentity) and redis-server (the
tracking news the command leaves for the workers), through click's runner.
"""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner, Result
from helpers import SIM_CLIENT_ID, genesys_event, parsed

from cli.main import main
from dlq.aws import aws_client
from dlq.clock import FakeClock
from dlq.ledger import Ledger, Status, create_table
from dlq.settings import load_settings
from dlq.tracking import PENDING_PREFIX

CRM = "arn:aws:sqs:us-east-1:111122223333:crm-events"
WEBHOOK = "arn:aws:events:us-east-1:111122223333:api-destination/crm-webhook/always-503"


def run(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


@pytest.fixture()
def env(moto_server, redis_url, unique) -> dict[str, str]:
    return {
        "LEDGER_TABLE": f"ledger-{unique}",
        "DLQ_QUEUE_URL": f"{moto_server.url}/123456789012/dlq-{unique}",
        "REDIS_URL": redis_url,
        "REPLAY_PARKING_QUEUE_URL": "",
        "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
    }


@pytest.fixture()
def ledger(env) -> Ledger:
    settings = load_settings(_env_file=None, **{k.lower(): v for k, v in env.items()})
    client = aws_client("dynamodb", settings)
    create_table(client, settings.ledger_table)
    return Ledger(client, settings.ledger_table, clock=FakeClock(start=time.time() - 30))


def item(ledger: Ledger, target: str, status: Status, *, conversation: str | None = None):
    event, message = parsed(genesys_event(conversation_id=conversation), target)
    ledger.put_received(event, message)
    if status is not Status.RECEIVED:
        claimed = ledger.claim(event.key, lease_seconds=60)
        if status is not Status.IN_PROGRESS:
            ledger.finish(claimed, status, outcome=status.value, error="503", error_code="HTTP503")
    return event.key


def test_resolve_of_one_event_ends_it_with_the_callers_aws_identity_and_reason(
    env, ledger, redis_client
):
    key = item(ledger, CRM, Status.EXHAUSTED)
    conversation = ledger.get(key).conversation_id

    result = run(env, "resolve", key.event_id, "--reason", "keyed in by hand", "--yes", "--json")

    assert result.exit_code == 0, result.output
    resolved = ledger.get(key)
    assert resolved.status is Status.RESOLVED
    entry = resolved.history[-1]
    assert (entry["outcome"], entry["note"]) == ("resolved", "keyed in by hand")
    assert (
        entry["operator"].startswith("arn:aws:")
        and entry["operator"] == json.loads(result.stdout)["operator"]
    )
    assert redis_client.exists(PENDING_PREFIX + conversation)  # tracking is told


def test_resolve_with_filters_takes_what_redrive_would_and_names_the_operator(env, ledger):
    crm = [item(ledger, CRM, Status.FAILED), item(ledger, CRM, Status.EXHAUSTED)]
    other = item(ledger, WEBHOOK, Status.FAILED)
    replayed = item(ledger, CRM, Status.REPLAYED)

    result = run(
        env, "resolve", "--target-arn", CRM, "--reason", "CRM rebuilt", "--operator", "alice",
        "--yes",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert "resolved: 2 (by alice)" in result.stdout
    assert [ledger.get(k).status for k in crm] == [Status.RESOLVED, Status.RESOLVED]
    assert {ledger.get(k).history[-1]["operator"] for k in crm} == {"alice"}
    assert ledger.get(other).status is Status.FAILED
    assert ledger.get(replayed).status is Status.REPLAYED


def test_resolve_dry_run_lists_and_changes_nothing(env, ledger):
    key = item(ledger, CRM, Status.FAILED)

    result = run(env, "resolve", "--reason", "x", "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    assert [i["event_id"] for i in json.loads(result.stdout)["items"]] == [key.event_id]
    assert ledger.get(key).status is Status.FAILED


def test_resolve_asks_first_and_a_no_changes_nothing(env, ledger):
    key = item(ledger, CRM, Status.FAILED)

    result = run(env, "resolve", "--reason", "x", input="n\n")

    assert result.exit_code == 1
    assert ledger.get(key).status is Status.FAILED


def test_resolve_skips_an_item_in_progress_under_a_live_lease_with_the_reason(env, ledger):
    key = item(ledger, CRM, Status.IN_PROGRESS)

    result = run(env, "resolve", key.event_id, "--reason", "x", "--yes", "--json")

    assert result.exit_code == 1
    [skipped] = json.loads(result.stdout)["skipped"]
    assert skipped["event_id"] == key.event_id
    assert skipped["reason"].startswith("in progress: an attempt holds it until")
    assert ledger.get(key).status is Status.IN_PROGRESS


def test_resolve_needs_a_reason(env, ledger):
    result = run(env, "resolve", "--yes")

    assert result.exit_code == 2 and "--reason" in result.output


def test_a_resolved_item_is_not_redriven(env, ledger):
    key = item(ledger, CRM, Status.FAILED)
    run(env, "resolve", key.event_id, "--reason", "x", "--yes")

    result = run(env, "redrive", "--dry-run", "--json")

    assert json.loads(result.stdout)["items"] == []


def test_inspect_shows_who_resolved_and_why(env, ledger):
    key = item(ledger, CRM, Status.FAILED)
    run(env, "resolve", key.event_id, "--reason", "keyed in by hand", "--operator", "bob", "--yes")

    result = run(env, "inspect", key.event_id, "--json")
    shown = run({**env, "COLUMNS": "200"}, "inspect", key.event_id)

    [entry] = json.loads(result.stdout)
    assert entry["history"][-1]["operator"] == "bob"
    assert "bob" in shown.stdout and "keyed in by hand" in shown.stdout


def test_status_counts_resolved_items(env, ledger):
    key = item(ledger, CRM, Status.FAILED)
    run(env, "resolve", key.event_id, "--reason", "x", "--yes")

    result = run(env, "status", "--json")

    assert json.loads(result.stdout)["resolved"] == 1
