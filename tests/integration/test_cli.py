"""The `dlq-replay` command against the real stand-ins: Redis, the moto server, the simulator.

Commands run in-process through click's runner, with their settings in `env=` as an
operator would export them. `poll` runs as a real process: it installs signal handlers
and takes over the root logger, which belong to the process. `demo`, which starts the
whole stack with its workers, is tested in tests/e2e/test_demo.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from broker import queued_tasks
from click.testing import CliRunner, Result
from helpers import ORG, RULE, SIM_CLIENT_ID, SIM_CLIENT_SECRET, dlq_attributes, genesys_event

from cli.main import main
from dlq.aws import aws_client
from dlq.clock import SYSTEM_CLOCK, FakeClock
from dlq.events import DlqMessage, EventKey, parse_dlq_message
from dlq.genesys.client import build_genesys_client
from dlq.genesys.directory import ConversationDirectory
from dlq.ledger import FINAL_STATUSES, Ledger, LedgerItem, Status, create_table, marshal
from dlq.ledger.model import route_of
from dlq.metrics.counters import OutcomeCounters
from dlq.ratelimit import RateLimiter
from dlq.replay.recorded import observed
from dlq.settings import load_settings
from dlq.tracking import Tracker
from tasks.names import REPLAY_TASK

DLQ_CLI = str(Path(sys.executable).with_name("dlq-replay"))
CRM_QUEUE = "arn:aws:sqs:us-east-1:111122223333:crm-events"
CRM_LAMBDA = "arn:aws:lambda:us-east-1:111122223333:function:crm-sync"
LONG_AGO = "2020-01-01T00:00:00.000+00:00"
LAST_YEAR = "2021-06-15T12:00:00.000+00:00"


def run(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    """`dlq-replay ARGS` in this process, with `env` exported."""
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def tsv_table(stdout: str, title: str) -> list[list[str]]:
    """The rows of one `# title` table of piped output (header row excluded)."""
    lines = stdout.splitlines()
    at = lines.index(f"# {title}") + 2
    rows = []
    for line in lines[at:]:
        if line.startswith("# ") or "\t" not in line:
            break
        rows.append(line.split("\t"))
    return rows


@pytest.fixture()
def env(moto_server, redis_url, unique) -> dict[str, str]:
    """What an operator exports: this test's ledger table, DLQ and Redis."""
    return {
        "LEDGER_TABLE": f"ledger-{unique}",
        "DLQ_QUEUE_URL": f"{moto_server.url}/123456789012/dlq-{unique}",
        "REDIS_URL": redis_url,
        "REPLAY_PARKING_QUEUE_URL": "",
        # The synthetic messages' rule is on a custom bus `genesys`, as the demo's.
        "REPLAY_ALLOWED_BUSES": "genesys",
        "GENESYS_ORG_ID": ORG,
    }


@pytest.fixture()
def settings(env):
    return load_settings(_env_file=None, **{k.lower(): v for k, v in env.items()})


@pytest.fixture()
def sqs(settings):
    return aws_client("sqs", settings)


@pytest.fixture()
def dynamodb(settings):
    return aws_client("dynamodb", settings)


@pytest.fixture()
def ledger(settings, dynamodb) -> Ledger:
    create_table(dynamodb, settings.ledger_table)
    return Ledger(dynamodb, settings.ledger_table)


def queue_depth(sqs, queue_url: str) -> dict[str, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return {name: int(value) for name, value in attributes.items()}


# --- a ledger in a known state, written through the Ledger as the workers would ----------


@dataclass(frozen=True)
class Entry:
    """One item the tests put in the ledger, and what they know about it."""

    event: dict[str, Any]
    target_arn: str
    error_code: str
    message_id: str

    @property
    def event_id(self) -> str:
        return str(self.event["id"])

    @property
    def key(self) -> tuple[str, str]:
        return (self.event_id, self.target_arn)

    @property
    def conversation_id(self) -> str:
        return str(self.event["detail"]["eventBody"]["conversationId"])


def dlq_message(body: str, target_arn: str, error_code: str, message_id: str) -> DlqMessage:
    return DlqMessage.from_receive_message(
        {
            "MessageId": message_id,
            "ReceiptHandle": "handle",
            "Body": body,
            "MessageAttributes": dlq_attributes(target_arn, error_code=error_code),
            "Attributes": {"ApproximateReceiveCount": "1"},
        }
    )


def receive(ledger: Ledger, entry: Entry) -> None:
    message = dlq_message(
        json.dumps(entry.event), entry.target_arn, entry.error_code, entry.message_id
    )
    ledger.put_received(parse_dlq_message(message), message)


def attempt(ledger: Ledger, entry: Entry, status: Status, error: str | None = None) -> LedgerItem:
    claimed = ledger.claim(EventKey(entry.event_id, entry.target_arn, RULE), lease_seconds=60)
    outcome = {Status.RETRY_SCHEDULED: "retry"}.get(status, status.value)
    return ledger.finish(claimed, status, outcome=outcome, error=error, next_attempt_at=(
        0.0 if status is Status.RETRY_SCHEDULED else None))  # fmt: skip


def backdate(dynamodb, table: str, entry: Entry, field: str, when: str) -> None:
    """Set a time the ledger writes itself (as if the item were that old)."""
    dynamodb.update_item(
        TableName=table,
        Key=marshal.key(entry.event_id, route_of(EventKey(entry.event_id, entry.target_arn, RULE))),
        UpdateExpression="SET #f = :when",
        ExpressionAttributeNames={"#f": field},
        ExpressionAttributeValues={":when": {"S": when}},
    )


def entry(target_arn: str, error_code: str, conversation_id: str | None = None) -> Entry:
    return Entry(
        event=genesys_event(conversation_id=conversation_id),
        target_arn=target_arn,
        error_code=error_code,
        message_id=str(uuid.uuid4()),
    )


@pytest.fixture()
def populated(ledger, dynamodb) -> dict[str, Entry]:
    """Nine items of every status, over two targets, four error codes, three conversations.

    failed:    a (crm queue, THROTTLING, c1), c (lambda, THROTTLING, c2),
               e (crm queue, THROTTLING, c3; last updated long ago)
    exhausted: b (crm queue, ERROR_FROM_TARGET, c2), d (lambda, TIMEOUT, c3; updated last year)
    replayed:  r (crm queue, NO_PERMISSIONS; received twice)
    pending:   p (lambda, THROTTLING, received long ago), q (crm queue, TIMEOUT, retry scheduled)
    rejected:  x (crm queue, ERROR_FROM_TARGET)
    """
    c1, c2, c3 = (str(uuid.uuid4()) for _ in range(3))
    items = {
        "a": entry(CRM_QUEUE, "THROTTLING", c1),
        "b": entry(CRM_QUEUE, "ERROR_FROM_TARGET", c2),
        "c": entry(CRM_LAMBDA, "THROTTLING", c2),
        "d": entry(CRM_LAMBDA, "TIMEOUT", c3),
        "e": entry(CRM_QUEUE, "THROTTLING", c3),
        "r": entry(CRM_QUEUE, "NO_PERMISSIONS"),
        "p": entry(CRM_LAMBDA, "THROTTLING"),
        "q": entry(CRM_QUEUE, "TIMEOUT"),
    }
    for item in items.values():
        receive(ledger, item)
    # EventBridge's duplicate, under another message id: the ingest counts it.
    ledger.count_duplicate(EventKey(items["r"].event["id"], items["r"].target_arn, RULE))
    attempt(ledger, items["a"], Status.RETRY_SCHEDULED, error="503 from target")
    attempt(ledger, items["a"], Status.FAILED, error="conversation deleted in Genesys")
    attempt(ledger, items["b"], Status.EXHAUSTED, error="503 from target")
    attempt(ledger, items["c"], Status.FAILED, error="AccessDenied")
    attempt(ledger, items["d"], Status.EXHAUSTED, error="timeout")
    attempt(ledger, items["e"], Status.FAILED, error="AccessDenied")
    attempt(ledger, items["r"], Status.REPLAYED)
    attempt(ledger, items["q"], Status.RETRY_SCHEDULED, error="503 from target")
    backdate(dynamodb, ledger.table, items["d"], "updated_at", LAST_YEAR)
    backdate(dynamodb, ledger.table, items["e"], "updated_at", LONG_AGO)
    backdate(dynamodb, ledger.table, items["p"], "received_at", LONG_AGO)
    rejected = entry(CRM_QUEUE, "ERROR_FROM_TARGET")
    ledger.put_rejected(
        dlq_message("{not json", CRM_QUEUE, "ERROR_FROM_TARGET", rejected.message_id),
        "body is not JSON",
    )
    items["x"] = Entry(
        event={"id": f"rejected:{rejected.message_id}"},
        target_arn=CRM_QUEUE,
        error_code="ERROR_FROM_TARGET",
        message_id=rejected.message_id,
    )
    return items


def snapshot(ledger: Ledger) -> dict[tuple[str, str], LedgerItem]:
    return {(i.event_id, i.target_arn): i for i in ledger.scan()}


def replays_queued(redis_client) -> list[tuple[str, str]]:
    return [(args[0], args[1]) for name, args in queued_tasks(redis_client) if name == REPLAY_TASK]


# --- setup and seed -------------------------------------------------------------------


def test_setup_local_creates_the_dlq_on_the_emulator_and_the_ledger_table(
    env, settings, sqs, unique
):
    result = run(env, "setup", "--local", "--queue", f"crm-{unique}", "--json")

    assert result.exit_code == 0, result.output
    done = json.loads(result.stdout)
    assert done["table_created"] is True
    assert done["dlq_url"].endswith(f"/dlq-{unique}")
    assert set(done["local_queues"]) == {f"dlq-{unique}", f"crm-{unique}"}
    for url in done["local_queues"].values():
        assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    table = aws_client("dynamodb", settings).describe_table(TableName=f"ledger-{unique}")["Table"]
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {
        "by-status",
        "by-conversation",
    }


def test_setup_run_twice_says_the_table_was_already_there(env, unique):
    first = run(env, "setup", "--local", "--json")
    second = run(env, "setup")
    again = run(env, "setup", "--json")

    assert first.exit_code == second.exit_code == again.exit_code == 0
    assert f"ledger table ledger-{unique}: already there" in second.stdout
    assert json.loads(again.stdout)["table_created"] is False
    assert json.loads(again.stdout)["dlq_url"] == json.loads(first.stdout)["dlq_url"]


def test_seed_puts_events_duplicates_and_malformed_messages_in_the_queue(env, sqs, unique):
    queue_url = sqs.create_queue(QueueName=f"seeded-{unique}")["QueueUrl"]

    result = run(
        env, "seed", "--count", "20", "--duplicates", "2", "--malformed", "1",
        "--queue-url", queue_url,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    assert f"sent 23 messages to {queue_url}" in result.stdout
    assert queue_depth(sqs, queue_url)["ApproximateNumberOfMessages"] == 23


def test_seed_local_makes_the_rule_its_messages_name_with_a_target_queue_on_the_emulator(
    env, settings, sqs, unique
):
    queue_url = sqs.create_queue(QueueName=f"seeded-{unique}")["QueueUrl"]

    result = run(env, "seed", "--local", "--count", "8", "--queue-url", queue_url)

    assert result.exit_code == 0, result.output
    (message,) = sqs.receive_message(
        QueueUrl=queue_url, MessageAttributeNames=["All"], MaxNumberOfMessages=1
    )["Messages"]
    attributes = {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}
    bus, rule = attributes["RULE_ARN"].split(":rule/")[1].split("/")
    targets = aws_client("events", settings).list_targets_by_rule(Rule=rule, EventBusName=bus)
    assert attributes["TARGET_ARN"] in {target["Arn"] for target in targets["Targets"]}
    account, name = attributes["TARGET_ARN"].split(":")[4:6]
    assert sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def test_seed_local_refuses_a_rule_arn_it_would_not_create(env, sqs, unique):
    queue_url = sqs.create_queue(QueueName=f"seeded-{unique}")["QueueUrl"]

    result = run(env, "seed", "--local", "--rule-arn", RULE, "--queue-url", queue_url)

    assert result.exit_code == 2
    assert result.stderr.strip() == "error: seed --local creates the rule itself: drop --rule-arn"


# --- poll ---------------------------------------------------------------------------------


def poll_until_empty(env) -> subprocess.CompletedProcess[str]:
    """`dlq-replay poll --until-empty`, as its own process."""
    return subprocess.run(
        [DLQ_CLI, "poll", "--until-empty"],
        env={**os.environ, **env, "POLLER_WAIT_SECONDS": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_poll_until_empty_drains_the_dlq_into_the_ledger_and_the_broker(
    env, ledger, sqs, redis_client
):
    assert run(env, "setup", "--local").exit_code == 0
    seeded = run(env, "seed", "--count", "20", "--duplicates", "2", "--malformed", "1",
                 "--seed", "3")  # fmt: skip
    assert seeded.exit_code == 0, seeded.output

    process = poll_until_empty(env)

    assert process.returncode == 0, process.stderr
    assert "poller stopped" in process.stderr
    items = list(ledger.scan())
    assert Counter(i.status for i in items) == {Status.RECEIVED: 20, Status.REJECTED: 1}
    assert sum(i.duplicates for i in items) == 2
    # While it drains, the poller parks each line's pass (a conversation's events for one
    # target and rule): a line's first event has its task (back at the hold's end), and
    # the receive that found the DLQ empty sent the line's pass; the other events of the
    # line have no task of their own, their line's pass replays them.
    received = [i for i in items if i.status is Status.RECEIVED]
    queued = [args for name, args in queued_tasks(redis_client) if name == REPLAY_TASK]
    first_of_line = {(args[0], args[1]) for args in queued}
    lines = {(i.conversation_id, i.target_arn, i.rule_arn) for i in received}
    by_key = {(i.event_id, i.target_arn): i for i in received}
    assert first_of_line <= set(by_key)
    assert {(by_key[k].conversation_id, k[1], by_key[k].rule_arn) for k in first_of_line} == lines
    assert len(queued) == 2 * len(lines) < 20  # its task, and its pass at the drain's end
    assert redis_client.hlen("dlq:arrival:parked") == 0  # taken by the drain's end
    assert queue_depth(sqs, env["DLQ_QUEUE_URL"]) == {
        "ApproximateNumberOfMessages": 0,
        "ApproximateNumberOfMessagesNotVisible": 0,
    }


def test_the_poller_writes_its_counts_as_it_stops_so_status_after_it_is_exact(env, redis_client):
    assert run(env, "setup", "--local").exit_code == 0
    seeded = run(env, "seed", "--count", "12", "--malformed", "1", "--seed", "5")
    assert seeded.exit_code == 0, seeded.output

    process = poll_until_empty(env)

    assert process.returncode == 0, process.stderr
    # As the moves left them (`status` would recount a tally never recounted yet).
    assert redis_client.hget(f"dlq:tally:{env['LEDGER_TABLE']}", "received") == b"12"
    report = json.loads(run(env, "status", "--json").stdout)
    assert report["by_outcome"]["ingested"] == 12
    assert report["by_outcome"]["rejected"] == 1


# --- status -------------------------------------------------------------------------------


def counted(settings, redis_client, ledger, *, clock=None) -> Counter[str]:
    """Count every final item of the ledger into the fleet's counters, as the workers and
    the ingest would have as it happened; answers the ledger's final statuses."""
    counters = OutcomeCounters(redis_client, settings.ledger_table, clock=clock or SYSTEM_CLOCK)
    statuses: Counter[str] = Counter()
    for item in ledger.scan():
        if item.status in FINAL_STATUSES:
            counters.finished(observed(item))
            statuses[item.status.value] += 1
    return statuses


def test_status_json_counts_what_waits_with_select_count_and_names_the_oldest_pending(
    env, populated
):
    result = run(env, "status", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["waiting"] == {
        "received": 1, "in_progress": 0, "retry_scheduled": 1, "failed": 3, "exhausted": 2,
    }  # fmt: skip
    oldest = report["oldest_pending"]
    assert oldest["event_id"] == populated["p"].event_id
    assert oldest["status"] == "received"
    assert oldest["received_at"] == LONG_AGO
    assert oldest["attempts"] == 0


def test_status_json_reads_outcomes_by_target_and_error_code_from_the_counters(
    env, populated, settings, ledger, redis_client
):
    statuses = counted(settings, redis_client, ledger)

    report = json.loads(run(env, "status", "--json").stdout)

    assert {o: n for o, n in report["by_outcome"].items() if n} == statuses
    assert report["by_target"]["failed"] == {"sqs:crm-events": 2, "lambda:crm-sync": 1}
    assert report["by_dlq_error_code"]["replayed"] == {"NO_PERMISSIONS": 1}
    assert report["by_dlq_error_code"]["rejected"] == {"ERROR_FROM_TARGET": 1}


def test_status_since_leaves_out_the_minutes_before_it(
    env, populated, settings, ledger, redis_client
):
    two_hours_ago = FakeClock(SYSTEM_CLOCK.now() - 7200)
    counted(settings, redis_client, ledger, clock=two_hours_ago)  # all outcomes, 2 h ago
    counters = OutcomeCounters(redis_client, settings.ledger_table)
    counters.ingested("accepted", target_arn=CRM_QUEUE, dlq_error_code="THROTTLING")

    recent = json.loads(run(env, "status", "--json", "--since", "1h").stdout)
    everything = json.loads(run(env, "status", "--json").stdout)

    assert {o: n for o, n in recent["by_outcome"].items() if n} == {"ingested": 1}
    assert everything["by_outcome"]["failed"] == 3


def test_status_piped_prints_the_tables_as_tsv(env, populated, settings, ledger, redis_client):
    counted(settings, redis_client, ledger)

    result = run(env, "status")

    assert result.exit_code == 0, result.output
    assert sorted(tsv_table(result.stdout, "waiting in the ledger now")) == [
        ["exhausted", "2"], ["failed", "3"], ["in_progress", "0"], ["received", "1"],
        ["retry_scheduled", "1"],
    ]  # fmt: skip
    assert ["failed", "3"] in tsv_table(result.stdout, "outcomes")
    assert ["failed", "sqs:crm-events", "2"] in tsv_table(result.stdout, "by target")
    assert (
        f"oldest pending: received {LONG_AGO} (" in result.stdout
        and f" ago), event {populated['p'].event_id}, now received, not tried yet\n"
        in result.stdout
    )


def test_status_of_an_empty_ledger_says_nothing_is_pending(env, ledger):
    result = run(env, "status")

    assert result.exit_code == 0, result.output
    assert "nothing pending" in result.stdout


def test_status_refuses_a_since_it_cannot_read(env, ledger):
    result = run(env, "status", "--since", "yesterday")

    assert result.exit_code == 2
    assert "Invalid value for '--since': 'yesterday' is not a time: use a duration back" in (
        result.output
    )
    assert "2026-12-01T10:00:00Z" in result.output


# --- inspect ------------------------------------------------------------------------------


@pytest.fixture()
def tracked(env, ledger, genesys_settings, sim_admin, redis_client):
    """A failed event whose conversation the tracker has annotated in the simulator."""
    conversation_id = str(uuid.uuid4())
    (body,) = sim_admin.seed(conversation_id)
    customer = next(p["id"] for p in body["participants"] if p["purpose"] == "customer")
    item = entry(CRM_QUEUE, "ERROR_FROM_TARGET", conversation_id)
    item.event["detail"]["eventBody"]["participantId"] = customer
    receive(ledger, item)
    attempt(ledger, item, Status.RETRY_SCHEDULED, error="503 from target")
    attempt(ledger, item, Status.FAILED, error="400 from target: bad payload")
    client = build_genesys_client(genesys_settings, redis_client)
    Tracker(
        ledger=ledger,
        client=client,
        directory=ConversationDirectory(client, redis_client),
        cache=redis_client,
        prefix="dlqReplay",
    ).track(conversation_id)
    cli_env = {
        **env,
        "GENESYS_API_BASE_URL": str(genesys_settings.genesys_api_base_url),
        "GENESYS_LOGIN_BASE_URL": str(genesys_settings.genesys_login_base_url),
        "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
        "GENESYS_CLIENT_SECRET": SIM_CLIENT_SECRET,
    }
    return cli_env, item, customer


def test_inspect_json_shows_the_dlq_error_the_original_body_every_attempt_and_tracking(
    tracked, ledger
):
    cli_env, item, _ = tracked

    result = run(cli_env, "inspect", item.event_id, "--json")

    assert result.exit_code == 0, result.output
    (shown,) = json.loads(result.stdout)
    stored = ledger.get(EventKey(item.event_id, item.target_arn, RULE))
    assert stored is not None
    assert shown["status"] == "failed"
    assert shown["attempts"] == 2
    assert shown["conversation_id"] == item.conversation_id
    assert shown["last_error"] == "400 from target: bad payload"
    assert shown["dlq"] == {
        "rule_arn": dlq_attributes(CRM_QUEUE)["RULE_ARN"]["StringValue"],
        "target_arn": CRM_QUEUE,
        "error_code": "ERROR_FROM_TARGET",
        "error_message": "Rate Exceeded.",
        "exhausted_retry_condition": "MaximumRetryAttempts",
        "retry_attempts": 185,
    }
    assert json.loads(shown["body"]) == item.event
    assert [h["outcome"] for h in shown["history"]] == ["received", "retry", "failed"]
    assert [h.get("error") for h in shown["history"]] == [
        None, "503 from target", "400 from target: bad payload",
    ]  # fmt: skip
    assert shown["tracking"]["covered"] == stored.updated_at
    assert shown["tracking"]["error"] is None


def test_inspect_with_genesys_reads_the_live_participant_attributes(tracked):
    cli_env, item, customer = tracked

    result = run(cli_env, "inspect", item.event_id, "--genesys", "--json")

    assert result.exit_code == 0, result.output
    (shown,) = json.loads(result.stdout)
    attributes = shown["genesys_attributes"]
    assert attributes, "the tracker's attributes should be on the customer participant"
    assert all(name.startswith(f"{customer}:dlqReplay") for name in attributes)
    assert item.event_id in attributes.values()


def test_inspect_with_genesys_waits_out_a_short_turn_of_the_shared_budget(tracked, redis_client):
    cli_env, item, _ = tracked
    # The workers have the budget for a moment (a 429's hold, here): the operator waits.
    RateLimiter(redis_client, SIM_CLIENT_ID, per_minute=60).penalise(1.5)

    result = run(cli_env, "inspect", item.event_id, "--genesys", "--json")

    assert result.exit_code == 0, result.output
    (shown,) = json.loads(result.stdout)
    assert shown["genesys_attributes"]


def test_inspect_finds_a_rejected_message_by_its_sqs_message_id(env, populated):
    rejected = populated["x"]

    # Unmasked: a body that is not JSON is withheld otherwise (its fields cannot be masked).
    result = run(env, "inspect", rejected.message_id, "--json", "--unmasked")

    assert result.exit_code == 0, result.output
    (shown,) = json.loads(result.stdout)
    assert shown["status"] == "rejected"
    assert shown["reject_reason"] == "body is not JSON"
    assert shown["body"] == "{not json"


def test_inspect_piped_prints_the_item_its_attempts_and_the_body(env, populated):
    failed = populated["a"]

    result = run(env, "inspect", failed.event_id)

    assert result.exit_code == 0, result.output
    fields = dict(
        row for row in tsv_table(result.stdout, f"event {failed.event_id} -> {CRM_QUEUE}")
    )
    assert fields["status"] == "failed"
    assert fields["DLQ error"] == "THROTTLING: Rate Exceeded."
    assert [row[1] for row in tsv_table(result.stdout, "attempts and operators' actions")] == [
        "received",
        "retry",
        "failed",
    ]
    assert failed.conversation_id in result.stdout.split("original body:", 1)[1]


@pytest.mark.parametrize("event_id", ["0d1e2f3a-0000-4000-8000-000000000000", "[/x] [redacted]"])
def test_inspect_of_an_unknown_event_exits_1_naming_it(env, ledger, event_id):
    result = run(env, "inspect", event_id)

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"error: no ledger item for event {event_id}; `dlq-replay status` lists what is there"
    )


# --- redrive ------------------------------------------------------------------------------

FILTERS = {
    "default: failed and exhausted": ([], "abcde"),
    "DLQ error code": (["--dlq-error-code", "THROTTLING"], "ace"),
    "target": (["--target-arn", CRM_LAMBDA], "cd"),
    "conversation": (["--conversation-id", "c2"], "bc"),
    "status": (["--status", "exhausted"], "bd"),
    "since": (["--since", "2022-01-01"], "abc"),
    "until": (["--until", "2021-01-01"], "e"),
    "since and until": (["--since", "2021-01-01", "--until", "2022-01-01"], "d"),
    "two filters": (["--status", "failed", "--target-arn", CRM_QUEUE], "ae"),
}


def filter_args(args: list[str], populated: dict[str, Entry]) -> list[str]:
    """The filter's arguments with the fixture's conversation names made real ids."""
    names = {"c2": populated["b"].conversation_id}
    return [names.get(arg, arg) for arg in args]


@pytest.mark.parametrize(("args", "expected"), FILTERS.values(), ids=FILTERS.keys())
def test_redrive_dry_run_lists_exactly_the_matching_items_and_changes_nothing(
    env, ledger, populated, redis_client, args, expected
):
    before = snapshot(ledger)

    result = run(env, "redrive", "--dry-run", "--json", *filter_args(args, populated))

    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["dry_run"] is True
    assert {(i["event_id"], i["target_arn"]) for i in listed["items"]} == {
        populated[name].key for name in expected
    }
    assert len(listed["items"]) == len(expected)
    assert snapshot(ledger) == before
    assert queued_tasks(redis_client) == []


def test_redrive_dry_run_piped_prints_the_table_of_what_would_be_redriven(env, populated):
    result = run(env, "redrive", "--dry-run", "--status", "exhausted")

    assert result.exit_code == 0, result.output
    rows = tsv_table(result.stdout, "2 items would be redriven")
    assert {(row[0], row[2]) for row in rows} == {
        (populated["b"].event_id, "exhausted"),
        (populated["d"].event_id, "exhausted"),
    }


@pytest.mark.parametrize(("args", "expected"), FILTERS.values(), ids=FILTERS.keys())
def test_redrive_moves_exactly_the_matching_items_back_to_received_and_enqueues_them(
    env, ledger, populated, redis_client, args, expected
):
    before = snapshot(ledger)
    chosen = {populated[name].key for name in expected}

    result = run(env, "redrive", "--yes", "--json", *filter_args(args, populated))

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary.pop("operator") == "arn:aws:sts::123456789012:user/moto"  # moto's caller
    assert summary == {"redriven": len(chosen), "skipped": 0}
    after = snapshot(ledger)
    for key in chosen:
        item = after[key]
        assert item.status is Status.RECEIVED
        assert item.attempts == 0
        assert item.history[-1]["outcome"] == "redrive by operator"
        assert list(item.history[:-1]) == list(before[key].history)
    assert {key: item for key, item in after.items() if key not in chosen} == {
        key: item for key, item in before.items() if key not in chosen
    }
    queued = replays_queued(redis_client)
    assert sorted(queued) == sorted(chosen)


def test_redrive_without_yes_asks_and_answering_no_changes_nothing(
    env, ledger, populated, redis_client
):
    before = snapshot(ledger)

    result = run(env, "redrive", "--status", "failed", input="n\n")

    assert result.exit_code == 1
    assert "Redrive 3 items? [y/N]" in result.output
    assert "Aborted" in result.output
    assert snapshot(ledger) == before
    assert queued_tasks(redis_client) == []


def test_redrive_without_yes_proceeds_when_the_operator_answers_yes(
    env, ledger, populated, redis_client
):
    result = run(env, "redrive", "--status", "exhausted", input="y\n")

    assert result.exit_code == 0, result.output
    assert (
        "redriven: 2 (by arn:aws:sts::123456789012:user/moto), skipped (changed meanwhile): 0"
        in result.stdout
    )
    assert sorted(replays_queued(redis_client)) == sorted([populated["b"].key, populated["d"].key])


def test_redrive_of_nothing_matching_enqueues_nothing(env, ledger, populated, redis_client):
    result = run(env, "redrive", "--yes", "--error-code", "NO_SUCH_CODE")

    assert result.exit_code == 0, result.output
    assert "0 items would be redriven" in result.stdout
    assert queued_tasks(redis_client) == []


# --- genesys-sim, configuration errors ----------------------------------------------------


def test_genesys_sim_help_shows_host_and_port(env):
    result = run(env, "genesys-sim", "--help")

    assert result.exit_code == 0
    assert "--host" in result.stdout
    assert "--port" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["setup"],
        ["status"],
        ["inspect", "0d1e2f3a-0000-4000-8000-000000000000"],
        ["redrive", "--dry-run"],
        ["seed", "--count", "1"],
    ],
    ids=lambda args: args[0],
)
def test_a_malformed_setting_exits_2_with_one_line_naming_the_variable(env, args):
    result = run({**env, "REPLAY_MAX_ATTEMPTS": "many"}, *args)

    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: REPLAY_MAX_ATTEMPTS is invalid")
    assert "Traceback" not in result.output


def logged(stderr: str) -> list[dict[str, Any]]:
    """The poller's stderr: JSON log lines, every one (a plain line fails here)."""
    return [json.loads(line) for line in stderr.splitlines()]


def test_a_malformed_setting_stops_poll_with_the_line_logged_at_error(env):
    # The poller's stderr is its JSON log: the line every command prints is one of them.
    result = run({**env, "REPLAY_MAX_ATTEMPTS": "many"}, "poll", "--until-empty")

    assert result.exit_code == 2
    (line,) = logged(result.stderr)
    assert line["level"] == "error"
    assert line["message"].startswith("REPLAY_MAX_ATTEMPTS is invalid")


def test_poll_without_a_dlq_url_exits_2_naming_the_variable(env):
    result = run({**env, "DLQ_QUEUE_URL": ""}, "poll", "--until-empty")

    assert result.exit_code == 2
    (line,) = logged(result.stderr)
    assert (line["level"], line["message"]) == (
        "error",
        "DLQ_QUEUE_URL is not set: the poller needs it",
    )


def test_inspect_payload_says_why_an_item_whose_rule_is_gone_would_not_be_redelivered(
    tracked, redis_url
):
    cli_env, item, _ = tracked

    result = run(
        {**cli_env, "REDIS_URL": redis_url}, "inspect", item.event_id, "--payload", "--json"
    )

    assert result.exit_code == 0, result.output
    (shown,) = json.loads(result.stdout)
    assert shown["payload_now"]["route"] == "none"
    assert "no longer exists" in shown["payload_now"]["error"]


def test_inspect_payload_shows_what_a_trusted_redelivery_would_send(tracked, redis_url):
    cli_env, item, _ = tracked
    env = {**cli_env, "REDIS_URL": redis_url, "REPLAY_TRUST_TARGET_ARN": "true"}

    result = run(env, "inspect", item.event_id, "--payload", "--json")

    (shown,) = json.loads(result.stdout)
    assert shown["payload_now"]["route"] == "trusted"
    assert json.loads(shown["payload_now"]["payload"]) == item.event
