"""How fast a full DLQ drains with Genesys unconstrained, by worker pool and concurrency.

Mode: filled first for the sweep (the workload written into the ledger and the broker
before each worker starts: the worker's drain alone); the pipeline point runs the poller
on a full DLQ while one worker runs, as `bench.deployed` does with both of the README's
workers and Genesys at its real budget.

Against the real local stack (redis-server, moto's server for SQS, DynamoDB on dynalite
where node is present, else on moto: see bench.backends; the Genesys simulator at 20 ms
latency and no effective rate limit) and an HTTP sink as the target (an API destination
in REPLAY_HTTP_TARGETS). For each point: ingest the workload through the Lambda front
door (the ledger and the broker are then full; moto's SQS stays out of the sweep), start
`celery -A tasks worker` (thread pool at each --concurrency, or each pool of --pools)
and time from the worker's spawn to every ledger item final, with the CPU of every
process of the run. Swept with conversation verification on and off. In the same run,
unless --sweep-only: the whole pipeline (worker running, the Poller started on a full
DLQ, timed to all-final), the tutorial-style sequential baseline (bench.baseline) and
the per-event cost (bench.cost).
Prints the figures, writes bench/results/drain.json and bench/results/drain.png.

    .venv/bin/python -m bench.drain            # 1,010 events, threads 1, 4, 16, 64
    .venv/bin/python -m bench.drain --sweep-only --verify on --pools threads:16,prefork
    .venv/bin/python -m bench.drain --quick    # 21 events, one point, verification on
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import backends, baseline, cost
from bench.common import (
    QUICK,
    RESULTS_DIR,
    STANDARD,
    BenchStack,
    Drained,
    WorkloadSpec,
    bench_stack,
    calls_between,
    count_in_log,
    log_timeline,
    machine,
    per,
    redis_calls,
    scan_cost,
    stop_child,
    wait_all_final,
    write_results,
)
from bench.cpu import CpuMeter, cpu_split, format_split, peak_rss_mb, tree_cpu_seconds
from bench.worker import Pool, Worker, pools_option, start_worker, wait_ready
from devstack.sim_admin import ANALYTICS_DETAILS, GET_CONVERSATION, PATCH_ATTRIBUTES, TOKEN

RESULTS = RESULTS_DIR / "drain.json"
CHART = RESULTS_DIR / "drain.png"
LATENCY_MS = 20.0


def drain_point(
    stack: BenchStack,
    spec: WorkloadSpec,
    *,
    pool: Pool,
    verify: bool,
    processes: int = 1,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Ingest a full DLQ, then time `processes` workers of `pool` from spawn to every item final.

    Several processes are one layout (each a `celery worker` of its own, as `docker compose
    up --scale worker=N` runs them): their CPU, peak RSS and waits are summed, their logs
    read as one timeline.
    """
    layout = f"{pool.kind}{pool.concurrency}" + (f"x{processes}" if processes > 1 else "")
    label = f"{layout}-{'verify' if verify else 'noverify'}"
    table = stack.fresh_round(label)
    ingested, ingest_seconds = stack.ingest_direct(table, spec.generate())
    assert ingested["accepted"] == spec.events, ingested

    env = stack.worker_env(table, REPLAY_VERIFY_CONVERSATION=str(verify).lower())
    commands_before = redis_calls(stack.redis)
    wall_start = time.time()
    started = time.perf_counter()
    name = f"worker-{stack.rounds:02d}-{label}"
    workers = [
        start_worker(stack.dev, pool, env, name=name if processes == 1 else f"{name}-{n + 1}")
        for n in range(processes)
    ]
    meter = CpuMeter(stack.pids(**_worker_pids(workers))).start()
    first: dict[str, float] = {}

    def workers_cpu() -> float:
        return sum(tree_cpu_seconds(worker.pid) for worker in workers)

    def note_first_delivery() -> None:
        if not first and stack.sink.counts()["posts"]:
            first["t"] = time.perf_counter() - started
            first["worker_cpu"] = workers_cpu()

    try:
        drained = wait_all_final(
            stack,
            table,
            expected=spec.events,
            started=started,
            timeout=timeout,
            tick=note_first_delivery,
        )
        cpu = _one_worker(meter.stop())
        worker_cpu_total = workers_cpu()
        per_scan = scan_cost(stack, table)
        rss = round(sum(peak_rss_mb(w.pid, include_children=True) for w in workers), 1)
        commands = calls_between(commands_before, redis_calls(stack.redis))
        genesys = stack.dev.admin.stats()
        sink = stack.sink.counts()
    finally:
        for worker in workers:
            stop_child(worker.process)
    waits = sum(count_in_log(worker.log, "'waiting'") for worker in workers)
    log = workers[0].log if processes == 1 else _joined_log(workers, f"{name}-all")
    timeline = log_timeline(log, wall_start=wall_start, expected=spec.events)

    replayed = drained.final.get("replayed", 0)
    first_delivery = round(sink["first"] - wall_start, 3) if sink["first"] else drained.seconds
    steady = max(drained.seconds - first_delivery, 1e-6)
    steady_cpu = worker_cpu_total - first.get("worker_cpu", 0.0)
    return {
        "label": label,
        "pool": pool.kind,
        "concurrency": pool.concurrency,
        "processes": processes,
        "verify_conversation": verify,
        "dynamodb_backend": stack.backend.name,
        "ledger_table": table,
        "events": spec.events,
        "setup_ingest_seconds": round(ingest_seconds, 2),
        "drain_seconds": drained.seconds,
        "first_delivery_seconds": first_delivery,
        "events_per_second": round(spec.events / drained.seconds, 1),
        "events_per_second_after_first_delivery": round(spec.events / steady, 1),
        "statuses": dict(drained.final),
        "replayed": replayed,
        "sink_posts": sink["posts"],
        "sink_distinct_events": sink["distinct"],
        "worker_log": log.name,
        "worker_waits": waits,
        "genesys_lookups": genesys.count(GET_CONVERSATION),
        "genesys_batch_reads": genesys.count(ANALYTICS_DETAILS),
        "genesys_patches_by_all_final": genesys.count(PATCH_ATTRIBUTES),
        "genesys_tokens": genesys.count(TOKEN),
        "genesys_429": genesys.status(429),
        "redis_commands": sum(commands.values()),
        "redis_commands_per_event": per(sum(commands.values()), spec.events, 1),
        "redis_top_commands": dict(list(commands.items())[:8]),
        "worker_cpu_seconds": round(worker_cpu_total, 3),
        "worker_cpu_ms_per_event": per(worker_cpu_total * 1000, spec.events, 2),
        "worker_cpu_ms_per_event_after_first_delivery": per(steady_cpu * 1000, spec.events, 2),
        "worker_peak_rss_mb": rss,
        # CPU and time after the first delivery: the worker's start-up counts in neither.
        "ceiling": cost.ceiling(
            per(steady_cpu * 1000, spec.events, 2), events=spec.events, seconds=steady
        ),
        "cpu_seconds": cpu,
        "cpu_split": cpu_split(cpu, wall=drained.seconds, events=spec.events),
        "observer_ledger_scans": drained.scans,
        "observer_dynamodb_cpu_seconds": round(per_scan * drained.scans, 2),
        "timeline": timeline,
    }


def _worker_pids(workers: Sequence[Worker]) -> dict[str, int]:
    """The workers' pids by CpuMeter name: `worker`, or `worker-1`, `worker-2`..."""
    if len(workers) == 1:
        return {"worker": workers[0].pid}
    return {f"worker-{n + 1}": worker.pid for n, worker in enumerate(workers)}


def _one_worker(cpu: dict[str, float]) -> dict[str, float]:
    """`cpu` with the workers' seconds summed under `worker`, as one process's are."""
    workers = sum(seconds for name, seconds in cpu.items() if name.startswith("worker"))
    rest = {name: seconds for name, seconds in cpu.items() if not name.startswith("worker")}
    return {"worker": round(workers, 3), **rest}


def _joined_log(workers: Sequence[Worker], name: str) -> Path:
    """The workers' logs in one file, for `log_timeline` (which sorts its lines by time)."""
    joined = workers[0].log.with_name(f"{name}.log")
    with joined.open("w") as out:
        for worker in workers:
            if worker.log.exists():
                out.write(worker.log.read_text(errors="replace"))
    return joined


def pipeline_point(
    stack: BenchStack, spec: WorkloadSpec, *, concurrency: int, timeout: float = 600.0
) -> dict[str, Any]:
    """The whole pipeline: a running worker, then the poller on a full DLQ, to all-final."""
    table = stack.fresh_round(f"pipeline-c{concurrency}")
    workload = spec.generate()
    fill_seconds = stack.fill_dlq(workload)
    env = stack.worker_env(table, REPLAY_VERIFY_CONVERSATION="true")
    pool = Pool("threads", concurrency)
    worker = start_worker(stack.dev, pool, env, name=f"worker-{stack.rounds:02d}-pipeline")
    try:
        wait_ready(worker)
        commands_before = redis_calls(stack.redis)
        meter = CpuMeter(stack.pids(worker=worker.pid)).start()
        wall_start = time.time()
        started = time.perf_counter()
        poll_result: dict[str, Any] = {}

        def poll() -> None:
            counts, seconds = stack.poll_dlq(table)
            poll_result.update(counts=counts, seconds=seconds)

        poller = threading.Thread(target=poll, name="bench-poller")
        poller.start()
        drained: Drained = wait_all_final(
            stack, table, expected=spec.events, started=started, timeout=timeout
        )
        poller.join()
        cpu = meter.stop()
        rss = peak_rss_mb(worker.pid, include_children=True)
        commands = calls_between(commands_before, redis_calls(stack.redis))
        genesys = stack.dev.admin.stats()
        sink = stack.sink.counts()
    finally:
        stop_child(worker.process)
    return {
        "label": f"pipeline-c{concurrency}",
        "pool": pool.kind,
        "concurrency": concurrency,
        "verify_conversation": True,
        "events": spec.events,
        "setup_fill_seconds": round(fill_seconds, 2),
        "poller_seconds": round(poll_result["seconds"], 2),
        "poller_counts": poll_result["counts"],
        "drain_seconds": drained.seconds,
        "events_per_second": round(spec.events / drained.seconds, 1),
        "statuses": dict(drained.final),
        "sink_posts": sink["posts"],
        "genesys_lookups": genesys.count(GET_CONVERSATION),
        "genesys_batch_reads": genesys.count(ANALYTICS_DETAILS),
        "genesys_patches_by_all_final": genesys.count(PATCH_ATTRIBUTES),
        "redis_commands_per_event": per(sum(commands.values()), spec.events, 1),
        "worker_peak_rss_mb": rss,
        "cpu_seconds": cpu,
        "cpu_split": cpu_split(cpu, wall=drained.seconds, events=spec.events),
        "timeline": log_timeline(worker.log, wall_start=wall_start, expected=spec.events),
    }


def chart(points: list[dict[str, Any]], path: Path) -> None:
    """Events by ledger status over time, one panel per run given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = ["pending", "replayed", "failed", "exhausted", "attempts_failed", "waits"]
    fig, axes = plt.subplots(1, len(points), figsize=(6 * len(points), 4), squeeze=False)
    for axis, point in zip(axes[0], points, strict=True):
        times = [entry["t"] for entry in point["timeline"]]
        for name in series:
            values = [entry.get(name, 0) for entry in point["timeline"]]
            if any(values):
                style = "--" if name in ("attempts_failed", "waits") else "-"
                axis.plot(times, values, style, label=name)
        axis.set_title(f"{point['label']}: {point['events']} events")
        axis.set_xlabel("seconds since start (worker log)")
        axis.set_ylabel("events (dashed: cumulative retries, waits)")
        axis.grid(True, alpha=0.3)
        axis.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec = QUICK if args.quick else STANDARD
    pools: list[Pool] = args.pools or [Pool("threads", c) for c in args.concurrency]
    sweep: list[dict[str, Any]] = []
    with bench_stack("drain", latency_ms=LATENCY_MS, dynamodb=args.dynamodb) as stack:
        for verify in args.verify:
            for pool in pools:
                point = drain_point(stack, spec, pool=pool, verify=verify)
                _print_point(point)
                sweep.append(point)
        _print_comparison(sweep, stack.backend.name)
        figures: dict[str, Any] = {
            "benchmark": "drain",
            "machine": machine(),
            "dynamodb_backend": stack.backend.describe(),
            "workload": spec.describe(),
            "simulator_latency_ms": LATENCY_MS,
            "timing": (
                "sweep: worker spawn -> every ledger item final, with the ledger and broker "
                "already filled by the Lambda front door; pipeline: poller start on a full "
                "DLQ with the worker already running -> every ledger item final"
            ),
            "sweep": sweep,
        }
        if args.sweep_only:
            chart(sweep[:1], args.chart)
            return figures
        pipeline = pipeline_point(stack, spec, concurrency=args.pipeline_concurrency)
        print(
            f"  pipeline c={pipeline['concurrency']}: {pipeline['events_per_second']:.1f} "
            f"events/s DLQ full -> all final ({pipeline['drain_seconds']:.1f} s)\n"
            f"{format_split(pipeline['cpu_split'])}"
        )
        base = baseline.run_baseline(stack, spec)
        print(
            f"  baseline (sequential): {base['events_per_second']:.1f} events/s, "
            f"{base['genesys_calls_per_event']:.2f} Genesys calls/event"
        )
        costs = cost.measure(
            stack,
            spec,
            pool=Pool("threads", args.pipeline_concurrency),
            debounce=args.debounce,
        )
        cost.print_cost(costs)
    # Measured, not ideal: lookups plus the PATCHes made by the time every item was final
    # (tracking may add a few after; bench.budget counts until it settles).
    project_calls = per(
        pipeline["genesys_lookups"]
        + pipeline["genesys_batch_reads"]
        + pipeline["genesys_patches_by_all_final"],
        spec.events,
        3,
    )
    figures.update(
        pipeline=pipeline,
        baseline=base,
        cost=costs,
        ratios={
            "throughput_pipeline_over_baseline": round(
                pipeline["events_per_second"] / base["events_per_second"], 2
            ),
            "genesys_calls_per_event_project": project_calls,
            "genesys_calls_per_event_baseline": base["genesys_calls_per_event"],
            "genesys_calls_baseline_over_project": round(
                base["genesys_calls_per_event"] / project_calls, 2
            )
            if project_calls
            else None,
        },
    )
    headline = next(
        (
            p
            for p in sweep
            if p["pool"] == "threads"
            and p["concurrency"] == args.pipeline_concurrency
            and p["verify_conversation"]
        ),
        sweep[0],
    )
    chart([headline, pipeline], args.chart)
    return figures


def _print_point(point: dict[str, Any]) -> None:
    print(
        f"  {point['pool']}:{point['concurrency']:<3} "
        f"verify={'on ' if point['verify_conversation'] else 'off'}"
        f" {point['events_per_second']:7.1f} ev/s spawn->final ({point['drain_seconds']:.1f} s;"
        f" {point['events_per_second_after_first_delivery']:.1f} ev/s after first delivery)"
        f"  worker {point['worker_cpu_ms_per_event']:.1f} CPU ms/event,"
        f" rss {point['worker_peak_rss_mb']:.0f} MiB, {point['worker_waits']} waits\n"
        f"{format_split(point['cpu_split'])}",
        flush=True,
    )


def _print_comparison(sweep: list[dict[str, Any]], backend: str) -> None:
    """One line per point: throughput, the worker's CPU per event, who was busy."""
    print(f"  comparison (DynamoDB on {backend}):")
    print(
        f"    {'pool':<12} {'verify':<6} {'events/s':>8} {'after 1st':>9} "
        f"{'worker ms/ev':>12} {'worker cores':>12} {'DynamoDB cores':>14} "
        f"{'ceiling ev/s':>12} {'of ceiling':>10}"
    )
    for point in sweep:
        processes = point["cpu_split"]["processes"]
        server = processes.get("dynalite") or processes["moto"]
        print(
            f"    {point['pool'] + ':' + str(point['concurrency']):<12} "
            f"{'on' if point['verify_conversation'] else 'off':<6} "
            f"{point['events_per_second']:>8.1f} "
            f"{point['events_per_second_after_first_delivery']:>9.1f} "
            f"{point['worker_cpu_ms_per_event']:>12.2f} "
            f"{processes['worker']['cores_busy']:>12.2f} {server['cores_busy']:>14.2f} "
            f"{point['ceiling']['events_per_second']:>12.1f} "
            f"{point['ceiling']['achieved_of_ceiling']:>10.0%}",
            flush=True,
        )


def _on_off(value: str) -> bool:
    if value not in ("on", "off"):
        raise argparse.ArgumentTypeError("on or off")
    return value == "on"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.drain", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 4, 16, 64], help="thread pool sizes"
    )
    parser.add_argument(
        "--pools",
        type=pools_option,
        default=None,
        help="worker pools to compare instead of --concurrency, e.g. threads:16,prefork:2 "
        f"(prefork alone: one process per core, here {os.cpu_count()})",
    )
    parser.add_argument("--pipeline-concurrency", type=int, default=16)
    parser.add_argument(
        "--verify", type=_on_off, nargs="+", default=[True, False], help="on and/or off"
    )
    parser.add_argument(
        "--debounce", type=float, default=5.0, help="tracking debounce of the cost run, s"
    )
    parser.add_argument(
        "--sweep-only", action="store_true", help="no pipeline, baseline or cost run"
    )
    parser.add_argument(
        "--quick", action="store_true", help="21 events, concurrency 4, verification on"
    )
    backends.add_option(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--chart", type=Path, default=CHART)
    args = parser.parse_args(argv)
    if args.quick:
        args.concurrency, args.pipeline_concurrency, args.verify = [4], 4, [True]
        args.debounce = 0.5
    print(f"drain: {(QUICK if args.quick else STANDARD).events} events per point", flush=True)
    figures = run(args)
    write_results(args.output, figures)
    if ratios := figures.get("ratios"):
        print(
            f"  pipeline/baseline throughput x{ratios['throughput_pipeline_over_baseline']}, "
            f"Genesys calls/event {ratios['genesys_calls_per_event_project']} vs "
            f"{ratios['genesys_calls_per_event_baseline']}"
        )
    print(f"  written to {args.output} and {args.chart}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
