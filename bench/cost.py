"""What one replayed event costs in AWS requests and Redis commands, ingest and worker side.

AWS requests are counted in this process by a botocore `before-call` handler appended to
botocore's built-in handlers, so every boto3 session the product builds from then on
(the poller's front door, the worker runtime's ledger) carries it; the benchmark's own
observer clients are built before it and are not counted. To see the worker's requests
the worker runs in this process too (`celery.contrib.testing.worker.start_worker`, thread
pool): the same code and the same clients as `celery -A tasks worker --pool threads`.
Redis commands come from redis-server's INFO commandstats, before and after each phase.
The worker side is counted until tracking has settled (one PATCH per conversation).
Worker CPU and memory are measured on the real worker process by `bench.drain`.

    .venv/bin/python -m bench.cost            # 1,010 events
    .venv/bin/python -m bench.cost --quick    # 21 events
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore.handlers

from bench.common import (
    QUICK,
    RESULTS_DIR,
    STANDARD,
    BenchStack,
    WorkloadSpec,
    bench_stack,
    calls_between,
    machine,
    per,
    redis_calls,
    wait_all_final,
    write_results,
)
from devstack.sim_admin import PATCH_ATTRIBUTES
from tasks.names import REPLAY_QUEUE, TRACK_QUEUE
from tasks.runtime import environment

RESULTS = RESULTS_DIR / "cost.json"
PENDING_TRACKING = "dlq:track:pending:*"


class ApiCounter:
    """Counts AWS API calls by `service.Operation` (one per call, retries not included)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def __call__(self, model: Any = None, **_: Any) -> None:
        if model is None:
            return
        name = f"{model.service_model.service_name}.{model.name}"
        with self._lock:
            self._counts[name] += 1

    def take(self) -> dict[str, int]:
        """The counts so far, and start again from zero."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


@contextmanager
def counting_aws_calls() -> Iterator[ApiCounter]:
    """Count the calls of every boto3 client created inside the block."""
    counter = ApiCounter()
    entry = ("before-call", counter)
    botocore.handlers.BUILTIN_HANDLERS.append(entry)
    try:
        yield counter
    finally:
        botocore.handlers.BUILTIN_HANDLERS.remove(entry)


def _service_total(counts: dict[str, int], service: str) -> int:
    return sum(n for name, n in counts.items() if name.startswith(f"{service}."))


def _side(counts: dict[str, int], commands: dict[str, int], events: int) -> dict[str, Any]:
    return {
        "dynamodb_requests": _service_total(counts, "dynamodb"),
        "dynamodb_per_event": per(_service_total(counts, "dynamodb"), events),
        "sqs_requests": _service_total(counts, "sqs"),
        "sqs_per_event": per(_service_total(counts, "sqs"), events),
        "aws_by_operation": counts,
        "redis_commands": sum(commands.values()),
        "redis_commands_per_event": per(sum(commands.values()), events, 2),
        "redis_by_command": dict(list(commands.items())[:12]),
    }


def measure(
    stack: BenchStack,
    spec: WorkloadSpec,
    *,
    concurrency: int = 16,
    debounce: float = 5.0,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Ingest with the poller, then drain with an in-process worker, counting each side."""
    from celery.contrib.testing.worker import start_worker

    from tasks.application import app

    table = stack.fresh_round(f"cost-c{concurrency}")
    stack.fill_dlq(spec.generate())
    env = {
        key: value
        for key, value in stack.worker_env(
            table, REPLAY_TRACKING_DEBOUNCE_SECONDS=str(debounce)
        ).items()
        if key.startswith(("LEDGER_", "REPLAY_", "GENESYS_"))
    }
    with counting_aws_calls() as counter, environment(env):
        before = redis_calls(stack.redis)
        stack.poll_dlq(table)
        ingest = _side(counter.take(), calls_between(before, redis_calls(stack.redis)), spec.events)

        before = redis_calls(stack.redis)
        started = time.perf_counter()
        with start_worker(
            app,
            pool="threads",
            concurrency=concurrency,
            perform_ping_check=False,
            queues=[REPLAY_QUEUE, TRACK_QUEUE],
            loglevel="WARNING",
            shutdown_timeout=30,
        ):
            # The app's logging hook configures INFO JSON lines on stdout; keep them quiet.
            logging.getLogger().setLevel(logging.WARNING)
            drained = wait_all_final(
                stack, table, expected=spec.events, started=started, timeout=timeout
            )
            at_final = counter.take()
            final_commands = redis_calls(stack.redis)
            settled = _wait_tracking_settled(stack, spec, started, timeout)
            after_final = counter.take()
            settled_commands = redis_calls(stack.redis)
    worker_counts = Counter(at_final) + Counter(after_final)
    worker_commands = calls_between(before, settled_commands)
    return {
        "concurrency": concurrency,
        "tracking_debounce_seconds": debounce,
        "events": spec.events,
        "drain_seconds": drained.seconds,
        "tracking_settled_seconds": round(settled, 3),
        "ingest": ingest,
        "worker": _side(
            dict(sorted(worker_counts.items(), key=lambda kv: -kv[1])),
            worker_commands,
            spec.events,
        ),
        "worker_until_all_final": _side(
            at_final, calls_between(before, final_commands), spec.events
        ),
    }


def _wait_tracking_settled(
    stack: BenchStack, spec: WorkloadSpec, started: float, timeout: float
) -> float:
    """Until every conversation was PATCHed and no tracking run is pending."""
    while time.perf_counter() - started < timeout:
        patched = stack.dev.admin.stats().count(PATCH_ATTRIBUTES, 202)
        pending = next(iter(stack.redis.scan_iter(PENDING_TRACKING, count=1000)), None)
        if patched >= spec.conversations and pending is None:
            return time.perf_counter() - started
        time.sleep(0.2)
    raise TimeoutError(f"tracking not settled after {timeout:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.cost", description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="21 events")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    spec = QUICK if args.quick else STANDARD
    debounce = 0.5 if args.quick else 5.0
    with bench_stack("cost", latency_ms=20.0) as stack:
        figures = {
            "benchmark": "cost",
            "machine": machine(),
            **measure(stack, spec, concurrency=args.concurrency, debounce=debounce),
        }
    write_results(args.output, figures)
    for side in ("ingest", "worker"):
        numbers = figures[side]
        print(
            f"cost {side}: {numbers['dynamodb_per_event']:.2f} DynamoDB, "
            f"{numbers['sqs_per_event']:.2f} SQS, "
            f"{numbers['redis_commands_per_event']:.1f} Redis commands per event"
        )
    print(f"  written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
