"""The CPU floor of one replayed event: what the libraries alone cost, with no project logic.

Each operation an event needs is timed on its own, single-threaded, in this process
(CPU from `time.process_time`, after a few uncounted warm-up calls), on the same stack
as the other benchmarks:

- a ledger claim and its finish: the project's `Ledger` on a boto3 client built as the
  worker builds it, against the DynamoDB server of `--dynamodb` (two UpdateItem);
- a ledger query of one conversation (`by_conversation`, one Query);
- an HTTP POST of the event to the target (the project's pooled requests Session, to the
  benchmark sink);
- one Redis command (a redis-py GET round trip).

The floor per event is each cost times how often the standard workload needs it, taken
from `bench/results/cost.json` when `bench.cost` has run (else issue 14's counts: one
claim and finish, a quarter of a query, one POST, 11 Redis commands). Celery's own work
per task (receive, trace, acknowledge) is not in it, nor is any of the project's code, so
the floor is a lower bound: a worker pays at least this, and more per call when its
threads contend for the GIL.

    .venv/bin/python -m bench.floor            # 400 of each
    .venv/bin/python -m bench.floor --quick    # 20 of each
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from bench import backends
from bench.common import RESULTS_DIR, WorkloadSpec, bench_stack, machine, write_results
from dlq.aws import aws_client
from dlq.ledger import Status
from dlq.ledger.store import Ledger
from dlq.targets.http import new_session

RESULTS = RESULTS_DIR / "floor.json"
COST = RESULTS_DIR / "cost.json"
WARM_UP = 5
#: Issue 14's counts per event, used when no cost.json says what the workload needed.
DEFAULT_PER_EVENT = {"claim_finish": 1.0, "query": 0.25, "post": 1.0, "redis": 11.0}
GOAL_MS = 5.0


def timed(operation: Callable[[int], object], n: int) -> dict[str, float]:
    """CPU and wall milliseconds per call of `operation(i)`, i in 0..n-1, after warm-up."""
    for i in range(WARM_UP):
        operation(i)
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(WARM_UP, WARM_UP + n):
        operation(i)
    return {
        "cpu_ms": round((time.process_time() - cpu) * 1000 / n, 3),
        "wall_ms": round((time.perf_counter() - wall) * 1000 / n, 3),
        "calls": n,
    }


def per_event(cost: Path) -> tuple[dict[str, float], str]:
    """How often an event of the standard workload needs each operation, and whence."""
    if not cost.exists():
        return dict(DEFAULT_PER_EVENT), "issue 14's counts (no bench/results/cost.json)"
    figures = json.loads(cost.read_text())
    worker, events = figures["worker"], figures["events"]
    operations = worker["aws_by_operation"]
    counts = {
        "claim_finish": operations.get("dynamodb.UpdateItem", 0) / 2 / events,
        "query": operations.get("dynamodb.Query", 0) / events,
        "post": 1.0,
        "redis": float(worker["redis_commands_per_event"]),
    }
    stamp = figures["machine"]["measured_at"]
    return {k: round(v, 3) for k, v in counts.items()}, f"bench/results/cost.json ({stamp})"


def run(args: argparse.Namespace) -> dict[str, Any]:
    n = args.n
    # Enough conversations of four events for n + warm-up claims and queries.
    spec = WorkloadSpec(conversations=(n + WARM_UP) // 4 + 1, presence_events=0)
    with bench_stack("floor", dynamodb=args.dynamodb) as stack:
        table = stack.fresh_round("floor")
        workload = spec.generate()
        stack.ingest_direct(table, workload)
        # The client the worker builds (tasks/runtime.py): no parameter validation.
        ledger = Ledger(aws_client("dynamodb", stack.settings, pool_size=64, validate=False), table)
        items = [i for i in ledger.scan() if i.status is Status.RECEIVED]
        conversations = sorted({i.conversation_id for i in items if i.conversation_id})

        def claim_finish(i: int) -> None:
            claimed = ledger.claim(items[i].key, lease_seconds=150)
            ledger.finish(claimed, Status.REPLAYED, outcome="replayed")

        def query(i: int) -> None:
            ledger.by_conversation(conversations[i % len(conversations)])

        session = new_session()
        headers = {"Content-Type": "application/json; charset=utf-8"}

        def post(i: int) -> None:
            answer = session.post(
                stack.sink.url, data=items[i].body.encode(), headers=headers, timeout=(3, 10)
            )
            answer.raise_for_status()

        client = redis.Redis.from_url(stack.dev.redis.url)

        def redis_get(i: int) -> None:
            client.get("dlq:bench:floor")

        costs = {
            "claim_finish": timed(claim_finish, n),
            "query": timed(query, n),
            "post": timed(post, n),
            "redis": timed(redis_get, n),
        }
        backend = stack.backend.describe()
    counts, source = per_event(args.cost)
    parts = {
        name: {
            **cost,
            "per_event": counts[name],
            "cpu_ms_per_event": round(cost["cpu_ms"] * counts[name], 3),
        }
        for name, cost in costs.items()
    }
    floor = round(sum(part["cpu_ms_per_event"] for part in parts.values()), 3)
    measured = None
    if args.cost.exists():
        measured = json.loads(args.cost.read_text())["worker"].get("cpu_ms_per_event")
    return {
        "benchmark": "floor",
        "machine": machine(),
        "dynamodb_backend": backend,
        "calls_per_operation": n,
        "per_event_source": source,
        "operations": parts,
        "floor_cpu_ms_per_event": floor,
        "goal_cpu_ms_per_event": GOAL_MS,
        "measured_worker_cpu_ms_per_event": measured,
    }


LABELS = {
    "claim_finish": "ledger claim + finish (2 UpdateItem, boto3)",
    "query": "ledger query of a conversation (Query, boto3)",
    "post": "POST to the target (requests)",
    "redis": "one Redis command (redis-py)",
}


def format_floor(figures: dict[str, Any]) -> str:
    lines = [f"  {'operation':48} {'CPU ms':>7} {'wall ms':>8} {'per event':>10} {'ms/event':>9}"]
    for name, part in figures["operations"].items():
        lines.append(
            f"  {LABELS[name]:48} {part['cpu_ms']:7.3f} {part['wall_ms']:8.3f} "
            f"{part['per_event']:10.3g} {part['cpu_ms_per_event']:9.3f}"
        )
    floor = figures["floor_cpu_ms_per_event"]
    lines.append(
        f"  floor: {floor:.2f} ms of CPU per event for these libraries alone "
        f"(goal {figures['goal_cpu_ms_per_event']:g} ms; counts from {figures['per_event_source']})"
    )
    measured = figures["measured_worker_cpu_ms_per_event"]
    if measured:
        lines.append(
            f"  the worker measured {measured:.2f} ms per event in bench.cost: the floor is "
            f"{floor / measured:.0%} of it (Celery, the project's code and GIL contention: "
            "the rest)"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="timed calls of each operation")
    parser.add_argument("--quick", action="store_true", help="20 calls of each")
    parser.add_argument("--cost", type=Path, default=COST, help="bench.cost's results")
    backends.add_option(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.n = 20
    figures = run(args)
    write_results(args.output, figures)
    print(format_floor(figures))
    print(f"  written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
