"""A target's outage, end to end: the fleet's breaker, and an operator's pause.

Real `celery -A tasks worker` processes (two of them share one breaker through Redis),
the session's Redis and moto, the Genesys simulator, and a loopback HTTP target that
answers 503 for as long as the test says. Each test waits on outcomes (the ledger, the
target's own count of what it received), never on durations, and prints its figures.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from helpers import eventually, genesys_event
from stack import Stack, configured, sim_env

from devstack.stack import DevStack
from dlq.codes import TARGET_PAUSED
from dlq.holds.pauses import Pauses
from dlq.ledger import Status
from dlq.ledger.pauses import LedgerPauses

pytestmark = pytest.mark.slow

API_DESTINATION = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f"
FAILURES_TO_OPEN = 3
CONVERSATIONS, EVENTS_EACH = 4, 3


class OutageSink:
    """An HTTP target that records every POST (event id, status answered), in order;
    `status` may change at any moment (503: the target is down)."""

    def __init__(self, *, status: int = 200) -> None:
        self.status = status
        self.posts: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = sink.status
                with sink._lock:
                    sink.posts.append((str(json.loads(body).get("id")), status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/events"

    def delivered(self) -> list[str]:
        """Event ids the target accepted, in the order it accepted them."""
        with self._lock:
            return [event_id for event_id, status in self.posts if status < 300]

    def refused(self) -> int:
        with self._lock:
            return sum(1 for _, status in self.posts if status >= 300)

    def __enter__(self) -> OutageSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture()
def env(redis_url, moto_server, genesys_sim, sim_admin, unique) -> dict[str, str]:
    sim_admin.configure(auto_create=True, rate_limit=100_000)
    return {
        **sim_env(genesys_sim),
        "LEDGER_TABLE": f"ledger-{unique}",
        # A small attempt budget (about 6 s of backoff), far shorter than the outage.
        "REPLAY_MAX_ATTEMPTS": "4",
        "REPLAY_BACKOFF_BASE": "1",
        "REPLAY_BACKOFF_MAX": "2",
        "REPLAY_VERIFY_CONVERSATION": "false",
        "REPLAY_INGEST_QUIET_SECONDS": "0",
        "REPLAY_BREAKER_FAILURES": str(FAILURES_TO_OPEN),
        "REPLAY_BREAKER_WINDOW_SECONDS": "30",
        "REPLAY_BREAKER_COOLDOWN_SECONDS": "2",
        "REPLAY_PAUSE_RECHECK_SECONDS": "1",
        "REPLAY_PAUSE_CACHE_SECONDS": "1",
        "REPLAY_SEND_CONNECT_TIMEOUT": "1",
        "REPLAY_SEND_READ_TIMEOUT": "2",
    }


def conversations() -> list[list[dict[str, Any]]]:
    """Four conversations of three events each, a second apart in event time."""
    start = datetime.now(UTC) - timedelta(minutes=5)
    lines = []
    for _ in range(CONVERSATIONS):
        conversation = str(uuid.uuid4())
        line = []
        for n, topic in enumerate(("start", "acd.end", "customer.end")):
            event = genesys_event(conversation_id=conversation, topic=topic)
            event["time"] = (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ")
            line.append(event)
        lines.append(line)
    return lines


def dead_letter(stack: Stack, lines: list[list[dict[str, Any]]]) -> None:
    # Newest first, as a DLQ may hand them back: order is the replay's job.
    for line in lines:
        for event in reversed(line):
            stack.put_dlq(event, target_arn=API_DESTINATION)
    assert stack.ingest() == {"accepted": sum(len(line) for line in lines)}


def in_conversation_order(delivered: list[str], lines: list[list[dict[str, Any]]]) -> bool:
    position = {event_id: n for n, event_id in enumerate(delivered)}
    return all(
        [position[e["id"]] for e in line] == sorted(position[e["id"]] for e in line)
        for line in lines
    )


def reconciler_tick() -> Callable[[], object]:
    from tasks.runtime import runtime

    return lambda: runtime().reconciler.run()


def log_lines(launcher: DevStack, text: str) -> int:
    return sum(
        path.read_text(errors="replace").count(text) for path in launcher.workdir.glob("*.log")
    )


def test_an_open_breaker_holds_the_target_sends_only_probes_and_drains_in_order_after(
    env, genesys_sim, unique, launcher
):
    lines = conversations()
    events = [e for line in lines for e in line]
    with (
        OutageSink(status=503) as sink,
        configured({**env, "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url})}),
    ):
        stack = Stack(unique, genesys_sim)
        dead_letter(stack, lines)
        for name in ("first", "second"):
            launcher.start_worker(concurrency=4, name=name, env=dict(os.environ))
        eventually(
            lambda: log_lines(launcher, "target breaker opened") >= 1,
            timeout=60,
            what="the breaker to open",
        )
        # Down for longer than the whole attempt budget, then back up.
        time.sleep(10)
        refused_while_down = sink.refused()
        sink.status = 200
        items = stack.wait_final(len(events), timeout=60)

    assert {i.status for i in items} == {Status.REPLAYED}
    delivered = sink.delivered()
    assert Counter(delivered) == Counter(e["id"] for e in events)  # each exactly once
    assert in_conversation_order(delivered, lines)
    probes = log_lines(launcher, "target breaker half-open")
    # Before it opened, at most one send per conversation line was in flight (a line
    # stops behind its failed event); after, only the probes, one at a time.
    assert refused_while_down <= FAILURES_TO_OPEN + CONVERSATIONS + probes
    assert log_lines(launcher, "target breaker closed") >= 1
    held = sum(
        int(h.get("times", 1))
        for i in items
        for h in i.history
        if h.get("outcome") == "waiting" and "breaker" in h.get("error", "")
    )
    print(
        f"\ntarget outage with the breaker: {len(events)} events, {refused_while_down} sends "
        f"refused while down ({probes} probes), {held} waits spent no attempt; attempts per "
        f"item {dict(sorted(Counter(i.attempts for i in items).items()))}; each delivered "
        "once, in conversation order"
    )


def test_a_paused_target_receives_nothing_even_across_a_redis_restart_and_resume_drains_it(
    env, genesys_sim, unique, launcher, redis_server, redis_url
):
    lines = conversations()[:2]
    events = [e for line in lines for e in line]
    with (
        OutageSink(status=200) as sink,
        configured({**env, "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url})}),
    ):
        stack = Stack(unique, genesys_sim)
        client = redis.Redis.from_url(redis_url)
        pauses = Pauses(LedgerPauses(stack.dynamodb, stack.settings.ledger_table), client)
        pauses.pause(API_DESTINATION, now=time.time(), reason="CRM upgrade", operator="ops")
        dead_letter(stack, lines)
        launcher.start_worker(concurrency=4, name="worker", env=dict(os.environ))

        def waits() -> dict[str, int]:
            return {
                i.event_id: i.waits
                for i in stack.ledger.scan()
                if i.last_error_code == TARGET_PAUSED
            }

        # The oldest event of each conversation waits; the newer ones wait behind it.
        before = eventually(
            lambda: (w := waits()) and len(w) == len(lines) and w,
            timeout=60,
            what="each conversation's oldest event waiting for the paused target",
        )
        redis_server.stop()
        redis_server.start()  # empty: no copy of the pause, no queued task
        tick = reconciler_tick()

        def waited_again() -> bool:
            tick()
            now_waiting = waits()
            return len(now_waiting) == len(lines) and all(
                n > before.get(e, n) for e, n in now_waiting.items()
            )

        eventually(
            waited_again,
            timeout=60,
            what="the waiting items waiting again after Redis came back empty",
            every=0.5,
        )
        assert sink.posts == []  # nothing reached the target while paused
        resumed = pauses.resume(API_DESTINATION, now=time.time(), operator="ops")
        assert resumed is not None
        items = stack.wait_final(len(events), timeout=60, tick=tick)
        client.close()

    assert {i.status for i in items} == {Status.REPLAYED}
    assert all(i.attempts == 1 for i in items)  # waiting spent no attempt
    delivered = sink.delivered()
    assert Counter(delivered) == Counter(e["id"] for e in events)
    assert in_conversation_order(delivered, lines)
    print(
        f"\npaused target: {len(events)} events waited "
        f"{sum(i.waits for i in items)} times in all (across a Redis restart), nothing "
        "sent; after resume each delivered once, in conversation order"
    )
