"""Both front doors over real SQS (moto server), real DynamoDB (moto) and a real Redis broker."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest
from broker import queued_tasks
from helpers import (
    FIXTURES,
    ORG,
    RULE,
    dlq_attributes,
    genesys_event,
    lambda_record,
    new_ledger,
    new_queue,
)

from dlq.aws import aws_client
from dlq.ledger import Status
from dlq.metrics.counters import OutcomeCounters, read_counts
from ingest.frontdoor import FrontDoor
from ingest.lambda_handler import handler
from ingest.poller import Poller
from tasks.application import app
from tasks.names import REPLAY_TASK
from tasks.producer import CeleryEnqueuer

TARGET = "arn:aws:sqs:us-east-1:111122223333:crm-events"
OTHER_TARGET = "arn:aws:lambda:us-east-1:111122223333:function:crm-sync"


@pytest.fixture()
def settings(make_settings, moto_server, redis_url):
    return make_settings(redis_url=redis_url, genesys_org_id=ORG)


@pytest.fixture()
def front_door(settings, unique):
    ledger = new_ledger(settings, f"ledger-{unique}")
    return FrontDoor(ledger=ledger, enqueuer=CeleryEnqueuer(app), org_id=ORG)


def send(sqs, queue_url, body, target=TARGET):
    sqs.send_message(QueueUrl=queue_url, MessageBody=body, MessageAttributes=dlq_attributes(target))


def test_the_poller_drains_a_mixed_dlq_into_the_ledger_and_the_broker(
    settings, front_door, redis_client, unique
):
    sqs = aws_client("sqs", settings)
    queue_url = new_queue(settings, f"dlq-{unique}")
    conversation = str(uuid.uuid4())
    events = [genesys_event(conversation_id=conversation) for _ in range(4)]
    events += [genesys_event() for _ in range(2)]
    for event in events:
        send(sqs, queue_url, json.dumps(event))
    # EventBridge's duplicates: the same events again, under new SQS message ids.
    send(sqs, queue_url, json.dumps(events[0]))
    send(sqs, queue_url, json.dumps(events[5]))
    # The same event for a second target of the rule is a separate item.
    send(sqs, queue_url, json.dumps(events[1]), target=OTHER_TARGET)
    malformed = {
        "{not json": "body is not JSON",
        json.dumps({"detail-type": "x", "source": "s", "time": "2026-01-01T00:00:00Z"}): "id",
        json.dumps(genesys_event(org="0badc0de-0000-4000-8000-000000000000")): "GENESYS_ORG_ID",
    }
    for body in malformed:
        send(sqs, queue_url, body)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(genesys_event()))  # no attributes

    poller = Poller(
        sqs=sqs, queue_url=queue_url, front_door=front_door, receivers=2, wait_seconds=1
    )
    stats = poller.run(until_empty=True)

    assert stats.counts == {"accepted": 7, "duplicate": 2, "rejected": 4}
    items = list(front_door.ledger.scan())
    keys = [(i.event_id, i.target_arn) for i in items]
    assert len(keys) == len(set(keys)) == 11
    accepted = {(e["id"], TARGET) for e in events} | {(events[1]["id"], OTHER_TARGET)}
    assert {k for k, i in zip(keys, items, strict=True) if i.status is Status.RECEIVED} == accepted
    rejected = [i for i in items if i.status is Status.REJECTED]
    assert len(rejected) == 4
    for body, reason in malformed.items():
        [item] = [i for i in rejected if i.body == body]
        assert reason in item.reject_reason
    assert any("TARGET_ARN" in i.reject_reason for i in rejected)
    duplicates = {i.event_id: i.duplicates for i in items if i.duplicates}
    assert duplicates == {events[0]["id"]: 1, events[5]["id"]: 1}

    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"

    tasks = queued_tasks(redis_client)
    # The task carries the whole key (event, target, the rule the message named) and the
    # lock its attempt takes (the conversation), so the worker's first ledger call is the claim;
    # and the item's generation, None until a redrive.
    by_event = {e["id"]: e["detail"]["eventBody"]["conversationId"] for e in events}
    assert sorted(tuple(args) for _, args in tasks) == sorted(
        (*key, RULE, by_event[key[0]], None) for key in accepted
    )
    assert {name for name, _ in tasks} == {REPLAY_TASK}


class StopsBrokerAfter:
    """A real broker outage at a chosen point: stops redis-server after n enqueues."""

    def __init__(self, inner, redis_server, n):
        self.inner, self.redis_server, self.left = inner, redis_server, n

    def enqueue_replay(self, key, *, lock=None, countdown=0.0, generation=None, parked=False):
        self.inner.enqueue_replay(
            key, lock=lock, countdown=countdown, generation=generation, parked=parked
        )
        self.left -= 1
        if self.left == 0:
            self.redis_server.stop()


def test_the_lambda_reports_exactly_the_records_the_broker_refused(
    settings, front_door, redis_server, redis_client
):
    bodies = [json.dumps(genesys_event()) for _ in range(4)]
    records = [lambda_record(b, TARGET) for b in bodies[:2]]
    records.append(lambda_record("{not json", TARGET))
    records += [lambda_record(b, TARGET) for b in bodies[2:]]
    outage = FrontDoor(
        ledger=front_door.ledger,
        enqueuer=StopsBrokerAfter(front_door.enqueuer, redis_server, 2),
        org_id=ORG,
    )
    try:
        result = handler({"Records": records}, None, front_door=outage)
    finally:
        redis_server.start()

    failed = [f["itemIdentifier"] for f in result["batchItemFailures"]]
    assert failed == [records[3]["messageId"], records[4]["messageId"]]
    # SQS delivers the failed records again; with the broker back they go through.
    retry = handler({"Records": records[3:]}, None, front_door=front_door)
    assert retry == {"batchItemFailures": []}
    # Redis restarted empty: only the replays enqueued after the outage are in it.
    assert sorted(args[0] for _, args in queued_tasks(redis_client)) == sorted(
        json.loads(b)["id"] for b in bodies[2:]
    )
    items = list(front_door.ledger.scan())
    statuses = [i.status for i in items]
    assert statuses.count(Status.RECEIVED) == 4
    assert statuses.count(Status.REJECTED) == 1
    # The same SQS message coming back is a retry of its hand-off, not a duplicate.
    assert sum(i.duplicates for i in items) == 0


def test_the_lambda_reports_every_record_when_the_ledger_is_down(settings, unique, moto_server):
    door = FrontDoor(
        ledger=new_ledger(settings, f"ledger-{unique}"), enqueuer=CeleryEnqueuer(app), org_id=ORG
    )
    records = [lambda_record(json.dumps(genesys_event()), TARGET) for _ in range(2)]
    records.append(lambda_record("{not json", TARGET))
    moto_server.stop()
    try:
        result = handler({"Records": records}, None, front_door=door)
    finally:
        moto_server.start()
    assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [
        r["messageId"] for r in records
    ]


@pytest.mark.parametrize("event", [None, [], {"Records": "x"}, {"Records": [None, 3, {}]}])
def test_the_lambda_never_raises_on_a_malformed_event(front_door, event):
    result = handler(event, None, front_door=front_door)
    assert isinstance(result["batchItemFailures"], list)


def test_the_poller_stops_cleanly_on_sigterm_after_the_batch_in_hand(settings, unique, redis_url):
    import os
    import signal
    import subprocess
    import sys
    import time

    queue_url = new_queue(settings, f"dlq-{unique}")
    new_ledger(settings, f"ledger-{unique}")
    env = {
        **os.environ,
        "DLQ_QUEUE_URL": queue_url,
        "LEDGER_TABLE": f"ledger-{unique}",
        "REDIS_URL": redis_url,
        "POLLER_WAIT_SECONDS": "1",
    }
    poller = subprocess.Popen(
        [sys.executable, "-c", "from cli.main import main; main()", "poll"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sqs = aws_client("sqs", settings)
    send(sqs, queue_url, json.dumps(genesys_event()))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        depth = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
        counts = depth["Attributes"]
        if (
            counts["ApproximateNumberOfMessages"]
            == "0"
            == counts["ApproximateNumberOfMessagesNotVisible"]
        ):
            break
        time.sleep(0.2)
    poller.send_signal(signal.SIGTERM)
    stdout, stderr = poller.communicate(timeout=30)
    assert poller.returncode == 0, stderr
    ended = json.loads(stdout.splitlines()[-1])
    assert (ended["accepted"], ended["kept"], ended["until_empty"]) == (1, 0, False)


def test_a_subscriber_record_leaves_one_rejected_item_per_named_event_and_no_task(
    settings, front_door, redis_client, unique
):
    # The EventBridge user guide documents this record (eb-custom-bus-retry): it names
    # the events that failed, but does not carry them, so nothing can be redelivered;
    # each event is kept findable by its own id, with the record's error and the way out.
    sqs = aws_client("sqs", settings)
    queue_url = new_queue(settings, f"dlq-{unique}")
    failed = [str(uuid.uuid4()), str(uuid.uuid4())]
    record = {
        "version": "1.0",
        "busArn": "arn:aws:events:us-east-1:111122223333:event-busv2/orders/EXAMPLE",
        "subscriberArn": "arn:aws:events:us-east-1:111122223333:subscriber/crm/EXAMPLE",
        "targetArn": TARGET,
        "errorCode": "ACCESS_DENIED",
        "errorMessage": "The delivery role is not authorized.",
        "exhaustedRetryCondition": "MaximumEventAgeInSeconds",
        "retryAttempts": 4,
        "failedMessages": [{"eventId": event_id} for event_id in failed],
    }
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))

    stats = Poller(sqs=sqs, queue_url=queue_url, front_door=front_door, wait_seconds=0).run(
        until_empty=True
    )

    assert stats.counts == {"rejected": 1}
    for event_id in failed:
        [item] = front_door.ledger.items_for_event(event_id)
        assert item.status is Status.REJECTED
        assert item.target_arn == TARGET
        assert item.dlq.error_code == "ACCESS_DENIED"
        assert item.rule_arn == record["subscriberArn"]
        assert "archive" in (item.reject_reason or "")
        assert item.body == json.dumps(record)
    assert queued_tasks(redis_client) == []


def test_the_lambda_prints_one_emf_line_with_the_batchs_counts_and_counts_for_status(
    settings, unique, redis_client, capsys
):
    """The fixture batch: two events (one per target) and a body that is not JSON; then
    EventBridge's duplicate of the first, under a new SQS message id."""
    event = json.loads((FIXTURES / "dlq-lambda-sqs-event.json").read_text())
    table = f"ledger-{unique}"
    door = FrontDoor(
        ledger=new_ledger(settings, table),
        enqueuer=CeleryEnqueuer(app),
        org_id=ORG,
        metrics=OutcomeCounters(redis_client, table),
    )

    assert handler(event, None, front_door=door) == {"batchItemFailures": []}
    [line] = capsys.readouterr().out.splitlines()
    duplicate = {**event["Records"][0], "messageId": str(uuid.uuid4())}
    handler({"Records": [duplicate]}, None, front_door=door)
    [again] = capsys.readouterr().out.splitlines()

    document = json.loads(line)
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "DlqReplay"
    assert directive["Dimensions"] == [[]]  # what template.yaml's alarms watch
    assert {m["Name"] for m in directive["Metrics"]} == {"EventsIngested", "EventsRejected"}
    statuses = Counter(i.status for i in door.ledger.scan())
    assert document["EventsIngested"] == statuses[Status.RECEIVED] == 2
    assert document["EventsRejected"] == statuses[Status.REJECTED] == 1
    assert json.loads(again)["EventsDuplicate"] == 1
    counted = read_counts(redis_client, table, since=time.time() - 120, until=time.time())
    assert counted.by_outcome == {"ingested": 2, "rejected": 1, "duplicate": 1}
    assert counted.by_target[("ingested", "lambda:crm-sync")] == 1
    assert counted.by_dlq_error_code[("ingested", "NO_PERMISSIONS")] == 1
