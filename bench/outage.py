"""A target down for longer than the attempt budget, with the target breaker off and on.

Mode: filled first, then a worker drains while the target is down and comes back.

Against the real local stack (redis-server, moto, DynamoDB per bench.backends, the
Genesys simulator) and an HTTP target in this process that answers 503 for `--down`
seconds, far longer than the attempt budget (REPLAY_MAX_ATTEMPTS=4, backoff 1..4 s),
then 200. Each round ingests the same workload through the Lambda front door, starts a
`celery -A tasks worker`, and measures, side by side: the sends made against the down
target per event, the items that ran out of attempts (`exhausted`), and the time from
the target's recovery to its last delivery. Prints the figures with the machine and
writes bench/results/outage.json.

    .venv/bin/python -m bench.outage            # 40 conversations x 4 events, 60 s down
    .venv/bin/python -m bench.outage --quick    # 4 x 4 events, 8 s down: a smoke test
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import backends
from bench.common import (
    API_DESTINATION_ARN,
    RESULTS_DIR,
    BenchStack,
    WorkloadSpec,
    bench_stack,
    machine,
    stop_child,
    write_results,
)
from bench.worker import Pool, start_worker, wait_ready
from dlq.ledger import FINAL_STATUSES

RESULTS = RESULTS_DIR / "outage.json"
MODES = {"breaker off": "0", "breaker on": "5"}


class FailingTarget:
    """An HTTP target that answers `status` (503 while down) and records every POST."""

    def __init__(self) -> None:
        self.status = 200
        self.posts: list[tuple[float, str, int]] = []
        self._lock = threading.Lock()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = target.status
                with target._lock:
                    target.posts.append((time.time(), str(json.loads(body).get("id")), status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/events"

    def reset(self) -> None:
        with self._lock:
            self.posts.clear()

    def taken(self) -> list[tuple[float, str, int]]:
        with self._lock:
            return list(self.posts)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def one_round(
    stack: BenchStack, target: FailingTarget, mode: str, spec: WorkloadSpec, *, down: float
) -> dict[str, Any]:
    table = stack.fresh_round(mode.replace(" ", "-"))
    target.reset()
    workload = spec.generate()
    stack.ingest_direct(table, workload)
    env = stack.worker_env(
        table,
        REPLAY_HTTP_TARGETS=json.dumps({API_DESTINATION_ARN: target.url}),
        REPLAY_MAX_ATTEMPTS="4",
        REPLAY_BACKOFF_BASE="1",
        REPLAY_BACKOFF_MAX="4",
        REPLAY_VERIFY_CONVERSATION="false",
        REPLAY_BREAKER_FAILURES=MODES[mode],
        REPLAY_BREAKER_COOLDOWN_SECONDS="5",
        REPLAY_SEND_READ_TIMEOUT="2",
    )
    target.status = 503
    worker = start_worker(stack.dev, Pool("threads", 16), env, name=f"worker-{stack.rounds}")
    try:
        wait_ready(worker)
        time.sleep(down)
        target.status = 200
        recovered = time.time()
        counts = wait_final(stack, table, spec.events, timeout=down + 180)
    finally:
        stop_child(worker.process)
    posts = target.taken()
    refused = sum(1 for _, _, status in posts if status >= 300)
    delivered = [(at, event_id) for at, event_id, status in posts if status < 300]
    last = max((at for at, _ in delivered), default=recovered)
    return {
        "events": spec.events,
        "sends_while_down": refused,
        "sends_while_down_per_event": round(refused / spec.events, 2),
        "delivered_distinct": len({event_id for _, event_id in delivered}),
        "delivered_twice": len(delivered) - len({event_id for _, event_id in delivered}),
        "statuses": dict(counts),
        "exhausted": counts.get("exhausted", 0),
        "recovery_to_last_delivery_s": round(last - recovered, 2),
    }


def wait_final(stack: BenchStack, table: str, expected: int, *, timeout: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = stack.statuses(table)
        if sum(counts.values()) >= expected and all(s in FINAL_STATUSES for s in counts):
            return dict(counts)
        time.sleep(0.5)
    raise TimeoutError(f"not all final after {timeout:.0f} s: {dict(stack.statuses(table))}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="A tiny run (a smoke test).")
    parser.add_argument("--down", type=float, help="Seconds the target answers 503.")
    parser.add_argument("--output", type=Path, default=RESULTS)
    backends.add_option(parser)
    args = parser.parse_args(argv)
    spec = (
        WorkloadSpec(conversations=4, presence_events=0)
        if args.quick
        else WorkloadSpec(conversations=40, presence_events=0)
    )
    down = args.down or (8.0 if args.quick else 60.0)
    rounds: dict[str, dict[str, Any]] = {}
    target = FailingTarget()
    try:
        with bench_stack("outage", dynamodb=args.dynamodb) as stack:
            for mode in MODES:
                rounds[mode] = one_round(stack, target, mode, spec, down=down)
                print(f"{mode}: {json.dumps(rounds[mode])}", flush=True)
    finally:
        target.close()
    figures = {"machine": machine(), "workload": spec.describe(), "down_seconds": down,
               "rounds": rounds}  # fmt: skip
    print(f"\nmachine: {json.dumps(figures['machine'])}")
    print(f"target down {down:g} s, {spec.events} events, attempt budget 4 (backoff 1..4 s)")
    print(f"{'':14}{'sends/event while down':>24}{'exhausted':>11}{'recovery->last (s)':>20}")
    for mode, r in rounds.items():
        print(f"{mode:14}{r['sends_while_down_per_event']:>24}{r['exhausted']:>11}"
              f"{r['recovery_to_last_delivery_s']:>20}")  # fmt: skip
    write_results(args.output, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
