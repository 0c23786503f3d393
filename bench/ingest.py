"""How fast the front doors move DLQ messages into the ledger and the broker.

Mode: the front doors alone; no worker runs.

Against the real local stack (DynamoDB on dynalite where node is present, else on moto;
SQS on moto): the poller (in this process, `wait_seconds=0`) drains a full
DLQ on moto's SQS, with 1 and 4 receivers; the Lambda handler is called in this process
with synthetic SQS-trigger records in batches of 10 (as the event source mapping would
deliver them: no SQS calls, the Lambda service receives and deletes). No worker runs, so
the replay tasks wait in Redis. Prints the figures, writes bench/results/ingest.json.

    .venv/bin/python -m bench.ingest            # 1,010 messages per run
    .venv/bin/python -m bench.ingest --quick    # a few dozen
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import backends
from bench.common import (
    QUICK,
    RESULTS_DIR,
    STANDARD,
    BenchStack,
    WorkloadSpec,
    bench_stack,
    calls_between,
    lambda_record,
    machine,
    per,
    redis_calls,
    write_results,
)
from bench.cpu import CpuMeter, cpu_split, format_split
from dlq.settings import load_settings
from tasks.names import REPLAY_QUEUE

RESULTS = RESULTS_DIR / "ingest.json"


def poller_run(stack: BenchStack, spec: WorkloadSpec, *, receivers: int) -> dict[str, Any]:
    table = stack.fresh_round(f"poller-r{receivers}")
    fill_seconds = stack.fill_dlq(spec.generate())
    before = redis_calls(stack.redis)
    meter = CpuMeter(stack.pids()).start()
    counts, seconds = stack.poll_dlq(table, receivers=receivers)
    cpu = meter.stop()
    commands = calls_between(before, redis_calls(stack.redis))
    ledger = sum(stack.statuses(table).values())
    return {
        "front_door": f"poller, {receivers} receiver{'s' if receivers > 1 else ''}",
        "receivers": receivers,
        "messages": spec.events,
        "setup_fill_seconds": round(fill_seconds, 2),
        "seconds": round(seconds, 3),
        "messages_per_second": round(spec.events / seconds, 1),
        "outcomes": counts,
        "ledger_items": ledger,
        "dlq_left": stack.dlq_depth(),
        "broker_queued": int(stack.redis.llen(REPLAY_QUEUE)),
        "redis_commands_per_message": per(sum(commands.values()), spec.events, 2),
        "cpu_seconds": cpu,
        "cpu_ms_per_message": {name: per(v * 1000, spec.events, 2) for name, v in cpu.items()},
        "cpu_split": cpu_split(cpu, wall=seconds, events=spec.events),
    }


def lambda_run(stack: BenchStack, spec: WorkloadSpec) -> dict[str, Any]:
    from ingest.frontdoor import FrontDoor
    from ingest.lambda_handler import handler

    table = stack.fresh_round("lambda")
    workload = spec.generate()
    stack.seed_conversations(workload)
    records = [lambda_record(m) for m in workload.messages]
    door = FrontDoor.from_settings(load_settings(_env_file=None, ledger_table=table))
    before = redis_calls(stack.redis)
    meter = CpuMeter(stack.pids()).start()
    failures = 0
    started = time.perf_counter()
    for start in range(0, len(records), 10):
        answer = handler({"Records": records[start : start + 10]}, None, front_door=door)
        failures += len(answer["batchItemFailures"])
    seconds = time.perf_counter() - started
    cpu = meter.stop()
    commands = calls_between(before, redis_calls(stack.redis))
    return {
        "front_door": "lambda handler, batches of 10",
        "messages": len(records),
        "seconds": round(seconds, 3),
        "messages_per_second": round(len(records) / seconds, 1),
        "batch_item_failures": failures,
        "ledger_items": sum(stack.statuses(table).values()),
        "broker_queued": int(stack.redis.llen(REPLAY_QUEUE)),
        "redis_commands_per_message": per(sum(commands.values()), len(records), 2),
        "cpu_seconds": cpu,
        "cpu_ms_per_message": {name: per(v * 1000, len(records), 2) for name, v in cpu.items()},
        "cpu_split": cpu_split(cpu, wall=seconds, events=len(records)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--quick", action="store_true", help="a few dozen messages")
    backends.add_option(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    spec = QUICK if args.quick else STANDARD
    runs: list[dict[str, Any]] = []
    with bench_stack("ingest", dynamodb=args.dynamodb) as stack:
        for receivers in args.receivers:
            runs.append(poller_run(stack, spec, receivers=receivers))
        runs.append(lambda_run(stack, spec))
        backend = stack.backend.describe()
    figures = {
        "benchmark": "ingest",
        "machine": machine(),
        "dynamodb_backend": backend,
        "workload": spec.describe(),
        "runs": runs,
    }
    write_results(args.output, figures)
    print(f"ingest: {spec.events} messages per run, DynamoDB on {backend['name']}")
    for run in runs:
        print(
            f"  {run['front_door']:<32} {run['messages_per_second']:7.1f} msg/s "
            f"({run['seconds']:.1f} s)\n{format_split(run['cpu_split'])}"
        )
    print(f"  written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
