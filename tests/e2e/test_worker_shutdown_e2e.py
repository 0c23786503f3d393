"""SIGTERM mid-drain: a worker finishes what it runs and hands back the rest, in time.

A fleet stops a worker with SIGTERM and kills it StopTimeout later (Fargate: 120 s at
most; deploy/fleet.yaml sets 120 and REPLAY_TASK_SOFT_TIME_LIMIT=95, so the hard limit,
soft + 20 s, is 115 s). Celery's warm shutdown stops taking tasks and waits for the
running ones, each bounded by the hard time limit: when that ends before the stop
timeout, the worker always exits by itself. Here, with the same arithmetic at a smaller
scale: a real `celery -A tasks worker --pool prefork` drains over a slow HTTP target, is
sent SIGTERM while sends are in flight, and must exit within its stop timeout (else it
is killed, as the fleet would, and the test fails). Then a second worker and the
reconciler take what the first held but had not started (its reserved tasks left Redis
with it: the ledger brings them back). Nothing is lost; the target receives each event
once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from helpers import eventually, genesys_event
from misbehaving import SlowSink
from stack import Stack, configured, sim_env

from devstack.stack import DevStack
from dlq.ledger import Status
from dlq.settings import Settings

pytestmark = pytest.mark.slow

API_DESTINATION = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f"
EVENTS = 8
#: Each answer of the target takes this long: sends are in flight when SIGTERM comes.
SLOW_ANSWER = 2.0
#: Timeouts that make an attempt's bound a few seconds (verification off), and a read
#: timeout above the target's answer, so every send completes.
TIMEOUTS = {
    "REPLAY_VERIFY_CONVERSATION": "false",
    "GENESYS_CONNECT_TIMEOUT": "0.5",
    "GENESYS_READ_TIMEOUT": "0.5",
    "LEDGER_CONNECT_TIMEOUT": "0.5",
    "LEDGER_READ_TIMEOUT": "1.5",
    "LEDGER_TRIES": "1",
    "REPLAY_LEASE_MARGIN_SECONDS": "0.5",
    "REPLAY_SEND_CONNECT_TIMEOUT": "0.5",
    "REPLAY_SEND_READ_TIMEOUT": "4",
}
#: celeryconfig: task_time_limit = task_soft_time_limit + 20.
HARD_LIMIT_ABOVE_SOFT = 20


def limits() -> tuple[dict[str, str], float]:
    """The workers' limits (the soft one 2 s above an attempt's bound, the lease 1 s
    above it) and the stop timeout that fits them: the hard limit plus 5 s, as the
    fleet's 120 s fits its 115 s."""
    timeouts: dict[str, Any] = {k.lower(): v for k, v in TIMEOUTS.items()}
    settings = Settings(_env_file=None, **timeouts)
    bound = settings.attempt_bound_seconds
    soft = bound + 2
    values = {
        **TIMEOUTS,
        "REPLAY_TASK_SOFT_TIME_LIMIT": f"{soft:g}",
        "REPLAY_LEASE_SECONDS": f"{bound + 1:g}",
    }
    return values, soft + HARD_LIMIT_ABOVE_SOFT + 5


@pytest.fixture()
def env(redis_url, moto_server, genesys_sim, sim_admin, unique) -> dict[str, str]:
    sim_admin.configure(auto_create=True, rate_limit=100_000)
    return {
        **sim_env(genesys_sim),
        "LEDGER_TABLE": f"ledger-{unique}",
        "REPLAY_METRICS_PORT": "0",
    }


def start_prefork_worker(launcher: DevStack, name: str) -> subprocess.Popen[bytes]:
    """`celery -A tasks worker --pool prefork -c 2` with this process's environment."""
    argv = [
        sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", "prefork",
        "--concurrency", "2", "-Q", "replay,verify,track", "--hostname", f"{name}@%h",
        "--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel", "INFO",
    ]  # fmt: skip
    metrics = str(launcher.workdir / f"metrics-{name}")
    return launcher.spawn(argv, name, {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics})


def reconciler_tick(report: Counter[str]) -> Callable[[], object]:
    """One reconciler pass per look, as beat would run it; its counts go to `report`."""
    from tasks.runtime import runtime

    return lambda: report.update(runtime().reconciler.run())


def test_sigterm_mid_drain_finishes_in_flight_sends_within_the_stop_timeout_and_loses_none(
    env, genesys_sim, unique, launcher
):
    events = [genesys_event() for _ in range(EVENTS)]
    values, stop_timeout = limits()
    with (
        SlowSink(delay=SLOW_ANSWER) as sink,
        configured(
            {**env, **values, "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url})}
        ),
    ):
        stack = Stack(unique, genesys_sim)
        for event in events:
            stack.put_dlq(event, target_arn=API_DESTINATION)
        assert stack.ingest() == {"accepted": EVENTS}

        first = start_prefork_worker(launcher, "first")
        in_flight: set[str] = eventually(
            lambda: set(sink.delivered()) if len(sink.delivered()) >= 2 else set(),
            timeout=120,  # a prefork worker starts slowly on a busy machine
            what="two sends in flight at the slow target",
            every=0.01,
        )
        first.send_signal(signal.SIGTERM)
        try:
            exit_code = first.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            first.kill()  # what the fleet does at the stop timeout
            first.wait()
            pytest.fail(f"the worker was still running {stop_timeout:g} s after SIGTERM")
        at_exit = {i.event_id: i for i in stack.ledger.scan()}
        assert len(sink.delivered()) < EVENTS, "the drain ended before SIGTERM: nothing proven"

        start_prefork_worker(launcher, "second")
        report: Counter[str] = Counter()
        items = stack.wait_final(EVENTS, timeout=120, tick=reconciler_tick(report))

    assert exit_code == 0
    # What it was sending it finished and recorded before it exited; it held nothing
    # under a lease it would leave to lapse.
    assert {at_exit[event_id].status for event_id in in_flight} == {Status.REPLAYED}
    assert [i.event_id for i in at_exit.values() if i.status is Status.IN_PROGRESS] == []
    # Nothing lost, nothing sent twice.
    assert {i.status for i in items} == {Status.REPLAYED}
    delivered = sink.delivered()
    assert delivered == Counter({e["id"]: 1 for e in events})
    shutdown = (launcher.workdir / "first.log").read_text()
    assert "Warm shutdown" in shutdown or "warm shutdown" in shutdown.lower()
    finished_by_first = sum(1 for i in at_exit.values() if i.status is Status.REPLAYED)
    print(
        f"\nSIGTERM mid-drain: {len(in_flight)} sends in flight at SIGTERM, the first worker "
        f"finished {finished_by_first} of {EVENTS} and exited {exit_code} within the stop "
        f"timeout {stop_timeout:g} s (soft limit {values['REPLAY_TASK_SOFT_TIME_LIMIT']} s, "
        f"hard +{HARD_LIMIT_ABOVE_SOFT} s); reconciler {dict(report)}"
    )
