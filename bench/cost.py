"""What one replayed event costs: AWS requests, Redis commands and worker CPU, and the ceiling.

Mode: filled first. The poller takes the whole DLQ into the ledger and the broker, then
one worker starts and drains it (not as deployed: `bench.deployed` is).

Ingest side: the Poller runs in this process, and its AWS calls are counted by a botocore
`before-call` handler appended to botocore's built-in handlers, so every boto3 session
built from then on carries it (the benchmark's own observer clients are built before it
and are not counted). Worker side: a real `celery -A tasks worker` process (threads or
prefork), whose AWS requests are counted on the server side by `bench.proxy`, a counting
HTTP proxy in front of the DynamoDB server (dynalite or moto) and one in front of moto
for every other service: the worker's `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL`
point at them, the benchmark's ledger scans do not. Redis commands come from
redis-server's INFO commandstats, before and after each phase. The worker side is
counted until tracking has settled (one PATCH per conversation), and so is its CPU
(its process tree, from /proc), less its start-up, measured on an idle worker first.

The physical ceiling is what the worker's CPU alone allows if it had every core:
events/s = cores x 1000 / (worker CPU ms per event); the run's events/s after the first
delivery is set against it. The stand-ins share those cores, so no run reaches it.

    .venv/bin/python -m bench.cost            # 1,010 events
    .venv/bin/python -m bench.cost --quick    # 21 events
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore.handlers

from bench import backends
from bench.backends import ENDPOINT_VARIABLE
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
    stop_child,
    wait_all_final,
    write_results,
)
from bench.cpu import CpuMeter, cpu_split, format_split, tree_cpu_seconds
from bench.proxy import CountingProxy
from bench.worker import Pool, pools_option, start_worker, wait_ready
from devstack.sim_admin import PATCH_ATTRIBUTES
from tasks.names import TRACK_TASK

RESULTS = RESULTS_DIR / "cost.json"
PENDING_TRACKING = "dlq:track:pending:*"
#: A queue no task is ever sent to: the start-up of a worker that has nothing to do.
IDLE_QUEUE = "bench-idle"


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


def service_total(counts: Mapping[str, int], service: str) -> int:
    return sum(n for name, n in counts.items() if name.startswith(f"{service}."))


def side(counts: Mapping[str, int], commands: dict[str, int], events: int) -> dict[str, Any]:
    counts = dict(sorted(counts.items(), key=lambda kv: -kv[1]))
    return {
        "dynamodb_requests": service_total(counts, "dynamodb"),
        "dynamodb_per_event": per(service_total(counts, "dynamodb"), events),
        "sqs_requests": service_total(counts, "sqs"),
        "sqs_per_event": per(service_total(counts, "sqs"), events),
        "aws_by_operation": counts,
        "redis_commands": sum(commands.values()),
        "redis_commands_per_event": per(sum(commands.values()), events, 2),
        "redis_by_command": dict(list(commands.items())[:12]),
    }


class Proxies:
    """The counting proxies a worker's AWS requests go through: DynamoDB, and the rest."""

    def __init__(self, stack: BenchStack) -> None:
        workdir = stack.dev.workdir
        self.dynamodb = CountingProxy(
            stack.backend.url or stack.dev.moto.url, workdir, name="proxy-dynamodb"
        )
        self.aws = CountingProxy(stack.dev.moto.url, workdir, name="proxy-aws")

    def env(self, env: dict[str, str]) -> dict[str, str]:
        return {**env, "AWS_ENDPOINT_URL": self.aws.url, ENDPOINT_VARIABLE: self.dynamodb.url}

    def take(self) -> tuple[dict[str, int], dict[str, int]]:
        """Requests and error answers by operation since the last take; then zero."""
        requests: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for proxy in (self.dynamodb, self.aws):
            counts = proxy.counts()
            proxy.reset()
            requests.update(counts["requests"])
            errors.update(counts["errors"])
        return dict(requests), dict(errors)

    def pids(self) -> dict[str, int]:
        return {
            name: proxy.process.pid
            for name, proxy in (("proxy_dynamodb", self.dynamodb), ("proxy_aws", self.aws))
            if proxy.process is not None
        }


def startup_cpu(
    stack: BenchStack, pool: Pool, env: dict[str, str], *, name: str = "worker"
) -> float:
    """CPU seconds a worker of this pool spends from spawn to ready, with nothing to do."""
    idle = start_worker(
        stack.dev, pool, env, name=f"{name}-{stack.rounds:02d}-idle", queues=IDLE_QUEUE
    )
    try:
        wait_ready(idle)
        return tree_cpu_seconds(idle.pid)
    finally:
        stop_child(idle.process)


def measure(
    stack: BenchStack,
    spec: WorkloadSpec,
    *,
    pool: Pool | None = None,
    debounce: float = 5.0,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Ingest with the poller, then drain with a worker process, counting each side."""
    pool = pool or Pool("threads", 16)
    table = stack.fresh_round(f"cost-{pool.kind}{pool.concurrency}")
    stack.fill_dlq(spec.generate())
    with counting_aws_calls() as counter:
        before = redis_calls(stack.redis)
        stack.poll_dlq(table)
        ingest = side(counter.take(), calls_between(before, redis_calls(stack.redis)), spec.events)

    proxies = Proxies(stack)
    with proxies.dynamodb, proxies.aws:
        env = proxies.env(stack.worker_env(table, REPLAY_TRACKING_DEBOUNCE_SECONDS=str(debounce)))
        startup = startup_cpu(stack, pool, env)
        proxies.take()
        before = redis_calls(stack.redis)
        wall_start = time.time()
        started = time.perf_counter()
        worker = start_worker(stack.dev, pool, env, name=f"worker-{stack.rounds:02d}-cost")
        meter = CpuMeter(stack.pids(worker=worker.pid, **proxies.pids())).start()
        try:
            drained = wait_all_final(
                stack, table, expected=spec.events, started=started, timeout=timeout
            )
            at_final, errors_at_final = proxies.take()
            final_commands = redis_calls(stack.redis)
            settled = wait_tracking_settled(stack, spec, started, timeout)
            cpu = meter.stop()
            worker_cpu = tree_cpu_seconds(worker.pid)
            after_final, errors_after = proxies.take()
            settled_commands = redis_calls(stack.redis)
            first = stack.sink.counts()["first"]
        finally:
            stop_child(worker.process)
    requests = Counter(at_final) + Counter(after_final)
    worker_side = side(requests, calls_between(before, settled_commands), spec.events)
    errors = Counter(errors_at_final) + Counter(errors_after)
    cpu_ms = per((worker_cpu - startup) * 1000, spec.events, 2)
    first_delivery = (first - wall_start) if first else 0.0
    worker_side.update(
        dynamodb_error_answers=service_total(errors, "dynamodb"),
        aws_errors_by_operation=dict(errors),
        worker_log=worker.log.name,
        cpu_seconds=round(worker_cpu, 3),
        startup_cpu_seconds=round(startup, 3),
        cpu_ms_per_event=cpu_ms,
        cpu_ms_per_event_with_startup=per(worker_cpu * 1000, spec.events, 2),
        tasks=tasks_run(worker.log),
        tracking_runs_per_conversation=per(
            tasks_run(worker.log).get(TRACK_TASK, 0), spec.conversations, 2
        ),
    )
    return {
        "pool": pool.kind,
        "concurrency": pool.concurrency,
        "dynamodb_backend": stack.backend.describe(),
        "tracking_debounce_seconds": debounce,
        "events": spec.events,
        "counted_by": {
            "ingest": "botocore before-call handler in this process (the Poller runs here)",
            "worker": "bench.proxy: counting HTTP proxies in front of the DynamoDB server "
            "and moto, on the worker's endpoints only (server side)",
            "redis": "INFO commandstats deltas",
            "cpu": "/proc/<pid>/stat of the worker's process tree, spawn to tracking "
            "settled, less the start-up of an idle worker",
        },
        "first_delivery_seconds": round(first_delivery, 3),
        "drain_seconds": drained.seconds,
        "tracking_settled_seconds": round(settled, 3),
        "ingest": ingest,
        "worker": worker_side,
        "worker_until_all_final": side(
            at_final, calls_between(before, final_commands), spec.events
        ),
        "ceiling": ceiling(cpu_ms, events=spec.events, seconds=drained.seconds - first_delivery),
        "cpu_split": cpu_split(cpu, wall=settled, events=spec.events),
    }


def ceiling(
    cpu_ms_per_event: float, *, events: int, seconds: float, cores: int | None = None
) -> dict[str, Any]:
    """The worker's physical ceiling, cores x 1000 / CPU ms per event, and a run against it."""
    cores = cores or os.cpu_count() or 1
    limit = cores * 1000 / cpu_ms_per_event if cpu_ms_per_event > 0 else 0.0
    achieved = events / seconds if seconds > 0 else 0.0
    share = achieved / limit if limit else 0.0
    return {
        "cores": cores,
        "cpu_ms_per_event": cpu_ms_per_event,
        "events_per_second": round(limit, 1),
        "achieved_events_per_second": round(achieved, 1),
        "achieved_of_ceiling": round(share, 3),
        "line": (
            f"ceiling {cores} cores x 1000 / {cpu_ms_per_event:.2f} CPU ms per event = "
            f"{limit:.1f} events/s; achieved {achieved:.1f} events/s after the first "
            f"delivery = {share:.0%} of it"
        ),
    }


def wait_tracking_settled(
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


def print_cost(figures: Mapping[str, Any]) -> None:
    for side in ("ingest", "worker"):
        numbers = figures[side]
        print(
            f"  cost {side}: {numbers['dynamodb_per_event']:.2f} DynamoDB, "
            f"{numbers['sqs_per_event']:.2f} SQS, "
            f"{numbers['redis_commands_per_event']:.1f} Redis commands per event"
            + (f", {numbers['cpu_ms_per_event']:.2f} CPU ms" if side == "worker" else "")
        )
    worker = figures["worker"]
    if "tasks" in worker:
        print(
            f"  tasks run by the worker: {worker['tasks']}; tracking runs per conversation "
            f"{worker['tracking_runs_per_conversation']:.2f}"
        )
    print(f"  {figures['ceiling']['line']}")
    print(
        f"  CPU, worker spawn -> tracking settled ({figures['pool']}:{figures['concurrency']},"
        f" DynamoDB on {figures['dynamodb_backend']['name']}, through the counting proxies):\n"
        f"{format_split(figures['cpu_split'])}",
        flush=True,
    )


def tasks_run(log: Path) -> dict[str, int]:
    """Task executions by task name, from the worker's INFO lines ("Task <name>[<id>]
    succeeded in ..."): a wait or a retry that re-sends a task counts again."""
    runs: Counter[str] = Counter()
    if log.exists():
        with log.open(errors="replace") as lines:
            for line in lines:
                if "] succeeded in " in line and "Task " in line:
                    runs[line.split("Task ", 1)[1].split("[", 1)[0]] += 1
    return dict(runs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.cost", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pool", type=pools_option, default=[Pool("threads", 16)], help="e.g. threads:16"
    )
    parser.add_argument("--quick", action="store_true", help="21 events")
    backends.add_option(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if len(args.pool) != 1:
        parser.error("--pool takes one pool")
    spec = QUICK if args.quick else STANDARD
    debounce = 0.5 if args.quick else 5.0
    with bench_stack("cost", latency_ms=20.0, dynamodb=args.dynamodb) as stack:
        figures = {
            "benchmark": "cost",
            "machine": machine(),
            **measure(stack, spec, pool=args.pool[0], debounce=debounce),
        }
    write_results(args.output, figures)
    print_cost(figures)
    print(f"  written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
