"""One vocabulary of failure codes: `status`, `inspect`, `redrive` and the metrics agree.

The *error code* is the replay's own (`HTTP503`, `NotARuleTarget`): what a real worker
records in the ledger and counts in Redis, what `status` counts failed and exhausted
outcomes by, and what `redrive --error-code` selects. The *DLQ error code* is
EventBridge's `ERROR_CODE` attribute (`ERROR_FROM_TARGET`), selected by `redrive
--dlq-error-code`. Against the real stand-ins: moto's server, redis-server, the Genesys
simulator, an HTTP sink answering 503, and a real Celery worker in this process.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result
from helpers import dlq_attributes, eventually, genesys_event, new_ledger, parsed
from stack import HttpSink, Stack, configured, in_process_worker, sim_env

from cli.main import main
from dlq.ledger import Status
from dlq.metrics.counters import OutcomeCounters
from dlq.replay.recorded import observed

pytestmark = pytest.mark.slow

#: Answers 503 (an HttpSink): its events end `exhausted` with the code HTTP503.
FAILING = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f"
#: Not a target of the stack's rule: its events end `failed` with NotARuleTarget.
STRANGER = "arn:aws:sqs:us-east-1:111122223333:not-a-rule-target"


#: The outcomes a replay ends with.
FINISHED = ("replayed", "failed", "exhausted")


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def as_json(env: dict[str, str], *args: str) -> Any:
    result = run(env, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def worker(redis_server, moto_server, sim):
    with configured(sim_env(sim)), in_process_worker():
        yield


@pytest.fixture(scope="module")
def replayed(worker, sim, redis_server):
    """Five DLQ messages, replayed by the worker until each is final.

    exhausted, HTTP503:        f1, f2 (DLQ: ERROR_FROM_TARGET), f3 (DLQ: THROTTLING)
    failed, NotARuleTarget:    s1 (DLQ: ERROR_FROM_TARGET)
    replayed:                  ok (DLQ: THROTTLING)
    """
    sim.admin.reset()
    unique = uuid.uuid4().hex[:10]
    with (
        HttpSink(status=503) as sink,
        configured(
            {
                "LEDGER_TABLE": f"ledger-{unique}",
                "REPLAY_HTTP_TARGETS": json.dumps({FAILING: sink.url}),
                "REPLAY_MAX_ATTEMPTS": "1",
                "REPLAY_VERIFY_CONVERSATION": "false",
                "REPLAY_PARKING_QUEUE_URL": "",
            }
        ),
    ):
        stack = Stack(unique, sim)
        stack.add_target(FAILING)
        events: dict[str, str] = {}
        for name, target, dlq_code in [
            ("f1", FAILING, "ERROR_FROM_TARGET"),
            ("f2", FAILING, "ERROR_FROM_TARGET"),
            ("f3", FAILING, "THROTTLING"),
            ("s1", STRANGER, "ERROR_FROM_TARGET"),
            ("ok", stack.target_arn, "THROTTLING"),
        ]:
            event = genesys_event()
            events[name] = event["id"]
            attributes = dlq_attributes(target, error_code=dlq_code, rule_arn=stack.rule_arn)
            stack.sqs.send_message(
                QueueUrl=stack.dlq_url, MessageBody=json.dumps(event), MessageAttributes=attributes
            )
        stack.ingest()
        stack.wait_final(5)
        env = {
            "LEDGER_TABLE": stack.settings.ledger_table,
            "DLQ_QUEUE_URL": stack.dlq_url,
            "REDIS_URL": redis_server.url,
            "REPLAY_PARKING_QUEUE_URL": "",
        }
        # The worker writes its outcome counts every FLUSH_SECONDS, not as the ledger does.
        eventually(
            lambda: sum(as_json(env, "status")["by_outcome"][o] for o in FINISHED) == 5,
            timeout=10,
            what="the worker's outcome counts",
        )
        yield env, events


def test_status_counts_failures_by_the_replays_code_and_the_dlqs_apart(replayed):
    env, _ = replayed

    report = as_json(env, "status")

    assert report["by_error_code"] == {"exhausted": {"HTTP503": 3}, "failed": {"NotARuleTarget": 1}}
    assert report["by_dlq_error_code"] == {
        "exhausted": {"ERROR_FROM_TARGET": 2, "THROTTLING": 1},
        "failed": {"ERROR_FROM_TARGET": 1},
        "replayed": {"THROTTLING": 1},
    }


def test_redrive_error_code_selects_exactly_what_status_counts_under_that_code(replayed):
    env, events = replayed
    counted = as_json(env, "status")["by_error_code"]

    for code in ("HTTP503", "NotARuleTarget"):
        chosen = as_json(env, "redrive", "--dry-run", "--error-code", code)["items"]

        assert len(chosen) == sum(codes.get(code, 0) for codes in counted.values())
        assert {item["error_code"] for item in chosen} == {code}
    chosen = as_json(env, "redrive", "--dry-run", "--error-code", "HTTP503")["items"]
    assert {item["event_id"] for item in chosen} == {events["f1"], events["f2"], events["f3"]}


def test_redrive_dlq_error_code_selects_by_the_dlqs_attribute(replayed):
    env, events = replayed

    chosen = as_json(env, "redrive", "--dry-run", "--dlq-error-code", "ERROR_FROM_TARGET")["items"]

    assert {item["event_id"] for item in chosen} == {events["f1"], events["f2"], events["s1"]}
    assert {item["error_code"] for item in chosen} == {"HTTP503", "NotARuleTarget"}


def test_both_codes_together_narrow_to_their_intersection(replayed):
    env, events = replayed

    chosen = as_json(
        env, "redrive", "--dry-run", "--error-code", "HTTP503", "--dlq-error-code", "THROTTLING"
    )["items"]

    assert [item["event_id"] for item in chosen] == [events["f3"]]


def test_inspect_and_the_status_listing_show_the_code_status_counts(replayed):
    env, events = replayed

    [inspected] = as_json(env, "inspect", events["f1"])
    listed = as_json(env, "status", "--status", "exhausted")

    assert inspected["last_error_code"] == "HTTP503"
    assert inspected["dlq"]["error_code"] == "ERROR_FROM_TARGET"
    assert {item["last_error_code"] for item in listed} == {"HTTP503"}


def test_redrive_error_code_given_an_eventbridge_code_names_the_flag_for_it(replayed):
    env, _ = replayed

    result = run(env, "redrive", "--dry-run", "--error-code", "ERROR_FROM_TARGET")

    assert result.exit_code == 0, result.output
    assert "0 items would be redriven" in result.stdout
    assert "use --dlq-error-code ERROR_FROM_TARGET" in result.stderr


def test_a_code_the_ledger_respells_is_selected_by_the_spelling_status_shows(
    moto_server, redis_server, unique, make_settings
):
    """A code longer than a code may be, or with characters a label cannot hold, is kept
    as `status` shows it, and both spellings select it."""
    # The session's Redis, not emptied: the module's replays keep their counts in it.
    env = {"LEDGER_TABLE": f"ledger-{unique}", "REDIS_URL": redis_server.url}
    ledger = new_ledger(make_settings(), env["LEDGER_TABLE"])
    raw = "AWS.SimpleQueueService.NonExistentQueue in eu-west-1 (again)"
    event, message = parsed(genesys_event(), STRANGER)
    ledger.put_received(event, message)
    claimed = ledger.claim(event.key, lease_seconds=60)
    failed = ledger.finish(claimed, Status.FAILED, outcome="failed", error="gone", error_code=raw)
    with redis.Redis.from_url(redis_server.url) as client:
        OutcomeCounters(client, env["LEDGER_TABLE"]).finished(observed(failed))

    [(shown, _)] = as_json(env, "status")["by_error_code"]["failed"].items()

    assert failed.last_error_code == shown == "AWS.SimpleQueueService.NonExistentQueue_"
    for spelling in (shown, raw):
        chosen = as_json(env, "redrive", "--dry-run", "--error-code", spelling)["items"]
        assert [item["event_id"] for item in chosen] == [failed.event_id]
