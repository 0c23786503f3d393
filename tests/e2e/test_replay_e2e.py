"""DLQ -> ingest -> Celery worker -> original target, end to end on the real stand-ins."""

from __future__ import annotations

import contextlib
import functools
import json
import random
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import redis
from helpers import eventually, genesys_event
from stack import HttpSink, Stack, configured, in_process_worker, sim_env

from devstack.sim_admin import GET_CONVERSATION, PATCH_ATTRIBUTES
from dlq.events import EventKey
from dlq.ledger import Status
from dlq.locks import ConversationLocks
from dlq.replay import CLOCK_SLACK_SECONDS
from dlq.targets import execution_name
from tasks.application import app
from tasks.producer import CeleryEnqueuer

pytestmark = pytest.mark.slow
API_DESTINATION = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f"


@pytest.fixture(scope="module")
def worker(redis_server, moto_server, sim):
    with configured(sim_env(sim)), in_process_worker():
        yield


@pytest.fixture()
def stack(worker, sim, unique, redis_url):
    sim.admin.reset()
    sim.admin.configure(rate_limit=100_000)
    with configured({"LEDGER_TABLE": f"ledger-{unique}"}):
        yield Stack(unique, sim)


def conversations_with_events(stack, conversations: int, per_conversation: int):
    ids = [str(uuid.uuid4()) for _ in range(conversations)]
    stack.sim.admin.seed(*ids)
    topics = ["customer.start", "acd.start", "agent.end", "customer.end"]
    events = []
    for conversation in ids:
        for n in range(per_conversation):
            event = genesys_event(conversation_id=conversation, topic=topics[n % len(topics)])
            del event["detail"]["eventBody"]["participantId"]  # annotate the customer
            events.append(event)
    return ids, events


def test_forty_events_over_ten_conversations_arrive_once_and_cost_one_lookup_each(stack):
    conversations, events = conversations_with_events(stack, 10, 4)
    for event in events:
        stack.put_dlq(event)

    assert stack.ingest() == {"accepted": 40}
    items = stack.wait_final(40)

    assert {i.status for i in items} == {Status.REPLAYED}
    arrived = Counter(json.loads(body)["id"] for body in stack.target_messages())
    assert arrived == Counter(e["id"] for e in events)
    bodies = {json.loads(b)["id"]: b for b in [json.dumps(e) for e in events]}
    assert all(i.body == bodies[i.event_id] for i in items)

    wait_for_tracking(stack, conversations)
    stats = stack.sim.admin.stats()
    lookups, patches = stats.count(GET_CONVERSATION), stats.count(PATCH_ATTRIBUTES)
    print(f"40 events / 10 conversations: {lookups} lookups, {patches} PATCHes")
    assert lookups <= 10
    assert patches <= 15
    for conversation in conversations:
        customer = customer_of(stack, conversation)
        attributes = stack.sim.admin.attributes(conversation, customer)
        assert attributes["dlqReplayStatus"] == "replayed"
        assert attributes["dlqReplayReplayed"] == "4"
        assert attributes["dlqReplayEvents"] == "4"


def test_with_verification_off_redelivery_ignores_a_genesys_outage_and_tracking_catches_up(stack):
    conversations, events = conversations_with_events(stack, 3, 2)
    stack.sim.admin.configure(reject_all=True)
    with configured({"REPLAY_VERIFY_CONVERSATION": "false"}):
        for event in events:
            stack.put_dlq(event)
        stack.ingest()
        items = stack.wait_final(6)
        assert {i.status for i in items} == {Status.REPLAYED}
        assert len(stack.target_messages()) == 6
        assert stack.sim.admin.stats().count(PATCH_ATTRIBUTES, 200) == 0

        stack.sim.admin.configure(reject_all=False)
        wait_for_tracking(stack, conversations)
    assert stack.sim.admin.stats().count(GET_CONVERSATION, 200) <= 3


def test_a_conversation_answering_503_twice_waits_without_spending_attempts(stack):
    [conversation], events = conversations_with_events(stack, 1, 1)
    stack.sim.admin.script(conversation, [503, 503])
    # Scripted answers serve any call on the conversation: tracking waits until the
    # replay is done, so both go to the lookups.
    with configured({"REPLAY_TRACKING_DEBOUNCE_SECONDS": "60"}):
        stack.put_dlq(events[0])
        stack.ingest()
        [item] = stack.wait_final(1)
    # Genesys's 503s are waits, not attempts: one attempt, the one that delivered.
    assert item.status is Status.REPLAYED
    assert (item.attempts, item.waits) == (1, 2)
    assert [h["outcome"] for h in item.history] == ["received", "waiting", "replayed"]
    assert item.history[1]["times"] == 2
    assert "503" in item.history[1]["error"]
    assert len(stack.target_messages()) == 1


def test_a_changed_backoff_base_changes_the_next_countdown_in_the_same_process(stack):
    # The policy is read when a retry is scheduled, not when the task module was
    # imported: the same worker, two settings, two countdowns (base * 2**0, no jitter).
    waits = {}
    for base in ("3", "9"):
        event = genesys_event()
        with (
            HttpSink(status=500) as sink,
            configured(
                {
                    "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url}),
                    "REPLAY_VERIFY_CONVERSATION": "false",
                    "REPLAY_BACKOFF_BASE": base,
                    "REPLAY_BACKOFF_MAX": "60",
                    "REPLAY_BACKOFF_JITTER": "false",
                }
            ),
        ):
            stack.put_dlq(event, target_arn=API_DESTINATION)
            stack.ingest()
            item = eventually(
                functools.partial(retry_scheduled, stack, event["id"]),
                timeout=30,
                what="the first attempt failing",
            )
        failed_at = datetime.fromisoformat(item.history[-1]["at"]).timestamp()
        waits[base] = round(item.next_attempt_at - failed_at + CLOCK_SLACK_SECONDS)

    assert waits == {"3": 3, "9": 9}


def retry_scheduled(stack, event_id):
    item = stack.ledger.get(EventKey(event_id, API_DESTINATION, stack.rule_arn))
    return item if item is not None and item.status is Status.RETRY_SCHEDULED else None


def test_a_429_storm_is_ridden_out_with_retry_after_and_nothing_is_lost(stack):
    conversations, events = conversations_with_events(stack, 4, 2)
    for conversation in conversations:
        stack.sim.admin.script(conversation, [{"status": 429, "retry_after": 1}] * 2)
    for event in events:
        stack.put_dlq(event)
    stack.ingest()
    items = stack.wait_final(8, timeout=90)
    assert {i.status for i in items} == {Status.REPLAYED}
    assert len(stack.target_messages()) == 8
    stats = stack.sim.admin.stats()
    # Each conversation's two scripted 429s, and no 429 loop beyond them.
    assert stats.count(GET_CONVERSATION, 429) <= 8


def test_a_deleted_conversation_fails_without_redelivery(stack):
    [conversation], events = conversations_with_events(stack, 1, 2)
    stack.sim.admin.delete(conversation)
    for event in events:
        stack.put_dlq(event)
    stack.ingest()
    items = stack.wait_final(2)
    assert {i.status for i in items} == {Status.FAILED}
    assert all("no longer exists" in i.last_error for i in items)
    assert stack.target_messages() == []
    assert stack.sim.admin.stats().count(GET_CONVERSATION, 404) == 1


def test_an_always_failing_target_is_exhausted_and_parked(stack):
    parking_url = stack.queue(f"parking-{stack.unique}")
    event = genesys_event()
    with (
        HttpSink(status=503) as sink,
        configured(
            {
                "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url}),
                "REPLAY_PARKING_QUEUE_URL": parking_url,
                "REPLAY_MAX_ATTEMPTS": "3",
                "REPLAY_VERIFY_CONVERSATION": "false",
            }
        ),
    ):
        stack.put_dlq(event, target_arn=API_DESTINATION)
        stack.ingest()
        [item] = stack.wait_final(1)
    assert item.status is Status.EXHAUSTED
    assert item.attempts == 3
    assert "503" in item.last_error
    [parked] = stack.target_messages(parking_url)
    assert json.loads(parked)["id"] == event["id"]


def test_the_same_event_enqueued_five_times_at_once_is_redelivered_once(stack):
    _, [event] = conversations_with_events(stack, 1, 1)
    stack.put_dlq(event)
    stack.ingest()
    enqueuer = CeleryEnqueuer(app)
    key = EventKey(event["id"], stack.target_arn, stack.rule_arn)
    threads = [threading.Thread(target=enqueuer.enqueue_replay, args=(key,)) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [item] = stack.wait_final(1)
    assert item.status is Status.REPLAYED
    assert item.attempts == 1
    assert len(stack.target_messages()) == 1


def test_a_redis_flush_mid_run_is_recovered_by_the_reconciler(stack, redis_client):
    from tasks.runtime import runtime

    _, events = conversations_with_events(stack, 5, 4)
    with configured({"REPLAY_BACKOFF_BASE": "1"}):
        for event in events:
            stack.put_dlq(event)
        stack.ingest()
        redis_client.flushall()
        # Every task the ingest queued is gone; beat's reconciler brings them back.
        report: Counter[str] = Counter()
        items = stack.wait_final(20, tick=lambda: report.update(runtime().reconciler.run()))
    assert {i.status for i in items} == {Status.REPLAYED}
    arrived = Counter(json.loads(b)["id"] for b in stack.target_messages())
    assert set(arrived) == {e["id"] for e in events}
    assert max(arrived.values()) == 1
    print(f"reconciler after FLUSHALL: {dict(report)}")


def wait_for_tracking(stack, conversations, timeout: float = 30.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [c for c in conversations if stack.sim.admin.attribute_history(c)]
        if len(done) == len(conversations):
            return
        time.sleep(0.2)
    raise AssertionError(f"tracking did not reach {len(conversations) - len(done)} conversations")


def customer_of(stack, conversation: str) -> str:
    body = stack.sim.admin.conversation(conversation)
    return next(p["id"] for p in body["participants"] if p["purpose"] == "customer")


def test_lambda_and_step_functions_targets_receive_the_event(stack):
    import io
    import zipfile

    from dlq.aws import aws_client

    iam = aws_client("iam", stack.settings)
    role = iam.create_role(
        RoleName=f"role-{stack.unique}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", "def handler(event, context):\n    return event\n")
    function_arn = aws_client("lambda", stack.settings).create_function(
        FunctionName=f"crm-sync-{stack.unique}",
        Runtime="python3.11",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": archive.getvalue()},
    )["FunctionArn"]
    sfn = aws_client("stepfunctions", stack.settings)
    machine_arn = sfn.create_state_machine(
        name=f"crm-flow-{stack.unique}",
        definition=json.dumps(
            {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
        ),
        roleArn=role,
    )["stateMachineArn"]
    _, [to_lambda, to_machine] = conversations_with_events(stack, 1, 2)
    stack.put_dlq(to_lambda, target_arn=function_arn)
    stack.put_dlq(to_machine, target_arn=machine_arn)
    stack.ingest()

    items = stack.wait_final(2)
    assert {(i.target_arn, i.status) for i in items} == {
        (function_arn, Status.REPLAYED),
        (machine_arn, Status.REPLAYED),
    }
    [execution] = sfn.list_executions(stateMachineArn=machine_arn)["executions"]
    # One execution per (event, rule, target): the event id and a digest of the rest.
    assert execution["name"] == execution_name(
        to_machine["id"], rule_arn=stack.rule_arn, target_arn=machine_arn
    )
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert json.loads(described["input"]) == to_machine


# --- REPLAY_ORDER -----------------------------------------------------------------------


def timed_conversations(stack, conversations: int, per_conversation: int):
    """Events of `conversations` conversations, a second apart within each; answers the
    events and, by conversation, their ids in event-time order."""
    topics = ["customer.start", "acd.start", "agent.end", "customer.end"]
    start = datetime.now(UTC) - timedelta(minutes=5)
    ids = [str(uuid.uuid4()) for _ in range(conversations)]
    stack.sim.admin.seed(*ids)
    events: list[dict] = []
    in_order: dict[str, list[str]] = {}
    for conversation in ids:
        in_order[conversation] = []
        for n in range(per_conversation):
            event = genesys_event(conversation_id=conversation, topic=topics[n % len(topics)])
            event["time"] = (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
            del event["detail"]["eventBody"]["participantId"]
            events.append(event)
            in_order[conversation].append(event["id"])
    return events, in_order


@contextlib.contextmanager
def held_conversations(stack, conversations):
    """Hold every conversation's lock (as a busy worker would) while the block runs."""
    locks = ConversationLocks(redis.Redis.from_url(stack.settings.redis_url), ttl_seconds=60)
    with contextlib.ExitStack() as held:
        for conversation in conversations:
            assert held.enter_context(locks.hold(conversation))
        yield


def order_env(sink, order: str) -> dict[str, str]:
    return {
        "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url}),
        "REPLAY_ORDER": order,
        "REPLAY_BACKOFF_BASE": "2",
        "REPLAY_BACKOFF_JITTER": "false",
    }


def test_a_shuffled_backlog_reaches_the_target_in_event_order_even_around_a_retry(stack):
    events, in_order = timed_conversations(stack, 6, 4)
    held = next(iter(in_order.values()))[1]  # the second event of one conversation
    random.Random(11).shuffle(events)
    with HttpSink() as sink, configured(order_env(sink, "conversation")):
        sink.refuse(held, times=2)
        for event in events:
            stack.put_dlq(event, target_arn=API_DESTINATION)
        # The backlog is in the ledger before a pass runs (order holds among the events
        # the ledger has; the README says how to drain a DLQ so): the workers find every
        # conversation busy until the ingest is over.
        with held_conversations(stack, in_order):
            stack.ingest()
        items = stack.wait_final(24, timeout=90)
        arrivals = sink.arrivals()

    assert {i.status for i in items} == {Status.REPLAYED}
    assert Counter(arrivals) == Counter(e["id"] for e in events)
    for conversation, expected in in_order.items():
        assert [a for a in arrivals if a in expected] == expected, conversation
    retried = next(i for i in items if i.event_id == held)
    assert retried.attempts == 3
    assert not any(entry.get("note") for i in items for entry in i.history)


def test_with_order_none_a_retried_event_does_not_hold_back_the_newer_ones(stack):
    events, in_order = timed_conversations(stack, 1, 3)
    [expected] = in_order.values()
    # The oldest event's retry comes 6 s after its first attempt: long after the others.
    with HttpSink() as sink, configured({**order_env(sink, "none"), "REPLAY_BACKOFF_BASE": "6"}):
        sink.refuse(expected[0])
        for event in events:
            stack.put_dlq(event, target_arn=API_DESTINATION)
        with held_conversations(stack, in_order):
            stack.ingest()
        stack.wait_final(3, timeout=60)
        arrivals = sink.arrivals()

    assert arrivals[-1] == expected[0]
    assert sorted(arrivals[:2]) == sorted(expected[1:])
