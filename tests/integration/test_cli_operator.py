"""What an operator reads at the terminal: `status --status`, `status --watch`, whole ids.

Against the real stand-ins (moto's server, redis-server), through click's runner with the
settings in `env=`. A terminal is simulated with rich's own switches (TTY_COMPATIBLE,
COLUMNS), so the rich layout is what is checked, at 80 columns.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import pytest
import redis
from click.testing import CliRunner, Result
from helpers import SIM_CLIENT_ID, genesys_event, parsed, received_message

from cli.main import main
from dlq.aws import aws_client
from dlq.clock import FakeClock
from dlq.ledger import Ledger, Status, create_table
from dlq.ratelimit import Priority, RateLimiter
from dlq.settings import load_settings

CRM = "arn:aws:sqs:us-east-1:111122223333:crm-events"
WEBHOOK = "arn:aws:events:us-east-1:111122223333:api-destination/crm-webhook/always-503"
#: What a terminal 80 columns wide looks like to rich.
NARROW_TTY = {"TTY_COMPATIBLE": "1", "COLUMNS": "80", "NO_COLOR": "1"}


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def plain(text: str) -> str:
    """Terminal output without its styles (bold, dim: NO_COLOR keeps those)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


@pytest.fixture()
def env(moto_server, redis_url, unique) -> dict[str, str]:
    return {
        "LEDGER_TABLE": f"ledger-{unique}",
        "DLQ_QUEUE_URL": f"{moto_server.url}/123456789012/dlq-{unique}",
        "REDIS_URL": redis_url,
        "REPLAY_PARKING_QUEUE_URL": "",
        "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
        "GENESYS_RATE_LIMIT_PER_MINUTE": "240",
    }


@pytest.fixture()
def clock() -> FakeClock:
    # Thirty seconds ago, so what the ledger records now falls in the watch's first minute.
    return FakeClock(start=time.time() - 30)


@pytest.fixture()
def ledger(env, clock) -> Ledger:
    settings = load_settings(_env_file=None, **{k.lower(): v for k, v in env.items()})
    client = aws_client("dynamodb", settings)
    create_table(client, settings.ledger_table)
    return Ledger(client, settings.ledger_table, clock=clock)


def reject(ledger: Ledger, clock: FakeClock, reason: str) -> str:
    """A rejected item as the ingest keeps it; its SQS message id."""
    message_id = str(uuid.uuid4())
    assert ledger.put_rejected(received_message("{not json", CRM, message_id), reason)
    clock.advance(1)
    return message_id


def finish(ledger: Ledger, target: str, status: Status, code: str | None = None) -> str:
    event, message = parsed(genesys_event(), target)
    ledger.put_received(event, message)
    if status is not Status.RECEIVED:
        claimed = ledger.claim(event.key, lease_seconds=60)
        ledger.finish(claimed, status, outcome=status.value, error="503", error_code=code)
    return str(event.key.event_id)


# --- status --status -------------------------------------------------------------------


def test_status_rejected_lists_reason_and_message_id_newest_first(env, ledger, clock):
    first = reject(ledger, clock, "body is not JSON")
    second = reject(ledger, clock, "event from org X, not from GENESYS_ORG_ID Y")
    finish(ledger, CRM, Status.REPLAYED)  # another status: not listed

    result = run(env, "status", "--status", "rejected", "--json")

    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [i["sqs_message_id"] for i in listed] == [second, first]
    assert [i["reject_reason"] for i in listed] == [
        "event from org X, not from GENESYS_ORG_ID Y",
        "body is not JSON",
    ]


def test_status_limit_keeps_the_newest_and_says_more_exist(env, ledger, clock):
    ids = [reject(ledger, clock, f"reason {n}") for n in range(3)]

    result = run(env, "status", "--status", "rejected", "--limit", "2")

    assert result.exit_code == 0, result.output
    assert "# 2 newest rejected items (the first 2: --limit shows more)" in result.stdout
    assert ids[2] in result.stdout and ids[1] in result.stdout
    assert ids[0] not in result.stdout


def test_a_listed_message_id_is_what_inspect_takes(env, ledger, clock):
    message_id = reject(ledger, clock, "body is not JSON")

    result = run(env, "inspect", message_id, "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["reject_reason"] == "body is not JSON"


def test_status_failed_lists_event_target_and_last_error(env, ledger):
    event_id = finish(ledger, WEBHOOK, Status.FAILED, "HTTP403")

    result = run(env, "status", "--status", "failed", "--json")

    [item] = json.loads(result.stdout)
    assert (item["event_id"], item["target_arn"], item["last_error"]) == (event_id, WEBHOOK, "503")


def test_at_80_columns_every_listed_id_and_arn_appears_whole(env, ledger, clock):
    message_id = reject(ledger, clock, "body is not JSON: Expecting value: line 1 column 1")
    event_id = finish(ledger, WEBHOOK, Status.EXHAUSTED, "HTTP503")

    rejected = run({**env, **NARROW_TTY}, "status", "--status", "rejected")
    exhausted = run({**env, **NARROW_TTY}, "status", "--status", "exhausted")

    assert message_id in plain(rejected.stdout)
    assert event_id in plain(exhausted.stdout)
    assert WEBHOOK in plain(exhausted.stdout)
    assert "…" not in rejected.stdout + exhausted.stdout


def test_at_80_columns_inspect_prints_the_event_id_and_target_whole(env, ledger):
    event_id = finish(ledger, WEBHOOK, Status.EXHAUSTED, "HTTP503")

    result = run({**env, **NARROW_TTY}, "inspect", event_id)

    assert result.exit_code == 0, result.output
    assert f"event {event_id} -> {WEBHOOK}" in plain(result.stdout)
    assert "…" not in result.stdout


# --- status --watch ----------------------------------------------------------------------


@pytest.fixture()
def busy(env, ledger, clock, redis_url):
    """A system at work: outcomes in the last minute, a backlog in the DLQ and the ledger,
    Genesys calls granted by the real limiter."""
    for _ in range(4):
        finish(ledger, CRM, Status.REPLAYED)
    for _ in range(2):
        finish(ledger, WEBHOOK, Status.EXHAUSTED, "HTTP503")
    finish(ledger, CRM, Status.RECEIVED)
    clock.advance(1)
    settings = load_settings(_env_file=None, **{k.lower(): v for k, v in env.items()})
    sqs = aws_client("sqs", settings)
    url = sqs.create_queue(QueueName=env["DLQ_QUEUE_URL"].rsplit("/", 1)[1])["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    limiter = RateLimiter(redis.Redis.from_url(redis_url), SIM_CLIENT_ID, per_minute=240, burst=3)
    assert [limiter.acquire(Priority.HIGH) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_watch_once_json_has_rates_backlog_eta_budget_and_failing_targets(env, busy):
    result = run(env, "status", "--watch", "--once", "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["outcomes"]["replayed"] == 4
    assert data["outcomes"]["exhausted"] == 2
    assert data["per_minute"]["replayed"] == 4.0  # the first look covers one minute
    assert data["dlq"]["visible"] == 3
    assert data["pending"]["received"] == 1
    assert data["backlog"] == 4
    assert data["eta_seconds"] == pytest.approx(4 / 6 * 60)
    assert data["budget"]["granted"] == 3
    assert data["budget"]["allowed"] == 240
    [top] = data["top_targets"]
    assert top["target_arn"] == WEBHOOK
    assert top["counts"] == {"exhausted": 2}
    assert data["dlq_error"] is None and data["budget_error"] is None


def test_watch_once_renders_one_frame_at_80_columns(env, busy):
    result = run({**env, **NARROW_TTY}, "status", "--watch", "--once")

    assert result.exit_code == 0, result.output
    frame = plain(result.stdout)
    assert "ETA to drain" in frame
    assert "Genesys budget: 3 of 240 calls" in frame
    assert WEBHOOK in frame.splitlines()


def test_watch_without_once_refuses_json(env, ledger):
    result = CliRunner().invoke(main, ["status", "--watch", "--json"], env=env)

    assert result.exit_code == 2
    assert "--json with --watch needs --once" in result.output
