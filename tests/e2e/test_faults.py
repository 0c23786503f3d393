"""Fault injection on the real stack: what a crash, an outage or a storm leaves behind.

Workers run as real `celery -A tasks worker` processes (DevStack's launcher), so a
`kill -9` is a real one; Redis, moto and the Genesys simulator are the session's. Each
test waits on outcomes (the ledger, the target, the simulator's counters) with bounded
waits, never on durations, and prints its figures (see docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from broker import queued_tasks
from helpers import (
    dlq_attributes,
    eventually,
    genesys_event,
    lambda_record,
)
from stack import Stack, configured, sim_env

import ingest.poller
from devstack.process import free_port
from devstack.sim_admin import GET_CONVERSATION
from devstack.stack import DevStack
from dlq.ledger import Ledger, Status
from ingest.frontdoor import FrontDoor
from ingest.lambda_handler import handler
from ingest.poller import Poller
from tasks.application import app
from tasks.producer import CeleryEnqueuer

pytestmark = pytest.mark.slow

API_DESTINATION = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f"
CONCURRENCY = 8
#: Short enough for a test to wait out, above the longest attempt these settings allow
#: (2 x 2 s of Genesys, 2 s of send, 2 x 4 s of ledger calls, 1 s of margin: 15 s;
#: attempts here take ms to 0.3 s).
LEASE_SECONDS = "16"
SHORT_TIMEOUTS = {
    "GENESYS_CONNECT_TIMEOUT": "1",
    "GENESYS_READ_TIMEOUT": "1",
    "REPLAY_SEND_CONNECT_TIMEOUT": "1",
    "REPLAY_SEND_READ_TIMEOUT": "1",
    "LEDGER_CONNECT_TIMEOUT": "1",
    "LEDGER_READ_TIMEOUT": "3",
    "LEDGER_TRIES": "1",
    "REPLAY_LEASE_MARGIN_SECONDS": "1",
}


class RecordingSink:
    """An HTTP target that records every POST (event id, Idempotency-Key, status answered).

    `delay` holds each answer after the POST is recorded: an event whose worker dies
    while waiting has reached the target, exactly like a real endpoint that processed it.
    """

    def __init__(self, *, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.posts: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = sink.status
                try:
                    event_id = str(json.loads(body)["id"])
                except (ValueError, KeyError, TypeError):
                    event_id = "?"
                with sink._lock:
                    sink.posts.append((event_id, self.headers.get("Idempotency-Key", ""), status))
                if sink.delay:
                    time.sleep(sink.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the worker was killed while we waited

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/events"

    def delivered(self) -> Counter[str]:
        """Event id -> how many times the target accepted it (2xx)."""
        with self._lock:
            return Counter(e for e, _, status in self.posts if status < 300)

    def refused(self) -> Counter[str]:
        with self._lock:
            return Counter(e for e, _, status in self.posts if status >= 300)

    def keys_of(self, event_id: str) -> set[str]:
        with self._lock:
            return {key for e, key, status in self.posts if e == event_id and status < 300}

    def __enter__(self) -> RecordingSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture()
def env(redis_url, moto_server, genesys_sim, sim_admin, unique) -> dict[str, str]:
    """The environment of this test's workers and of its in-process reconciler."""
    sim_admin.configure(auto_create=True, rate_limit=100_000)
    return {
        **sim_env(genesys_sim),
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_LEASE_SECONDS": LEASE_SECONDS,
        **SHORT_TIMEOUTS,
    }


def start_worker(launcher: DevStack, name: str, concurrency: int = CONCURRENCY) -> Any:
    """`celery -A tasks worker --pool threads -c 8 -Q replay,verify,track` with this env."""
    return launcher.start_worker(concurrency=concurrency, name=name, env=dict(os.environ))


def reconciler_tick(report: Counter[str]) -> Callable[[], object]:
    """One reconciler pass per look, as beat would run it; its counts go to `report`."""
    from tasks.runtime import runtime

    return lambda: report.update(runtime().reconciler.run())


def unexplained_repeats(repeats: dict[str, int], items: list[Any]) -> int:
    """Repeats the ledger does not explain by a recorded timeout.

    An attempt that timed out after the target took the event (a loaded machine can hold
    the sink's answer past the 1 s read timeout) is the at-least-once every slow target
    gets, and its history says so; a repeat without such an entry has no excuse.
    """
    timed_out = Counter(
        i.event_id for i in items for a in i.history if "did not answer" in a.get("error", "")
    )
    return sum(max(0, n - timed_out[event_id]) for event_id, n in repeats.items())


#: Events of a kill -9 drain, by threads a worker: enough that each kill lands mid-drain
#: at 0.3 s a send (one thread sends 20 in 6 s).
EVENTS = {1: 20, CONCURRENCY: 40}


# One thread per worker is the literal bound (repeats <= kills); eight threads
# show the general one (repeats <= kills x threads: one in-flight attempt per thread).
@pytest.mark.parametrize("concurrency", [1, CONCURRENCY])
def test_kill_9_of_workers_mid_drain_loses_nothing_and_repeats_only_in_flight_posts(
    env, genesys_sim, unique, launcher, concurrency
):
    count = EVENTS[concurrency]
    events = [genesys_event() for _ in range(count)]
    with (
        RecordingSink(delay=0.3) as sink,
        configured({**env, "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url})}),
    ):
        stack = Stack(unique, genesys_sim)
        for event in events:
            stack.put_dlq(event, target_arn=API_DESTINATION)
        assert stack.ingest() == {"accepted": count}

        kills = 0
        for name, threshold in (("first", count // 4), ("second", count * 3 // 5)):
            worker = start_worker(launcher, name, concurrency)
            eventually(
                lambda: len(sink.delivered()) >= threshold,  # noqa: B023 (called at once)
                timeout=60,
                what=f"{threshold} events at the target",
                every=0.01,
            )
            worker.kill()  # SIGKILL: no shutdown, no ack, no release of anything
            worker.wait()
            kills += 1
        at_last_kill = len(sink.delivered())
        assert at_last_kill < len(events), "the drain finished before the kill: nothing proven"

        start_worker(launcher, "survivor", concurrency)
        report: Counter[str] = Counter()
        items = stack.wait_final(count, timeout=90, tick=reconciler_tick(report))

    assert {i.status for i in items} == {Status.REPLAYED}
    delivered = sink.delivered()
    assert set(delivered) == {e["id"] for e in events}
    repeats = {event_id: n - 1 for event_id, n in delivered.items() if n > 1}
    duplicates = sum(repeats.values())
    # What the kill leaves is a repeat with no trace: an attempt caught between the
    # target's acceptance and the ledger write, at most one per worker thread per kill.
    unexplained = unexplained_repeats(repeats, items)
    assert unexplained <= kills * concurrency
    # Every repeat carries the original's Idempotency-Key: an idempotent target drops it.
    assert all(len(sink.keys_of(event_id)) == 1 for event_id in repeats)
    attempts = Counter(i.attempts for i in items)
    print(
        f"\nkill -9: {kills} kills x {concurrency} threads, {count} events, {at_last_kill} "
        f"delivered at the last kill; duplicates {duplicates} over {len(repeats)} events, "
        f"{unexplained} not explained by a recorded timeout (bound {kills * concurrency}); "
        f"attempts per item {dict(sorted(attempts.items()))}; "
        f"reconciler {dict(report)}"
    )


def test_redis_stopped_and_restarted_empty_mid_run_is_recovered_by_the_reconciler(
    env, genesys_sim, unique, launcher, redis_server
):
    events = [genesys_event() for _ in range(40)]
    with (
        RecordingSink(delay=0.2) as sink,
        configured({**env, "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url})}),
    ):
        stack = Stack(unique, genesys_sim)
        for event in events:
            stack.put_dlq(event, target_arn=API_DESTINATION)
        assert stack.ingest() == {"accepted": 40}
        start_worker(launcher, "worker")
        eventually(lambda: len(sink.delivered()) >= 10, timeout=60, what="10 events delivered")

        redis_server.stop()
        try:
            at_stop = len(sink.delivered())
            time.sleep(1.0)  # the outage lasts a moment; nothing is asserted on time
        finally:
            redis_server.start()  # empty: no queue, no unacked, no locks, no token
        assert at_stop < len(events), "the drain finished before the outage: nothing proven"

        report: Counter[str] = Counter()
        items = stack.wait_final(40, timeout=90, tick=reconciler_tick(report))

    assert {i.status for i in items} == {Status.REPLAYED}
    delivered = sink.delivered()
    assert set(delivered) == {e["id"] for e in events}
    # Redis is the engine, not the truth: losing it repeats nothing (the claim is in
    # DynamoDB, and no worker died between a POST and its ledger write).
    repeats = {event_id: n - 1 for event_id, n in delivered.items() if n > 1}
    assert unexplained_repeats(repeats, items) == 0
    print(
        f"\nredis restart: {at_stop}/40 delivered when Redis stopped; all 40 replayed once; "
        f"reconciler re-enqueued {dict(report)}"
    )


def test_genesys_503s_429_storm_and_revoked_token_mid_run_lose_nothing(
    env, genesys_sim, sim_admin, unique, launcher
):
    conversations = [str(uuid.uuid4()) for _ in range(16)]

    def events_of(ids: list[str]) -> list[dict[str, Any]]:
        return [genesys_event(conversation_id=c, topic=t) for c in ids for t in ("a", "b")]

    first, second = events_of(conversations[:4]), events_of(conversations[4:])
    with configured({**env, "REPLAY_MAX_ATTEMPTS": "12"}):
        stack = Stack(unique, genesys_sim)
        for event in first:
            stack.put_dlq(event)
        stack.ingest()
        start_worker(launcher, "worker")
        eventually(
            lambda: sum(i.status is Status.REPLAYED for i in stack.ledger.scan()) == 8,
            timeout=60,
            what="the first 8 events replayed",
            every=0.2,
        )
        before = sim_admin.stats()

        # Mid-run, on a worker that holds a cached token: every fault at once.
        revoked = sim_admin.revoke_tokens()
        storm = [{"status": 429, "retry_after": 1}] * 2
        for conversation in conversations[4:8]:
            sim_admin.script(conversation, [503, 503])
        for conversation in conversations[8:16]:
            sim_admin.script(conversation, storm)
        sim_admin.configure(error_rate=0.2)
        for event in second:
            stack.put_dlq(event)
        stack.ingest()
        items = stack.wait_final(32, timeout=120)
        stats = sim_admin.stats()

    assert {i.status for i in items} == {Status.REPLAYED}
    arrived = Counter(json.loads(body)["id"] for body in stack.target_messages())
    assert arrived == Counter(e["id"] for e in first + second)
    scripted_429s = 8 * len(storm)
    # No 429 loop: the only 429s are the scripted ones; after each, the fleet waited.
    assert stats.status(429) <= scripted_429s
    # The revoked token: a 401 per call in flight with it, then one shared new token.
    after_revoke_401s = stats.status(401) - before.status(401)
    new_tokens = stats.tokens_issued - before.tokens_issued
    assert 1 <= new_tokens <= 2
    assert after_revoke_401s <= 2 * CONCURRENCY
    lookups = stats.count(GET_CONVERSATION)
    print(
        f"\ngenesys faults: 32 events / 16 conversations replayed once each; revoked {revoked} "
        f"token(s) -> {after_revoke_401s} 401s, {new_tokens} new token(s); "
        f"429s {stats.status(429)} (scripted {scripted_429s}); 503s {stats.status(503)}, "
        f"other 5xx {sum(stats.status(s) for s in (500, 502, 504))}; "
        f"{lookups} lookups; attempts per item "
        f"{dict(sorted(Counter(i.attempts for i in items).items()))}"
    )


def test_a_target_failing_for_a_while_then_recovering_gets_every_event_once(
    env, genesys_sim, unique, launcher
):
    events = [genesys_event() for _ in range(10)]
    with (
        RecordingSink(status=503) as sink,
        configured(
            {
                **env,
                "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url}),
                "REPLAY_VERIFY_CONVERSATION": "false",
                "REPLAY_MAX_ATTEMPTS": "30",
                # Retries across the outage, attempt by attempt: the breaker, which would
                # hold them, is test_target_outage_e2e.py's.
                "REPLAY_BREAKER_FAILURES": "0",
            }
        ),
    ):
        stack = Stack(unique, genesys_sim)
        for event in events:
            stack.put_dlq(event, target_arn=API_DESTINATION)
        stack.ingest()
        start_worker(launcher, "worker")
        # Down until every event has been refused at least twice, then back up.
        eventually(
            lambda: len(sink.refused()) == 10 and min(sink.refused().values()) >= 2,
            timeout=60,
            what="every event refused twice by the failing target",
        )
        sink.status = 200
        items = stack.wait_final(10, timeout=90)

    assert {i.status for i in items} == {Status.REPLAYED}
    assert sink.delivered() == Counter(e["id"] for e in events)
    for item in items:
        failures = [h for h in item.history if h["outcome"] == "retry_scheduled"]
        assert len(failures) >= 2
        assert all("503" in h["error"] for h in failures), failures
    refused = sink.refused()
    print(
        f"\ntarget outage: 10 events, {sum(refused.values())} POSTs refused with 503 "
        f"(per event {min(refused.values())}..{max(refused.values())}), then each delivered "
        f"once; attempts per item {dict(sorted(Counter(i.attempts for i in items).items()))}"
    )


def test_a_target_slower_than_the_lease_gets_one_send_and_no_second_worker_takes_over(
    env, genesys_sim, unique, launcher
):
    # The send is bounded (1 s) well inside the lease (8 s): the attempt ends as a timeout
    # long before its claim could lapse, so neither a second worker nor the reconciler
    # ever sees a lapsed lease to take over, while the target is still busy for 20 s.
    event = genesys_event()
    report: Counter[str] = Counter()
    with (
        RecordingSink(delay=20) as sink,
        configured(
            {
                **env,
                "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url}),
                "REPLAY_VERIFY_CONVERSATION": "false",
                "REPLAY_MAX_ATTEMPTS": "1",
            }
        ),
    ):
        stack = Stack(unique, genesys_sim)
        stack.put_dlq(event, target_arn=API_DESTINATION)
        stack.ingest()
        start_worker(launcher, "first")
        start_worker(launcher, "second")
        [item] = stack.wait_final(1, timeout=60, tick=reconciler_tick(report))
        # Past the lease: a takeover, had the attempt outlived its claim, happens by now.
        deadline = time.monotonic() + float(LEASE_SECONDS) + 2
        while time.monotonic() < deadline:
            reconciler_tick(report)()
            time.sleep(0.5)

    assert item.status is Status.EXHAUSTED
    assert item.attempts == 1
    assert "did not answer in time" in (item.last_error or "")
    assert [event_id for event_id, _, _ in sink.posts] == [event["id"]]
    assert stack.ledger.get(item.key).attempts == 1
    assert report["lease_lapsed"] == 0


def test_a_parking_queue_that_refuses_every_message_leaves_the_item_exhausted(
    env, genesys_sim, unique, launcher, redis_client
):
    event = genesys_event()
    with (
        RecordingSink(status=503) as sink,
        configured(
            {
                **env,
                "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url}),
                "REPLAY_VERIFY_CONVERSATION": "false",
                "REPLAY_MAX_ATTEMPTS": "2",
                # A parking queue that does not exist: every SendMessage is refused.
                "REPLAY_PARKING_QUEUE_URL": f"{os.environ['AWS_ENDPOINT_URL']}/123456789012/gone",
            }
        ),
    ):
        stack = Stack(unique, genesys_sim)
        stack.put_dlq(event, target_arn=API_DESTINATION)
        stack.ingest()
        start_worker(launcher, "worker")
        [item] = stack.wait_final(1, timeout=60)
        # The task ended: nothing waits in the queue, nothing is held unacknowledged.
        eventually(
            lambda: not queued_tasks(redis_client) and not redis_client.hlen("unacked"),
            timeout=30,
            what="no replay task left queued or unacknowledged",
        )

    assert item.status is Status.EXHAUSTED
    assert item.attempts == 2
    assert "parking failed" in (item.last_error or "")
    assert len(sink.posts) == 2


# --- the ledger unreachable during ingest -----------------------------------------------


def unreachable_ledger(table: str) -> Ledger:
    """A ledger whose DynamoDB endpoint refuses connections (nothing listens on the port)."""
    client = boto3.session.Session().client(
        "dynamodb",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(connect_timeout=1, read_timeout=2, retries={"max_attempts": 2}),
    )
    return Ledger(client, table)


def queue_counts(sqs: Any, queue_url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def test_the_poller_keeps_every_message_while_the_ledger_is_unreachable_then_drains(
    env, genesys_sim, unique, redis_client, monkeypatch
):
    # The poller hides a kept message for 15 s per receive; a test waits 1 s per receive.
    monkeypatch.setattr(ingest.poller, "RETRY_VISIBILITY_STEP", 1)
    events = [genesys_event() for _ in range(4)]
    with configured(env):
        stack = Stack(unique, genesys_sim)
        for event in events:
            stack.put_dlq(event)
        stack.sqs.send_message(
            QueueUrl=stack.dlq_url,
            MessageBody="{not json",
            MessageAttributes=dlq_attributes(stack.target_arn),
        )
        enqueuer = CeleryEnqueuer(app)
        down = FrontDoor(
            ledger=unreachable_ledger(stack.ledger.table),
            enqueuer=enqueuer,
            boundary=stack.boundary,
        )
        poller = Poller(sqs=stack.sqs, queue_url=stack.dlq_url, front_door=down, wait_seconds=0)
        received = sum(poller.poll_once() for _ in range(2))

        assert received == 5
        assert poller.stats.counts == {"kept": 5}
        assert queue_counts(stack.sqs, stack.dlq_url) == (0, 5)
        assert queued_tasks(redis_client) == []  # nothing enqueued without its ledger item
        eventually(
            lambda: queue_counts(stack.sqs, stack.dlq_url) == (5, 0),
            timeout=20,
            what="the kept messages visible again",
            every=0.2,
        )

        up = FrontDoor(ledger=stack.ledger, enqueuer=enqueuer, boundary=stack.boundary)
        drained = Poller(sqs=stack.sqs, queue_url=stack.dlq_url, front_door=up, wait_seconds=0)
        counts = drained.run(until_empty=True).counts

    assert counts == {"accepted": 4, "rejected": 1}
    assert queue_counts(stack.sqs, stack.dlq_url) == (0, 0)
    statuses = Counter(i.status for i in stack.ledger.scan())
    assert statuses == {Status.RECEIVED: 4, Status.REJECTED: 1}
    assert sorted(args[0] for _, args in queued_tasks(redis_client)) == sorted(
        e["id"] for e in events
    )
    print("\nledger unreachable (poller): 5 received, 5 kept, 0 lost; later 4 accepted, 1 rejected")


def test_the_lambda_reports_every_record_while_the_ledger_is_unreachable_then_ingests_them(
    env, genesys_sim, unique, redis_client
):
    with configured(env):
        stack = Stack(unique, genesys_sim)
        records = [lambda_record(json.dumps(genesys_event()), stack.target_arn) for _ in range(3)]
        records.append(lambda_record("{not json", stack.target_arn))
        enqueuer = CeleryEnqueuer(app)
        down = FrontDoor(
            ledger=unreachable_ledger(stack.ledger.table),
            enqueuer=enqueuer,
            boundary=stack.boundary,
        )
        result = handler({"Records": records}, None, front_door=down)
        assert [f["itemIdentifier"] for f in result["batchItemFailures"]] == [
            r["messageId"] for r in records
        ]
        assert queued_tasks(redis_client) == []

        # SQS delivers the reported records again; with the ledger back they go through.
        retry = handler(
            {"Records": records},
            None,
            front_door=FrontDoor(ledger=stack.ledger, enqueuer=enqueuer, boundary=stack.boundary),
        )
    assert retry == {"batchItemFailures": []}
    assert Counter(i.status for i in stack.ledger.scan()) == {
        Status.RECEIVED: 3,
        Status.REJECTED: 1,
    }
    assert len(queued_tasks(redis_client)) == 3
