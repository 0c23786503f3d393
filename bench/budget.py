"""How well a drain spends the Genesys budget: calls per event, 429s, pace, time vs ceiling.

The simulator enforces the real per-token limit shape, 300 calls a minute, as 50 calls
per 10 s window (same limit/window ratio, shorter window); the project's budget
GENESYS_RATE_LIMIT_PER_MINUTE is set just under it (290). The DLQ is filled and ingested
with the real Poller, then one `celery -A tasks worker` (16 threads, verification on)
drains it; the clock starts at the worker's spawn. Two ends are timed: every ledger item
final (redelivery), and tracking settled (every conversation PATCHed). The ceiling is
the calls needed divided by the budget. Writes bench/results/budget.json.

    .venv/bin/python -m bench.budget            # 250 conversations, ~2 minutes
    .venv/bin/python -m bench.budget --quick    # 5 conversations, 10 calls per 2 s
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import backends
from bench.common import (
    QUICK,
    RESULTS_DIR,
    STANDARD,
    WorkloadSpec,
    bench_stack,
    count_in_log,
    log_timeline,
    machine,
    per,
    scan_cost,
    stop_child,
    wait_all_final,
    write_results,
)
from bench.cpu import CpuMeter, cpu_split, format_split
from devstack.sim_admin import ANALYTICS_DETAILS, GET_CONVERSATION, PATCH_ATTRIBUTES, TOKEN

RESULTS = RESULTS_DIR / "budget.json"
PENDING_TRACKING = "dlq:track:pending:*"


def run(args: argparse.Namespace, spec: WorkloadSpec) -> dict[str, Any]:
    sim_per_minute = args.sim_limit * 60 / args.sim_window
    with bench_stack(
        "budget",
        latency_ms=20.0,
        rate_limit=args.sim_limit,
        rate_window=args.sim_window,
        dynamodb=args.dynamodb,
    ) as stack:
        backend = stack.backend.describe()
        table = stack.fresh_round("budget")
        stack.fill_dlq(spec.generate())
        ingested, _ = stack.poll_dlq(table)
        assert ingested.get("accepted") == spec.events, ingested
        env = stack.worker_env(
            table,
            GENESYS_RATE_LIMIT_PER_MINUTE=str(args.budget),
            # The simulator's allowance header counts per its shortened window.
            GENESYS_RATE_LIMIT_WINDOW_SECONDS=str(args.sim_window),
            REPLAY_VERIFY_CONVERSATION="true",
            REPLAY_TRACKING_DEBOUNCE_SECONDS=str(args.debounce),
        )
        wall_start = time.time()
        started = time.perf_counter()
        worker = stack.dev.start_worker(concurrency=args.concurrency, env=env, name="worker")
        meter = CpuMeter(stack.pids(worker=worker.pid)).start()
        calls: list[tuple[float, int]] = []

        def genesys_calls() -> int:
            stats = stack.dev.admin.stats()
            reads = stats.count(GET_CONVERSATION) + stats.count(ANALYTICS_DETAILS)
            return reads + stats.count(PATCH_ATTRIBUTES)

        def sample() -> None:
            calls.append((time.perf_counter() - started, genesys_calls()))

        try:
            drained = wait_all_final(
                stack,
                table,
                expected=spec.events,
                started=started,
                timeout=args.timeout,
                tick=sample,
            )
            settled = None
            while time.perf_counter() - started < args.timeout:
                sample()
                stats = stack.dev.admin.stats()
                pending = next(iter(stack.redis.scan_iter(PENDING_TRACKING, count=1000)), None)
                if stats.count(PATCH_ATTRIBUTES, 202) >= spec.conversations and pending is None:
                    settled = time.perf_counter() - started
                    break
                time.sleep(0.25)
            if settled is None:
                raise TimeoutError(f"tracking not settled after {args.timeout:.0f} s")
            cpu = meter.stop()
            stats = stack.dev.admin.stats()
            per_scan = scan_cost(stack, table)
        finally:
            stop_child(worker)
        log = stack.dev.workdir / "worker.log"
        waits = count_in_log(log, "'waiting'")
        retries = retry_reasons(log)
        shutil.copy(log, args.output.with_name("budget-worker.log"))
        timeline = log_timeline(log, wall_start=wall_start, expected=spec.events)

    lookups, patches = stats.count(GET_CONVERSATION), stats.count(PATCH_ATTRIBUTES)
    batch_reads = stats.count(ANALYTICS_DETAILS)
    replayed = drained.final.get("replayed", 0)
    # One lookup and one PATCH per conversation: batch verification needs fewer.
    needed = 2 * spec.conversations
    ceiling = needed / args.budget * 60
    replay_ceiling = spec.conversations / args.budget * 60
    first_call = next((t for t, n in calls if n > 0), 0.0)
    active = max(settled - first_call, 1e-6)
    api_calls = lookups + batch_reads + patches
    busiest = _busiest_minute(calls)
    baseline_calls = spec.conversations * spec.events_per_conversation * 3
    return {
        "benchmark": "budget",
        "machine": machine(),
        "dynamodb_backend": backend,
        "workload": spec.describe(),
        "simulator_limit": f"{args.sim_limit} per {args.sim_window:g} s",
        "simulator_limit_per_minute": sim_per_minute,
        "budget_per_minute": args.budget,
        "worker_concurrency": args.concurrency,
        "tracking_debounce_seconds": args.debounce,
        "timing": "worker spawn -> all ledger items final / -> every conversation PATCHed",
        "replayed": replayed,
        "statuses": dict(drained.final),
        "genesys_lookups": lookups,
        "genesys_batch_reads": batch_reads,
        "genesys_patches": patches,
        "genesys_tokens": stats.count(TOKEN),
        "genesys_429": stats.status(429),
        "lookups_per_replayed_event": per(lookups + batch_reads, replayed),
        "patches_per_replayed_event": per(patches, replayed),
        "calls_per_replayed_event": per(api_calls, replayed),
        "calls_needed": needed,
        "first_call_seconds": round(first_call, 2),
        "all_final_seconds": drained.seconds,
        "tracking_settled_seconds": round(settled, 2),
        "ceiling_seconds": round(ceiling, 1),
        "replay_ceiling_seconds": round(replay_ceiling, 1),
        "settled_over_ceiling": round(settled / ceiling, 2),
        "all_final_over_replay_ceiling": round(drained.seconds / replay_ceiling, 2),
        "achieved_calls_per_minute": round(api_calls / active * 60, 1),
        "achieved_of_limit": round(api_calls / active * 60 / sim_per_minute, 3),
        "achieved_of_budget": round(api_calls / active * 60 / args.budget, 3),
        "busiest_minute_calls": busiest,
        "worker_waits": waits,
        "observer_ledger_scans": drained.scans,
        "observer_dynamodb_cpu_seconds": round(per_scan * drained.scans, 2),
        "replay_retries_by_reason": retries,
        "cpu_seconds": cpu,
        "cpu_split": cpu_split(cpu, wall=settled, events=spec.events),
        "baseline_calls_needed": baseline_calls,
        "baseline_ceiling_seconds": round(baseline_calls / sim_per_minute * 60, 1),
        "calls_timeline": [
            {"t": round(t, 2), "calls": n} for t, n in calls[:: max(1, len(calls) // 200)]
        ],
        "timeline": timeline,
    }


def retry_reasons(log: Path) -> dict[str, int]:
    """Failed replay attempts in a worker's log, by the first words of their error."""
    reasons: Counter[str] = Counter()
    with log.open(errors="replace") as lines:
        for line in lines:
            if '"replay attempt failed' not in line:
                continue
            message = str(json.loads(line).get("message", ""))
            reasons[message.removeprefix("replay attempt failed, will retry: ")[:90]] += 1
    return dict(reasons.most_common(10))


def _busiest_minute(calls: list[tuple[float, int]]) -> int | None:
    """Most calls in any 60 s stretch of the samples (None when the run is shorter)."""
    if not calls or calls[-1][0] - calls[0][0] < 60:
        return None
    best, j = 0, 0
    for t, n in calls:
        while calls[j][0] < t - 60:
            j += 1
        best = max(best, n - calls[j][1])
    return best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.budget", description=__doc__.splitlines()[0])
    parser.add_argument("--sim-limit", type=int, default=50, help="simulator calls per window")
    parser.add_argument("--sim-window", type=float, default=10.0, help="simulator window, s")
    parser.add_argument("--budget", type=int, default=290, help="GENESYS_RATE_LIMIT_PER_MINUTE")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--conversations", type=int, default=STANDARD.conversations)
    parser.add_argument("--debounce", type=float, default=5.0, help="tracking debounce, s")
    parser.add_argument("--timeout", type=float, default=400.0)
    parser.add_argument("--quick", action="store_true", help="5 conversations, 10 per 2 s")
    backends.add_option(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    spec = dataclasses.replace(STANDARD, conversations=args.conversations)
    if args.quick:
        spec = QUICK
        args.sim_limit, args.sim_window, args.debounce, args.timeout = 10, 2.0, 0.5, 60.0
    figures = run(args, spec)
    write_results(args.output, figures)
    print(
        f"budget: {spec.events} events over {spec.conversations} conversations; simulator "
        f"{figures['simulator_limit']} ({figures['simulator_limit_per_minute']:.0f}/min), "
        f"budget {figures['budget_per_minute']}/min\n"
        f"  Genesys calls per replayed event: {figures['lookups_per_replayed_event']:.3f} "
        f"lookups + {figures['patches_per_replayed_event']:.3f} PATCHes; "
        f"{figures['genesys_429']} x 429; {figures['genesys_tokens']} token request(s)\n"
        f"  pace: {figures['achieved_calls_per_minute']:.0f} calls/min = "
        f"{figures['achieved_of_limit']:.0%} of the limit\n"
        f"  all final {figures['all_final_seconds']:.1f} s (replay ceiling "
        f"{figures['replay_ceiling_seconds']:.1f} s); tracking settled "
        f"{figures['tracking_settled_seconds']:.1f} s (ceiling {figures['ceiling_seconds']:.1f} s"
        f", x{figures['settled_over_ceiling']})\n"
        f"  CPU, worker spawn -> tracking settled (DynamoDB on "
        f"{figures['dynamodb_backend']['name']}):\n{format_split(figures['cpu_split'])}\n"
        f"  written to {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
