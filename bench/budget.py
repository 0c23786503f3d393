"""How well a drain spends the Genesys budget: calls per event, 429s, pace, time vs ceiling.

Mode: filled first. The ledger and the broker hold the backlog before the worker starts
(`bench.deployed` measures the poller and the workers together).

The simulator enforces the real per-token limit, 300 calls per 60 s window, as Genesys
counts it (`--sim-limit 50 --sim-window 10` is a stricter shape: the limiter then keeps
a margin of 3 calls per 10 s, 6 %, below the allowance header); the project's budget
GENESYS_RATE_LIMIT_PER_MINUTE is set just under it (290). The ledger and the broker are
filled through the Lambda front door, then the workers the README deploys drain them:
`celery -A tasks worker -Q replay,verify` (16 threads) and `-Q track` (2 threads), so
tracking is not queued behind redeliveries; the clock starts at their spawn. Two drains of the same
workload: verification on (the figures) and off (what redelivery takes when it need not
verify). Two ends are timed in each: every ledger item final (redelivery), and tracking
settled (every conversation PATCHed). Tracking's ceiling is one PATCH per conversation
at the budget. The sink records the order events arrived in, checked against each
conversation's event `time`s. The figures are printed next to issue 13's goals, with a
scale model (`bench.scale`) for a real outage. Drain times on this shared machine vary
by about 10 % from run to run, as much as the on/off goal allows, so the two drains run
`--repeat` times (3 pairs, each pair in the other order than the last) and each drain's
figures are those of its median run; every run's time is kept in the results. Writes
bench/results/budget.json.

    .venv/bin/python -m bench.budget            # 250 conversations, 3 pairs, ~9 minutes
    .venv/bin/python -m bench.budget --verify on --order none
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

from bench import backends, scale
from bench.common import (
    QUICK,
    RESULTS_DIR,
    STANDARD,
    BenchStack,
    WorkloadSpec,
    arrival_order,
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
from devstack.sim_admin import (
    ANALYTICS_DETAILS,
    GET_CONVERSATION,
    PATCH_ATTRIBUTES,
    TOKEN,
    SimStats,
)
from tasks.names import REPLAY_QUEUE, TRACK_QUEUE, VERIFY_QUEUE

RESULTS = RESULTS_DIR / "budget.json"
PENDING_TRACKING = "dlq:track:pending:*"


def drain(
    stack: BenchStack, spec: WorkloadSpec, args: argparse.Namespace, *, verify: bool
) -> dict[str, Any]:
    """Fill the DLQ, ingest it, and time the two workers from spawn to settled."""
    label = "verify-on" if verify else "verify-off"
    sim_per_minute = args.sim_limit * 60 / args.sim_window
    table = stack.fresh_round(label)
    workload = spec.generate()
    # Through the Lambda front door (the same ingest core as the Poller, without moto's
    # SQS, which moves ~15 messages/s): the worker's clock starts after it either way.
    ingested, _ = stack.ingest_direct(table, workload)
    assert ingested["accepted"] == spec.events, ingested
    env = stack.worker_env(
        table,
        GENESYS_RATE_LIMIT_PER_MINUTE=str(args.budget),
        # The simulator's allowance header counts per its shortened window.
        GENESYS_RATE_LIMIT_WINDOW_SECONDS=str(args.sim_window),
        REPLAY_VERIFY_CONVERSATION=str(verify).lower(),
        REPLAY_TRACKING_DEBOUNCE_SECONDS=str(args.debounce),
        REPLAY_ORDER=args.order,
    )
    name = f"worker-{stack.rounds:02d}-{label}"
    wall_start = time.time()
    started = time.perf_counter()
    worker = stack.dev.start_worker(
        concurrency=args.concurrency, env=env, name=name, queues=f"{REPLAY_QUEUE},{VERIFY_QUEUE}"
    )
    tracker = stack.dev.start_worker(
        concurrency=args.tracker_concurrency, env=env, name=f"{name}-tracker", queues=TRACK_QUEUE
    )
    meter = CpuMeter(stack.pids(worker=worker.pid, tracker=tracker.pid)).start()
    calls: list[tuple[float, int]] = []

    def sample() -> None:
        calls.append((time.perf_counter() - started, genesys_calls(stack.dev.admin.stats())))

    try:
        drained = wait_all_final(
            stack, table, expected=spec.events, started=started, timeout=args.timeout, tick=sample
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
        arrivals = stack.sink.arrivals()
        per_scan = scan_cost(stack, table)
    finally:
        stop_child(worker)
        stop_child(tracker)
    log = stack.dev.workdir / f"{name}.log"
    tracker_log = stack.dev.workdir / f"{name}-tracker.log"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(log, args.output.with_name(f"budget-{label}-worker.log"))
    shutil.copy(tracker_log, args.output.with_name(f"budget-{label}-tracker.log"))

    lookups, patches = stats.count(GET_CONVERSATION), stats.count(PATCH_ATTRIBUTES)
    # 0 where the simulator has no analytics multi-get (before batch verification).
    analytics = stats.count(ANALYTICS_DETAILS)
    replayed = drained.final.get("replayed", 0)
    first_call = next((t for t, n in calls if n > 0), 0.0)
    # The pace is measured over the calls themselves, first to last as the simulator
    # timed them (the last is the PATCH that settles tracking), not over this process's
    # polling, which would add up to a poll interval at either end.
    # N calls at a steady pace span N - 1 intervals.
    span = stats.span(GET_CONVERSATION, ANALYTICS_DETAILS, PATCH_ATTRIBUTES)
    api_calls = lookups + analytics + patches
    if span is not None and api_calls > 1:
        pace = (api_calls - 1) / max(span[1] - span[0], 1e-6) * 60
    else:
        pace = api_calls / max(settled - first_call, 1e-6) * 60
    return {
        "label": label,
        "verify_conversation": verify,
        "replay_order": args.order,
        "worker_log": log.name,
        "replayed": replayed,
        "statuses": dict(drained.final),
        "genesys_lookups": lookups,
        "genesys_batch_reads": analytics,
        "genesys_analytics_ids": stats.analytics_ids,
        "genesys_patches": patches,
        "genesys_patches_202": stats.count(PATCH_ATTRIBUTES, 202),
        "genesys_tokens": stats.count(TOKEN),
        "genesys_429": stats.status(429),
        "verification_calls_per_replayed_event": per(lookups + analytics, replayed),
        "patches_per_replayed_event": per(patches, replayed),
        "calls_per_replayed_event": per(api_calls, replayed),
        "patches_per_conversation": per(patches, spec.conversations, 2),
        "first_call_seconds": round(first_call, 2),
        "all_final_seconds": drained.seconds,
        "tracking_settled_seconds": round(settled, 2),
        "achieved_calls_per_minute": round(pace, 1),
        "achieved_of_limit": round(pace / sim_per_minute, 3),
        "achieved_of_budget": round(pace / args.budget, 3),
        "busiest_minute_calls": _busiest_minute(calls),
        "order": arrival_order(arrivals, workload),
        "worker_waits": count_in_log(log, "'waiting'") + count_in_log(tracker_log, "'waiting'"),
        "replay_retries_by_reason": retry_reasons(log),
        "observer_ledger_scans": drained.scans,
        "observer_dynamodb_cpu_seconds": round(per_scan * drained.scans, 2),
        "cpu_seconds": cpu,
        "cpu_split": cpu_split(cpu, wall=settled, events=spec.events),
        "calls_timeline": [
            {"t": round(t, 2), "calls": n} for t, n in calls[:: max(1, len(calls) // 200)]
        ],
        "timeline": log_timeline(log, wall_start=wall_start, expected=spec.events),
    }


def genesys_calls(stats: SimStats) -> int:
    """Calls that spend the budget: conversation reads (single and multi-get) and PATCHes."""
    reads = stats.count(GET_CONVERSATION) + stats.count(ANALYTICS_DETAILS)
    return reads + stats.count(PATCH_ATTRIBUTES)


def run(args: argparse.Namespace, spec: WorkloadSpec) -> dict[str, Any]:
    sim_per_minute = args.sim_limit * 60 / args.sim_window
    runs: dict[str, dict[str, Any]] = {}
    with bench_stack(
        "budget",
        latency_ms=20.0,
        rate_limit=args.sim_limit,
        rate_window=args.sim_window,
        dynamodb=args.dynamodb,
    ) as stack:
        backend = stack.backend.describe()
        repeats: dict[str, list[dict[str, Any]]] = {}
        for pair in range(args.repeat):
            # Pairs alternate which drain goes first, so a drift of the machine's speed
            # over the run weighs on both alike.
            for verify in args.verify if pair % 2 == 0 else args.verify[::-1]:
                point = drain(stack, spec, args, verify=verify)
                repeats.setdefault(point["label"], []).append(point)
                print(_run_line(point), flush=True)
        # Each drain's figures are those of its median run by time to all final.
        for label, points in repeats.items():
            ordered = sorted(points, key=lambda p: p["all_final_seconds"])
            runs[label] = {
                **ordered[(len(ordered) - 1) // 2],
                "all_final_seconds_of_each_run": [p["all_final_seconds"] for p in points],
            }
    # Tracking's own ceiling: one PATCH per conversation, at the budget.
    tracking_ceiling = spec.conversations / args.budget * 60
    figures: dict[str, Any] = {
        "benchmark": "budget",
        "machine": machine(),
        "dynamodb_backend": backend,
        "workload": spec.describe(),
        "simulator_limit": f"{args.sim_limit} per {args.sim_window:g} s",
        "simulator_limit_per_minute": sim_per_minute,
        "budget_per_minute": args.budget,
        "worker_concurrency": args.concurrency,
        "tracker_concurrency": args.tracker_concurrency,
        "tracking_debounce_seconds": args.debounce,
        "replay_order": args.order,
        "repeat": args.repeat,
        "timing": "worker spawn -> all ledger items final / -> every conversation PATCHed; "
        "pace from the first Genesys call to the last (the PATCH that settles tracking), "
        "as the simulator timed them",
        "tracking_ceiling_seconds": round(tracking_ceiling, 1),
        "baseline_calls_needed": spec.conversations * spec.events_per_conversation * 3,
        "runs": runs,
    }
    if "verify-on" in runs:
        on = runs["verify-on"]
        off = runs.get("verify-off")
        figures["headline"] = {
            "redelivery_over_verify_off": (
                round(on["all_final_seconds"] / off["all_final_seconds"], 2) if off else None
            ),
            "tracking_settled_over_ceiling": round(
                on["tracking_settled_seconds"] / tracking_ceiling, 2
            ),
        }
        figures["goals"] = goals(figures)
        figures["scale"] = scale.model(figures)
    return figures


def goals(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 13's figures, each with its goal and whether this run met it."""
    on = figures["runs"]["verify-on"]
    headline = figures["headline"]
    rows = [
        _goal("Genesys calls per replayed event", on["calls_per_replayed_event"], "<=", 0.26),
        _goal(
            "  of which verification (single GETs + analytics)",
            on["verification_calls_per_replayed_event"],
            "<=",
            0.01,
        ),
        _goal("  of which tracking PATCHes", on["patches_per_replayed_event"], None, None),
        _goal(
            "every redelivery done, verify on / verify off",
            headline["redelivery_over_verify_off"],
            "<=",
            1.10,
        ),
        _goal(
            "tracking settled / its ceiling (one PATCH per conversation at the budget)",
            headline["tracking_settled_over_ceiling"],
            "<=",
            1.10,
        ),
        _goal("limit used, first call -> tracking settled", on["achieved_of_limit"], ">=", 0.95),
        _goal(
            "429 answers (every run)",
            sum(run["genesys_429"] for run in figures["runs"].values()),
            "<=",
            0,
        ),
        _goal(
            f"conversations out of `time` order at the target (REPLAY_ORDER={on['replay_order']})",
            on["order"]["conversations_out_of_order"],
            "<=",
            0,
        ),
    ]
    return rows


def _goal(
    figure: str, value: float | None, sense: str | None, goal: float | None
) -> dict[str, Any]:
    met: bool | None = None
    if value is not None and sense is not None and goal is not None:
        met = value <= goal if sense == "<=" else value >= goal
    return {
        "figure": figure,
        "value": value,
        "goal": f"{'≤' if sense == '<=' else '≥'} {goal:g}" if sense and goal is not None else "",
        "met": met,
    }


def _run_line(point: dict[str, Any]) -> str:
    order = point["order"]
    return (
        f"  {point['label']}: all final {point['all_final_seconds']:.1f} s, tracking settled "
        f"{point['tracking_settled_seconds']:.1f} s; {point['genesys_lookups']} single GETs + "
        f"{point['genesys_batch_reads']} analytics + {point['genesys_patches']} PATCHes, "
        f"{point['genesys_429']} x 429; pace {point['achieved_calls_per_minute']:.0f}/min "
        f"({point['achieved_of_limit']:.1%} of the limit); "
        f"{order['conversations_out_of_order']}/{order['conversations']} conversations out "
        f"of order; load {machine()['load_average_1_5_15']}"
    )


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


def format_goals(rows: list[dict[str, Any]]) -> str:
    width = max(len(row["figure"]) for row in rows)
    lines = []
    for row in rows:
        verdict = {True: "met", False: "MISSED", None: ""}[row["met"]]
        value = "n/a" if row["value"] is None else f"{row['value']:g}"
        lines.append(f"  {row['figure']:<{width}}  {value:>8}  {row['goal']:<7} {verdict}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.budget", description=__doc__.splitlines()[0])
    parser.add_argument("--sim-limit", type=int, default=300, help="simulator calls per window")
    parser.add_argument(
        "--sim-window",
        type=float,
        default=60.0,
        help="simulator window, s (Genesys counts a minute)",
    )
    parser.add_argument("--budget", type=int, default=290, help="GENESYS_RATE_LIMIT_PER_MINUTE")
    parser.add_argument("--concurrency", type=int, default=16, help="redelivery worker threads")
    parser.add_argument(
        "--tracker-concurrency", type=int, default=2, help="tracking worker threads"
    )
    parser.add_argument("--conversations", type=int, default=STANDARD.conversations)
    parser.add_argument("--debounce", type=float, default=5.0, help="tracking debounce, s")
    parser.add_argument(
        "--order", choices=("conversation", "none"), default="conversation", help="REPLAY_ORDER"
    )
    parser.add_argument(
        "--verify",
        type=_on_off,
        nargs="+",
        default=[True, False],
        help="drains to run: on and/or off (the comparison needs both)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="pairs of drains; each drain's figures are its median run's (drain times on "
        "this shared machine vary by about 10 %% from run to run)",
    )
    parser.add_argument("--timeout", type=float, default=400.0)
    parser.add_argument("--quick", action="store_true", help="5 conversations, 10 per 2 s")
    backends.add_option(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    spec = dataclasses.replace(STANDARD, conversations=args.conversations)
    if args.quick:
        spec = QUICK
        args.sim_limit, args.sim_window, args.debounce, args.timeout = 10, 2.0, 0.5, 60.0
        args.repeat = 1
    print(
        f"budget: {spec.events} events over {spec.conversations} conversations; simulator "
        f"{args.sim_limit} per {args.sim_window:g} s, budget {args.budget}/min, "
        f"REPLAY_ORDER={args.order}",
        flush=True,
    )
    figures = run(args, spec)
    write_results(args.output, figures)
    for point in figures["runs"].values():
        print(
            f"  CPU of {point['label']}, worker spawn -> tracking settled (DynamoDB on "
            f"{figures['dynamodb_backend']['name']}):\n{format_split(point['cpu_split'])}"
        )
    if "goals" in figures:
        load = figures["machine"]["load_average_1_5_15"]
        print(f"  figures against issue 13's goals (load average {load}):")
        print(format_goals(figures["goals"]))
        print(scale.format_model(figures["scale"]))
    print(f"  written to {args.output}")
    return 0


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError("on or off")
    return value == "on"


if __name__ == "__main__":
    sys.exit(main())
