"""`dlq-replay pause`, `resume`, `paused`, and the held targets `status` shows.

Against moto's server and redis-server, through click's runner with the settings in
`env=`; the pause is read back from the ledger and from the fleet's Redis copy, as a
worker reads it.
"""

from __future__ import annotations

import json
import time

import pytest
import redis
from click.testing import CliRunner, Result

from cli.main import main
from dlq.aws import aws_client
from dlq.holds.breaker import BreakerRule
from dlq.holds.fleet import FleetBreakers
from dlq.holds.pauses import COPY_KEY, Pauses
from dlq.ledger import Ledger, create_table
from dlq.ledger.pauses import LedgerPauses, PauseBook
from dlq.settings import load_settings

CRM = "arn:aws:sqs:us-east-1:111122223333:crm-events"
WEBHOOK = "arn:aws:events:us-east-1:111122223333:api-destination/crm-webhook/x"


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture()
def env(moto_server, redis_url, unique) -> dict[str, str]:
    values = {"LEDGER_TABLE": f"ledger-{unique}", "REDIS_URL": redis_url}
    settings = load_settings(_env_file=None, **{k.lower(): v for k, v in values.items()})
    create_table(aws_client("dynamodb", settings), settings.ledger_table)
    return values


def stored(env: dict[str, str]) -> PauseBook:
    settings = load_settings(_env_file=None, ledger_table=env["LEDGER_TABLE"])
    return LedgerPauses(aws_client("dynamodb", settings), settings.ledger_table).read()


def test_pause_records_who_why_and_until_and_paused_lists_it(env) -> None:
    done = run(env, "pause", "--target-arn", CRM, "--for", "2h", "--reason", "CRM upgrade",
               "--operator", "alice")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"paused {CRM} until " in done.output and "by alice: CRM upgrade" in done.output
    pause = stored(env).active(CRM, time.time())
    assert pause is not None
    assert (pause.operator, pause.reason) == ("alice", "CRM upgrade")
    assert pause.until is not None and 7190 < pause.until - pause.since <= 7200
    listed = json.loads(run(env, "paused", "--json").output)
    assert [(p["target_arn"], p["operator"], p["reason"]) for p in listed] == [
        (CRM, "alice", "CRM upgrade")
    ]
    table = run(env, "paused").output
    assert CRM in table and "alice" in table and "CRM upgrade" in table


def test_resume_ends_it_in_the_ledger_and_in_the_fleets_copy(env, redis_client) -> None:
    run(env, "pause", "--target-arn", CRM, "--reason", "r", "--operator", "alice")
    assert PauseBook.from_json(redis_client.get(COPY_KEY)).active(CRM, time.time())
    done = run(env, "resume", "--target-arn", CRM, "--operator", "bob")
    assert done.exit_code == 0, done.output
    assert "resumed" in done.output and "by bob" in done.output and "alice: r" in done.output
    assert stored(env).active(CRM, time.time()) is None
    assert PauseBook.from_json(redis_client.get(COPY_KEY)).active(CRM, time.time()) is None
    assert run(env, "paused").output.strip() == "no target is paused"


def test_resume_of_a_target_not_paused_exits_1(env) -> None:
    done = run(env, "resume", "--target-arn", CRM, "--operator", "bob")
    assert done.exit_code == 1
    assert "was not paused" in done.output


def test_a_bad_duration_is_refused_before_anything_is_written(env) -> None:
    done = run(env, "pause", "--target-arn", CRM, "--for", "soon", "--reason", "r")
    assert done.exit_code == 2
    assert "90s, 30m, 2h or 1d" in done.output
    assert stored(env) == PauseBook()


def test_a_pause_survives_losing_the_redis_copy(env, redis_client, redis_url) -> None:
    run(env, "pause", "--target-arn", CRM, "--reason", "r", "--operator", "alice")
    redis_client.flushall()
    settings = load_settings(_env_file=None, ledger_table=env["LEDGER_TABLE"])
    store = LedgerPauses(aws_client("dynamodb", settings), settings.ledger_table)
    worker_view = Pauses(store, redis.Redis.from_url(redis_url), cache_seconds=5)
    assert worker_view.book().active(CRM, time.time()) is not None
    assert redis_client.ttl(COPY_KEY) > 0  # rebuilt, for a short while


def test_the_pauses_item_is_no_event_to_any_ledger_read(env) -> None:
    run(env, "pause", "--target-arn", CRM, "--reason", "r", "--operator", "alice")
    settings = load_settings(_env_file=None, ledger_table=env["LEDGER_TABLE"])
    ledger = Ledger(aws_client("dynamodb", settings), settings.ledger_table)
    assert list(ledger.scan()) == []
    assert ledger.items_for_event("pause#") == []
    status = json.loads(run(env, "status", "--json").output)
    assert sum(status["waiting"].values()) == 0
    assert [h["target_arn"] for h in status["targets_held"]] == [CRM]


def test_status_shows_paused_targets_and_open_breakers(env, redis_client) -> None:
    run(env, "pause", "--target-arn", CRM, "--reason", "CRM upgrade", "--operator", "alice")
    breakers = FleetBreakers(redis_client, BreakerRule(failures=2))
    now = time.time()
    breakers.failed(WEBHOOK, now=now)
    breakers.failed(WEBHOOK, now=now)
    report = json.loads(run(env, "status", "--json").output)
    held = {h["target_arn"]: h for h in report["targets_held"]}
    assert held[CRM]["hold"] == "paused" and "alice: CRM upgrade" in held[CRM]["detail"]
    assert held[WEBHOOK]["hold"] == "breaker open"
    assert held[WEBHOOK]["items_waiting"] == 0
    text = run(env, "status").output
    assert "targets held" in text and WEBHOOK in text and "breaker open" in text
