"""Customer data at the operator's terminal: `inspect` masks it, `forget` deletes it.

Against the moto server and redis-server, through click's runner with the settings in
`env=`, as in tests/integration/test_cli.py. The events are the Genesys fixtures, with a
phone number and a name in them; the tables are read back raw, as DynamoDB holds them.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result
from helpers import FIXTURES, RULE, received_message

from cli.main import main
from dlq.aws import aws_client
from dlq.clock import SYSTEM_CLOCK
from dlq.events import EventKey, parse_dlq_message
from dlq.ledger import FINAL_STATUSES, Ledger, LedgerItem, Status, create_table, marshal
from dlq.ledger.forgetting import HISTORY_FACTS
from dlq.masking import MASK
from dlq.metrics.counters import OutcomeCounters
from dlq.replay.recorded import observed
from dlq.settings import load_settings

CRM = "arn:aws:sqs:us-east-1:111122223333:crm-events"
CALLER = "tel:+13175550199"
CALLED = "tel:+13175550100"
#: What the tests put in errors: a target that echoes the customer back.
ERROR_TEXT = f"400 from the target: unknown caller {CALLER}"


def run(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


@pytest.fixture()
def env(moto_server, redis_url, unique) -> dict[str, str]:
    return {
        "LEDGER_TABLE": f"ledger-{unique}",
        "DLQ_QUEUE_URL": f"{moto_server.url}/123456789012/dlq-{unique}",
        "REDIS_URL": redis_url,
        "REPLAY_PARKING_QUEUE_URL": "",
    }


@pytest.fixture()
def settings(env):
    return load_settings(_env_file=None, **{k.lower(): v for k, v in env.items()})


@pytest.fixture()
def dynamodb(settings):
    return aws_client("dynamodb", settings)


@pytest.fixture()
def ledger(settings, dynamodb) -> Ledger:
    create_table(dynamodb, settings.ledger_table)
    return Ledger(dynamodb, settings.ledger_table)


@pytest.fixture()
def audit(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """What the commands log on `dlq.audit` (read with `audited`)."""
    with caplog.at_level(logging.WARNING, logger="dlq.audit"):
        yield caplog


def audited(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The audit lines logged so far in this test."""
    return [r.getMessage() for r in caplog.records if r.name == "dlq.audit"]


def conversation_end(conversation_id: str) -> dict[str, Any]:
    """The fixture's customer.end event, for this conversation, under a new id."""
    event = json.loads((FIXTURES / "genesys-conversation-end-event.json").read_text())
    detail = event["detail"]
    event["id"] = str(uuid.uuid4())
    detail["topicName"] = detail["topicName"].replace(
        detail["eventBody"]["conversationId"], conversation_id
    )
    detail["eventBody"]["conversationId"] = conversation_id
    return event


def receive(ledger: Ledger, event: dict[str, Any]) -> EventKey:
    message = received_message(json.dumps(event), CRM)
    ledger.put_received(parse_dlq_message(message), message)
    return EventKey(event["id"], CRM, RULE)


def finish(ledger: Ledger, key: EventKey, status: Status) -> LedgerItem:
    claimed = ledger.claim(key, lease_seconds=60)
    error = None if status is Status.REPLAYED else ERROR_TEXT
    return ledger.finish(
        claimed, status, outcome=status.value, error=error, error_code="HTTP400", note=error
    )


def raw_items(dynamodb, table: str) -> list[dict[str, Any]]:
    """Every item of the table, as DynamoDB holds it."""
    return [marshal.plain(i) for i in dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]]


def count_outcomes(settings, redis_client, ledger: Ledger) -> None:
    """Count every final item into the fleet's counters, as the workers would have."""
    counters = OutcomeCounters(redis_client, settings.ledger_table, clock=SYSTEM_CLOCK)
    for item in ledger.scan():
        if item.status in FINAL_STATUSES:
            counters.finished(observed(item))


def counts(env: dict[str, str]) -> dict[str, Any]:
    """`status --json` without its times."""
    result = run(env, "status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    return {k: v for k, v in report.items() if k not in {"since", "until", "since_epoch"}}


# --- inspect -----------------------------------------------------------------------------


def test_inspect_json_masks_the_customer_fields_and_keeps_the_body_a_string(env, ledger, audit):
    event = conversation_end(str(uuid.uuid4()))
    receive(ledger, event)

    result = run(env, "inspect", event["id"], "--json")

    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    assert isinstance(entry["body"], str)
    body = json.loads(entry["body"])
    assert (body["detail"]["eventBody"]["ani"], body["detail"]["eventBody"]["dnis"]) == (
        MASK,
        MASK,
    )
    assert body["detail"]["eventBody"]["conversationId"] == entry["conversation_id"]
    assert CALLER not in result.stdout and CALLED not in result.stdout
    assert audited(audit) == []  # a masked view is not an access to customer data


def test_inspect_printed_masks_the_body_too(env, ledger):
    event = conversation_end(str(uuid.uuid4()))
    receive(ledger, event)

    result = run(env, "inspect", event["id"])

    assert result.exit_code == 0, result.output
    assert f'"ani": "{MASK}"' in result.stdout
    assert CALLER not in result.stdout


def test_inspect_unmasked_shows_the_body_as_stored_and_logs_who_saw_it(
    env, ledger, settings, audit
):
    event = conversation_end(str(uuid.uuid4()))
    receive(ledger, event)
    caller = aws_client("sts", settings).get_caller_identity()["Arn"]

    result = run(env, "inspect", event["id"], "--json", "--unmasked")

    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    assert json.loads(entry["body"]) == event
    (line,) = audited(audit)
    assert line.startswith(f"inspect --unmasked by {caller}: events {event['id']}")


def test_inspect_masks_the_fields_replay_masked_fields_names(env, ledger):
    event = conversation_end(str(uuid.uuid4()))
    receive(ledger, event)
    env = {**env, "REPLAY_MASKED_FIELDS": "$.detail.eventBody.direction"}

    (entry,) = json.loads(run(env, "inspect", event["id"], "--json").stdout)

    body = json.loads(entry["body"])["detail"]["eventBody"]
    assert (body["direction"], body["ani"]) == (MASK, CALLER)


def test_inspect_withholds_a_body_that_is_not_json_unless_unmasked(env, ledger, audit):
    message = received_message(f"caller={CALLER} name=Jane", CRM)
    ledger.put_rejected(message, "body is not JSON")

    masked = run(env, "inspect", str(message.message_id), "--json")
    unmasked = run(env, "inspect", str(message.message_id), "--json", "--unmasked")

    (entry,) = json.loads(masked.stdout)
    assert CALLER not in masked.stdout
    assert (entry["body"], entry["body_masked"]) == (None, True)
    (shown,) = json.loads(unmasked.stdout)
    assert (shown["body"], shown["body_masked"]) == (f"caller={CALLER} name=Jane", False)
    assert len(audited(audit)) == 1


# --- forget ---------------------------------------------------------------------------------


def test_forget_leaves_no_body_or_history_text_of_the_conversation_and_the_counts_as_they_were(
    env, ledger, dynamodb, settings, redis_client, audit
):
    conversation, other = str(uuid.uuid4()), str(uuid.uuid4())
    failed = receive(ledger, conversation_end(conversation))
    finish(ledger, failed, Status.FAILED)
    replayed = receive(ledger, conversation_end(conversation))
    finish(ledger, replayed, Status.REPLAYED)
    # A message of the conversation the ingest rejected: kept under its message id only.
    foreign = conversation_end(conversation)
    foreign["source"] = "aws.partner/genesys.com/cloud/another-org/crm"
    ledger.put_rejected(received_message(json.dumps(foreign), CRM), "event from another org")
    kept = receive(ledger, conversation_end(other))
    finish(ledger, kept, Status.FAILED)
    count_outcomes(settings, redis_client, ledger)
    before = counts(env)

    result = run(env, "forget", "--conversation-id", conversation, "--yes")

    assert result.exit_code == 0, result.output
    assert "forgotten: 3, skipped (changed meanwhile): 0, pending (kept): 0" in result.stdout
    items = raw_items(dynamodb, settings.ledger_table)
    of_it = [i for i in items if conversation in (i.get("conversation_id"), i.get("body"))]
    of_it += [i for i in items if i["status"] == "rejected"]
    assert len(of_it) == 3
    for item in of_it:
        assert not {"body", "last_error", "error_message", "reject_reason"} & set(item), item
        assert all(set(entry) <= HISTORY_FACTS for entry in item["history"]), item
        assert CALLER not in json.dumps(item, default=str)
        assert item["forgotten_at"]
    (other_item,) = [i for i in items if i.get("conversation_id") == other]
    assert CALLER in other_item["body"] and other_item["last_error"] == ERROR_TEXT
    assert counts(env) == before
    (line,) = audited(audit)
    assert line.startswith("forget by ")


def test_forget_keeps_a_pending_item_of_the_conversation_and_says_so_exiting_1(
    env, ledger, dynamodb, settings
):
    conversation = str(uuid.uuid4())
    done = receive(ledger, conversation_end(conversation))
    finish(ledger, done, Status.REPLAYED)
    waiting = receive(ledger, conversation_end(conversation))  # received: its replay is due

    result = run(env, "forget", "--conversation-id", conversation, "--yes")

    assert result.exit_code == 1
    assert "pending (kept): 1" in result.stdout
    assert waiting.event_id in result.stdout
    pending = ledger.get(waiting)
    assert pending is not None and CALLER in pending.body
    forgotten = ledger.get(done)
    assert forgotten is not None and (forgotten.body, forgotten.status) == ("", Status.REPLAYED)


def test_forget_older_than_takes_only_what_was_last_updated_before_then(
    env, ledger, dynamodb, settings
):
    old = receive(ledger, conversation_end(str(uuid.uuid4())))
    finish(ledger, old, Status.FAILED)
    recent = receive(ledger, conversation_end(str(uuid.uuid4())))
    finish(ledger, recent, Status.FAILED)
    item = ledger.get(old)
    assert item is not None
    dynamodb.update_item(
        TableName=settings.ledger_table,
        Key=marshal.key(item.event_id, item.route),
        UpdateExpression="SET updated_at = :then",
        ExpressionAttributeValues={":then": {"S": "2020-01-01T00:00:00.000+00:00"}},
    )

    result = run(env, "forget", "--older-than", "30d", "--yes", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["forgotten"] == 1
    after_old, after_recent = ledger.get(old), ledger.get(recent)
    assert after_old is not None and after_old.forgotten_at and after_old.body == ""
    assert after_recent is not None and after_recent.forgotten_at is None
    assert CALLER in after_recent.body


def test_forget_dry_run_lists_what_it_would_forget_and_changes_nothing(
    env, ledger, dynamodb, settings
):
    conversation = str(uuid.uuid4())
    key = receive(ledger, conversation_end(conversation))
    finish(ledger, key, Status.FAILED)
    before = raw_items(dynamodb, settings.ledger_table)

    result = run(env, "forget", "--conversation-id", conversation, "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    assert [i["event_id"] for i in json.loads(result.stdout)["items"]] == [key.event_id]
    assert raw_items(dynamodb, settings.ledger_table) == before


def test_forget_asks_first_and_a_no_changes_nothing(env, ledger, dynamodb, settings):
    conversation = str(uuid.uuid4())
    key = receive(ledger, conversation_end(conversation))
    finish(ledger, key, Status.FAILED)
    before = raw_items(dynamodb, settings.ledger_table)

    result = run(env, "forget", "--conversation-id", conversation, input="n\n")

    assert result.exit_code == 1  # click's abort
    assert raw_items(dynamodb, settings.ledger_table) == before


def test_forget_without_a_conversation_or_a_time_refuses(env, ledger):
    result = run(env, "forget", "--yes")

    assert result.exit_code == 2
    assert "--conversation-id ID, --older-than 30d" in result.output


def test_inspect_of_a_forgotten_item_says_when_it_was_forgotten(env, ledger):
    conversation = str(uuid.uuid4())
    key = receive(ledger, conversation_end(conversation))
    finish(ledger, key, Status.REPLAYED)
    run(env, "forget", "--conversation-id", conversation, "--yes")

    result = run(env, "inspect", key.event_id)

    assert result.exit_code == 0, result.output
    assert "original body: forgotten at " in result.stdout
    assert CALLER not in result.stdout
