"""A pass's time bound, an interrupted send and a lost ledger write, on the real stack.

Workers are real `celery -A tasks worker --pool prefork` processes (the pool that enforces
the soft time limit, by a signal inside the task); Redis, moto and the Genesys simulator
are the session's; the targets are HTTP stand-ins that answer slowly on purpose, and a
proxy fails one ledger write on purpose (tests/misbehaving.py). Each test waits on the
ledger and on what the target received, never on durations.

`redrive --error-code` speaking the replay's own codes is tests/test_error_codes.py's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from helpers import eventually, genesys_event
from misbehaving import LedgerFaultProxy, SlowSink
from stack import Stack, configured, sim_env

from devstack.stack import DevStack
from dlq.clock import parse_iso
from dlq.ledger import LedgerItem, Status
from dlq.settings import Settings

pytestmark = pytest.mark.slow

API_DESTINATION = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f"

#: Timeouts that make the attempt bound a few seconds: Genesys is not asked (verification
#: off) but counts in the bound all the same, so its timeouts are tiny; the ledger makes
#: one try per call (botocore retries nothing).
SHORT_BOUNDS = {
    "REPLAY_VERIFY_CONVERSATION": "false",
    "GENESYS_CONNECT_TIMEOUT": "0.2",
    "GENESYS_READ_TIMEOUT": "0.3",
    "LEDGER_CONNECT_TIMEOUT": "0.5",
    "LEDGER_READ_TIMEOUT": "1.5",
    "LEDGER_TRIES": "1",
    "REPLAY_LEASE_MARGIN_SECONDS": "0.5",
    "REPLAY_SEND_CONNECT_TIMEOUT": "0.5",
}

#: How long the slow target holds each answer in the pass test, and the read timeout
#: above it: five answers in a row take longer than the bound plus the soft limit's
#: headroom, so a pass that did not stop at its bound would meet the soft limit mid-send.
SLOW_ANSWER = 2.5
SLOW_READ_TIMEOUT = "3.5"


@pytest.fixture()
def env(redis_url, moto_server, genesys_sim, sim_admin, unique) -> dict[str, str]:
    """What this test's workers run with (besides its bounds and its target)."""
    sim_admin.configure(auto_create=True, rate_limit=100_000)
    return {
        **sim_env(genesys_sim),
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_METRICS_PORT": "0",
    }


def start_prefork_worker(
    launcher: DevStack, *, concurrency: int, name: str = "worker", **extra: str
) -> subprocess.Popen[bytes]:
    """`celery -A tasks worker --pool prefork` on every queue, with this process's
    environment (and `extra`); its log is `<tmp_path>/<name>.log`."""
    argv = [
        sys.executable, "-m", "celery", "-A", "tasks", "worker",
        "--pool", "prefork", "--concurrency", str(concurrency), "-Q", "replay,verify,track",
        "--hostname", f"{name}@%h", "--without-mingle", "--without-gossip",
        "--without-heartbeat", "--loglevel", "INFO",
    ]  # fmt: skip
    metrics = str(launcher.workdir / f"metrics-{name}")
    return launcher.spawn(argv, name, {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics, **extra})


def worker_log(launcher: DevStack, name: str = "worker") -> str:
    return (launcher.workdir / f"{name}.log").read_text()


def bounded(timeouts: dict[str, str], *, soft_limit_above: float) -> dict[str, str]:
    """`timeouts` with the soft time limit `soft_limit_above` seconds above the attempt
    bound they make, and the lease (and conversation lock) one second above it."""
    values: dict[str, Any] = {k.lower(): v for k, v in timeouts.items()}
    settings = Settings(_env_file=None, **values)
    seconds = settings.attempt_bound_seconds
    return {
        **timeouts,
        "REPLAY_TASK_SOFT_TIME_LIMIT": f"{seconds + soft_limit_above:g}",
        "REPLAY_LEASE_SECONDS": f"{seconds + 1:g}",
    }


def at(event: dict[str, Any], when: datetime) -> dict[str, Any]:
    """`event` as EventBridge timed it at `when`."""
    return {**event, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")}


def outcomes(item: LedgerItem) -> list[str]:
    """The outcomes of the item's attempts, oldest first (its ingest left out)."""
    return [str(h["outcome"]) for h in item.history if h["outcome"] != Status.RECEIVED.value]


def unexplained_repeats(delivered: Counter[str], items: list[LedgerItem]) -> dict[str, int]:
    """Repeats at the target that the ledger does not explain by a recorded timeout (the
    target may have taken an event whose answer came after the read timeout)."""
    timed_out = Counter(
        i.event_id for i in items for h in i.history if "did not answer" in h.get("error", "")
    )
    return {
        event_id: n - 1 - timed_out[event_id]
        for event_id, n in delivered.items()
        if n - 1 > timed_out[event_id]
    }


def test_a_pass_over_a_slow_target_stops_at_its_bound_and_every_event_arrives_once_in_order(
    env, genesys_sim, unique, launcher
):
    conversations = [str(uuid.uuid4()) for _ in range(3)]
    start = datetime.now(UTC) - timedelta(hours=1)
    lines = {
        c: [at(genesys_event(conversation_id=c), start + timedelta(seconds=n)) for n in range(5)]
        for c in conversations
    }
    events = [event for line in lines.values() for event in line]
    limits = bounded(
        {**SHORT_BOUNDS, "REPLAY_SEND_READ_TIMEOUT": SLOW_READ_TIMEOUT}, soft_limit_above=2
    )
    with (
        SlowSink(delay=SLOW_ANSWER) as sink,
        configured(
            {**env, **limits, "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url})}
        ),
    ):
        stack = Stack(unique, genesys_sim)
        for event in reversed(events):  # the DLQ hands them back newest first
            stack.put_dlq(event, target_arn=API_DESTINATION)
        assert stack.ingest() == {"accepted": len(events)}
        start_prefork_worker(launcher, concurrency=4)
        items = stack.wait_final(len(events), timeout=150)

    assert {i.status for i in items} == {Status.REPLAYED}
    delivered = sink.delivered()
    assert set(delivered) == {e["id"] for e in events}
    # The soft limit never cut a send short, and nothing was released for an immediate
    # retry: no attempt started that could not end before the task's soft limit.
    history = [(i.event_id, h) for i in items for h in i.history]
    assert [h for h in history if h[1]["outcome"] == "error"] == []
    assert [h for h in history if "interrupted" in h[1].get("error", "")] == []
    assert {i.last_error_code for i in items} <= {None, "Timeout"}
    assert unexplained_repeats(delivered, items) == {}
    # One pass at a time per conversation: the target got each line in event-time order.
    arrivals = sink.arrivals()
    for conversation, line in lines.items():
        rank = {event["id"]: n for n, event in enumerate(line)}
        seen = [rank[event_id] for event_id in arrivals if event_id in rank]
        assert seen == sorted(seen), f"conversation {conversation} out of order: {seen}"
    stops = worker_log(launcher).count("the pass reached its time bound")
    assert stops > 0, "no pass reached its time bound: nothing proven"
    attempts = Counter(i.attempts for i in items)
    print(
        f"\npass bound: {len(events)} events in {len(lines)} conversations at {SLOW_ANSWER} s "
        f"per answer; soft limit {limits['REPLAY_TASK_SOFT_TIME_LIMIT']} s, lease "
        f"{limits['REPLAY_LEASE_SECONDS']} s; {stops} passes stopped at their bound; "
        f"{sum(delivered.values())} POSTs; attempts per item {dict(sorted(attempts.items()))}"
    )


# Isolated: after an in-process Celery worker has run in the same pytest process (another
# e2e module's), this test's prefork worker ran its task without the soft time limit, the
# whole 60 s answer (reproduced with test_replay_e2e's first test before it; not the
# environment, Redis's state or the signal mask, which were compared). Not understood yet;
# in a process of its own it passes every time.
@pytest.mark.isolated
def test_a_send_cut_off_by_the_soft_time_limit_may_have_been_delivered_and_waits_for_backoff(
    env, genesys_sim, unique, launcher
):
    event = genesys_event()
    # The read timeout (1 s) never fires on an answer that trickles in a byte every 0.25 s;
    # the soft limit, half a second above the attempt bound, does. The whole answer would
    # take 60 s, so a soft limit that a busy machine's pool signals late still finds the
    # send unfinished (a 16 s answer once ended before it on a loaded machine).
    limits = bounded({**SHORT_BOUNDS, "REPLAY_SEND_READ_TIMEOUT": "1"}, soft_limit_above=0.5)
    with (
        SlowSink(trickle=0.25, trickle_bytes=240, slow_posts=1) as sink,
        configured(
            {
                **env,
                **limits,
                "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url}),
                # The retry waits 15 s: the test sees the item between its two attempts
                # even when a busy machine makes each ledger scan slow.
                "REPLAY_BACKOFF_BASE": "15",
                "REPLAY_BACKOFF_JITTER": "false",
            }
        ),
    ):
        stack = Stack(unique, genesys_sim)
        # The worker is up before the event arrives: a prefork worker that finds a task
        # already waiting when it starts has been seen to run it without its soft time
        # limit (in full-suite runs only; Celery arms the limit from its event loop).
        start_prefork_worker(launcher, concurrency=1)
        eventually(
            lambda: "ready." in worker_log(launcher),
            timeout=120,  # a prefork worker starts slowly on a busy machine
            what="the prefork worker ready",
            every=0.1,
        )
        stack.put_dlq(event, target_arn=API_DESTINATION)
        assert stack.ingest() == {"accepted": 1}
        try:
            interrupted = eventually(
                lambda: next(
                    (i for i in stack.ledger.scan() if i.status is Status.RETRY_SCHEDULED),
                    None,
                ),
                timeout=120,  # a prefork worker starts slowly on a busy machine
                what="the item scheduled for a retry after its interrupted send",
                every=0.1,
            )
        except AssertionError as missed:
            seen = [(i.status.value, i.attempts, i.last_error_code) for i in stack.ledger.scan()]
            tail = worker_log(launcher)[-3000:]
            raise AssertionError(f"{missed}; ledger {seen}; worker log:\n{tail}") from None
        received_before_retry = sink.delivered()[event["id"]]
        [item] = stack.wait_final(1, timeout=120)

    assert interrupted.last_error_code == "SendInterrupted"
    assert "may have received the event" in (interrupted.last_error or "")
    assert interrupted.attempts == 1
    assert outcomes(interrupted) == ["retry_scheduled"]  # type: ignore[arg-type]
    # After the backoff, not at once: a released item would be due the moment it was written.
    recorded = parse_iso(str(interrupted.history[-1]["at"]))
    assert recorded is not None and interrupted.next_attempt_at is not None
    assert interrupted.next_attempt_at - recorded.timestamp() >= 1.0
    assert received_before_retry == 1

    assert item.status is Status.REPLAYED
    assert item.attempts == 2
    assert outcomes(item) == ["retry_scheduled", "replayed"]
    assert sink.delivered() == Counter({event["id"]: 2})
    assert len(sink.keys_of(event["id"])) == 1  # the repeat carries the same Idempotency-Key


#: test_faults.py's bounds: the lease leaves room to write an outcome again and again.
LEDGER_FAULT_TIMEOUTS = {
    "GENESYS_CONNECT_TIMEOUT": "1",
    "GENESYS_READ_TIMEOUT": "1",
    "REPLAY_SEND_CONNECT_TIMEOUT": "1",
    "REPLAY_SEND_READ_TIMEOUT": "1",
    "LEDGER_CONNECT_TIMEOUT": "1",
    "LEDGER_READ_TIMEOUT": "3",
    "LEDGER_TRIES": "1",
    "REPLAY_LEASE_MARGIN_SECONDS": "1",
    "REPLAY_LEASE_SECONDS": "16",
}


@pytest.mark.parametrize("fault", ["refused", "lost"])
def test_a_delivery_whose_replayed_write_fails_once_is_sent_once_and_ends_replayed(
    env, genesys_sim, unique, launcher, fault
):
    # refused: the ledger answers the write 500 and never applies it; lost: it applies the
    # write and the answer never comes back. LEDGER_TRIES=1: botocore retries nothing, so
    # only the attempt's own rewrite of the outcome can keep the event from a second send.
    event = genesys_event()
    with (
        SlowSink() as sink,
        LedgerFaultProxy(os.environ["AWS_ENDPOINT_URL"], fault=fault) as proxy,
        configured(
            {
                **env,
                **LEDGER_FAULT_TIMEOUTS,
                "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url}),
            }
        ),
    ):
        stack = Stack(unique, genesys_sim)
        stack.put_dlq(event, target_arn=API_DESTINATION)
        assert stack.ingest() == {"accepted": 1}
        # Only the worker's ledger goes through the proxy (boto3 reads the per-service
        # endpoint variable); the test's own reads go to moto directly.
        start_prefork_worker(launcher, concurrency=2, AWS_ENDPOINT_URL_DYNAMODB=proxy.url)
        [item] = stack.wait_final(1, timeout=60)
        assert item.status is Status.REPLAYED
        assert sink.delivered() == Counter({event["id"]: 1})
        # The attempt wrote its outcome again itself: with LEDGER_TRIES=1 botocore makes
        # one try per call, so a failed write reaches the attempt.
        eventually(
            lambda: "delivered, but the ledger refused the outcome" in worker_log(launcher),
            timeout=10,
            what="the attempt writing its refused outcome again (worker log)",
        )
        eventually(lambda: proxy.replayed_writes >= 2, timeout=30, what="the outcome written again")
        final = stack.ledger.get(item.key)

    assert proxy.faults == 1
    assert final is not None and final.status is Status.REPLAYED
    assert final.attempts == 1
    assert outcomes(final) == ["replayed"]
    assert sink.delivered() == Counter({event["id"]: 1})
