"""Which redelivery worker layout drains fastest: N processes of a pool, side by side.

Mode: filled first (as `bench.drain`'s sweep: the workload written into the ledger and the
broker before the workers start: their drain alone), each layout in turn in one run.

A layout is N `celery -A tasks worker` processes of one pool, written `threads:16x2`
(two 16-thread processes, as `docker compose up --scale worker=2` runs them), or
`threads:16` and `prefork:4` for one process. Each point is `bench.drain.drain_point`:
the standard workload, Genesys at 20 ms and unconstrained, the HTTP sink as the target,
timed from the workers' spawn to every ledger item final. Beside each layout's
throughput: its ratio to the first layout's, its duplicates (ledger items whose history
holds more than one delivery, and target deliveries beyond the events: both must be 0),
and its memory (the workers' peak RSS, main processes and pool children summed).
Prints the figures with the machine's load average before each layout and the cores other
work took during it (`others`: the machine's CPU less this run's; a shared machine's
figures are comparable only where it is near 0), writes bench/results/layout.json.

    .venv/bin/python -m bench.layout       # threads:16, threads:16x2, prefork:4; verify on
    .venv/bin/python -m bench.layout --layouts threads:16,threads:32,threads:16x2
    .venv/bin/python -m bench.layout --quick
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import backends
from bench.common import (
    QUICK,
    RESULTS_DIR,
    STANDARD,
    BenchStack,
    bench_stack,
    machine,
    write_results,
)
from bench.cpu import CLOCK_TICKS, tree_cpu_seconds
from bench.drain import LATENCY_MS, drain_point
from bench.worker import Pool

RESULTS = RESULTS_DIR / "layout.json"
DEFAULT_LAYOUTS = "threads:16,threads:16x2,prefork:4"


@dataclass(frozen=True)
class Layout:
    """`processes` worker processes of one pool: `threads:16x2`, `prefork:4`."""

    pool: Pool
    processes: int = 1

    @classmethod
    def parse(cls, text: str) -> Layout:
        pool, _, count = text.strip().partition("x")
        if count and (not count.isdigit() or int(count) < 1):
            raise ValueError(f"layout {text!r}: the processes are a positive integer, e.g. x2")
        return cls(Pool.parse(pool), int(count or 1))

    @property
    def label(self) -> str:
        return self.pool.label + (f"x{self.processes}" if self.processes > 1 else "")


def layouts_option(text: str) -> list[Layout]:
    """argparse type of a comma-separated layout list: `threads:16,threads:16x2,prefork:4`."""
    try:
        return [Layout.parse(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def replayed_twice(stack: BenchStack, table: str) -> int:
    """Ledger items whose history records more than one delivery."""
    paginator = stack.dynamodb.get_paginator("scan")
    twice = 0
    for page in paginator.paginate(
        TableName=table, ProjectionExpression="#h", ExpressionAttributeNames={"#h": "history"}
    ):
        for item in page.get("Items", []):
            entries = item.get("history", {}).get("L", [])
            deliveries = sum(1 for e in entries if e["M"]["outcome"]["S"] == "replayed")
            twice += deliveries > 1
    return twice


class OtherWork:
    """Cores the rest of the machine kept busy meanwhile: its CPU (/proc/stat) less this run's.

    This run is this process and its descendants (the stand-ins, the workers, reaped or
    not), so what is left is other work the load average would only hint at.
    """

    def __init__(self) -> None:
        self._start = self._now()

    @staticmethod
    def _now() -> tuple[float, float]:
        user, nice, system, _idle, _iowait, irq, softirq = (
            int(x) for x in Path("/proc/stat").read_text().split()[1:8]
        )
        machine = (user + nice + system + irq + softirq) / CLOCK_TICKS
        return time.perf_counter(), machine - tree_cpu_seconds(os.getpid())

    def cores(self) -> float:
        wall, other = self._now()
        return round((other - self._start[1]) / max(wall - self._start[0], 1e-6), 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec = QUICK if args.quick else STANDARD
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    points: list[dict[str, Any]] = []
    with bench_stack("layout", latency_ms=LATENCY_MS, dynamodb=args.dynamodb) as stack:
        for layout in args.layouts:
            load = [round(x, 2) for x in os.getloadavg()]
            other = OtherWork()
            point = drain_point(
                stack, spec, pool=layout.pool, processes=layout.processes, verify=args.verify
            )
            reference = points[0] if points else point
            point.update(
                layout=layout.label,
                load_average_1_5_15_before=load,
                other_work_cores_busy=other.cores(),
                ledger_items_replayed_twice=replayed_twice(stack, point["ledger_table"]),
                target_deliveries_beyond_events=point["sink_posts"] - spec.events,
                throughput_over_first=round(
                    point["events_per_second"] / reference["events_per_second"], 2
                ),
                rss_over_first=round(
                    point["worker_peak_rss_mb"] / reference["worker_peak_rss_mb"], 2
                ),
            )
            print(f"  {_row(point)}", flush=True)
            points.append(point)
        backend = stack.backend.describe()
    return {
        "benchmark": "layout",
        "machine": machine(),
        "load_average_1_5_15_at_start": load_at_start,
        "dynamodb_backend": backend,
        "workload": spec.describe(),
        "simulator_latency_ms": LATENCY_MS,
        "verify_conversation": args.verify,
        "timing": (
            "workers' spawn -> every ledger item final, with the ledger and broker already "
            "filled by the Lambda front door; ratios are to the first layout"
        ),
        "points": points,
    }


def _row(point: dict[str, Any]) -> str:
    return (
        f"{point['layout']:<14} {point['events_per_second']:>8.1f} "
        f"{point['events_per_second_after_first_delivery']:>9.1f} "
        f"{point['throughput_over_first']:>7.2f} "
        f"{point['ledger_items_replayed_twice']:>7} "
        f"{point['target_deliveries_beyond_events']:>8} "
        f"{point['replayed']:>8} "
        f"{point['worker_peak_rss_mb']:>8.0f} {point['rss_over_first']:>5.2f} "
        f"{point['cpu_split']['processes']['worker']['cores_busy']:>8.2f} "
        f"{point['other_work_cores_busy']:>6.2f} "
        f"{'/'.join(str(x) for x in point['load_average_1_5_15_before']):>16}"
    )


def print_table(figures: dict[str, Any]) -> None:
    info = figures["machine"]
    print(
        f"  layouts ({info['nproc']} x {info['cpu_model']}; load at start "
        f"{'/'.join(map(str, figures['load_average_1_5_15_at_start']))}, at end "
        f"{'/'.join(map(str, info['load_average_1_5_15']))}; DynamoDB on "
        f"{figures['dynamodb_backend']['name']}; verify "
        f"{'on' if figures['verify_conversation'] else 'off'}):"
    )
    print(
        f"  {'layout':<14} {'events/s':>8} {'after 1st':>9} {'x first':>7} {'twice':>7} "
        f"{'extra tx':>8} {'replayed':>8} {'RSS MiB':>8} {'x RSS':>5} {'cores':>8} "
        f"{'others':>6} {'load before':>16}"
    )
    for point in figures["points"]:
        print(f"  {_row(point)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.layout", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--layouts",
        "--pools",
        type=layouts_option,
        default=layouts_option(DEFAULT_LAYOUTS),
        help=f"layouts to compare, the first the reference (default {DEFAULT_LAYOUTS}; "
        f"prefork alone: one pool process per core, here {os.cpu_count()})",
    )
    parser.add_argument(
        "--verify", choices=("on", "off"), default="on", help="conversation verification"
    )
    parser.add_argument("--quick", action="store_true", help="21 events per layout")
    backends.add_option(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.verify = args.verify == "on"
    print(f"layout: {(QUICK if args.quick else STANDARD).events} events per layout", flush=True)
    figures = run(args)
    print_table(figures)
    write_results(args.output, figures)
    print(f"  written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
