"""The standard benchmark suite (`make bench`): each benchmark in its own process, then a summary.

.venv/bin/python -m bench                    # limiter, ingest, drain, budget, deployed, growth
                                             # (~25 min)
.venv/bin/python -m bench --quick            # the same, tiny workloads
.venv/bin/python -m bench --only drain budget
.venv/bin/python -m bench --dynamodb moto    # DynamoDB on moto (default auto: dynalite if node)
.venv/bin/python -m bench drain --pools threads:16,prefork   # one benchmark, its own options
.venv/bin/python -m bench layout             # worker layouts side by side (bench.layout)
.venv/bin/python -m bench against HEAD~1 -- bench.deployed   # one benchmark, this checkout
                                             # against a commit's code, in pairs (bench.against)
.venv/bin/python -m bench --report           # the suite, then its figures into docs/performance.md,
                                             # README.md's table and bench/summary.json
.venv/bin/python -m bench report             # only the render, from bench/results/*.json
                                             # (else from the committed bench/summary.json)
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import backends
from bench.common import RESULTS_DIR, machine

SUITE = ("limiter", "ingest", "drain", "budget", "deployed", "growth")
#: Every benchmark `python -m bench NAME ...` runs on its own, with its own options.
BENCHMARKS = (
    *SUITE,
    *("cost", "floor", "baseline", "scale", "outage", "layout", "against", "report"),
)


def run_one(name: str, *, quick: bool, results: Path, dynamodb: str) -> tuple[int, float]:
    """Run `python -m bench.<name>`; answers its exit status and wall time."""
    argv = [sys.executable, "-m", f"bench.{name}", "--output", str(results / f"{name}.json")]
    if name == "drain":
        argv += ["--chart", str(results / "drain.png")]
    if name != "limiter":  # the limiter's stack has no DynamoDB
        argv += ["--dynamodb", dynamodb]
    if quick:
        argv.append("--quick")
    started = time.perf_counter()
    status = subprocess.run(argv, check=False).returncode
    return status, time.perf_counter() - started


def summary(results: Path) -> list[tuple[str, str]]:
    """(figure, value) rows from whatever JSON the suite wrote."""
    rows: list[tuple[str, str]] = []

    def load(name: str) -> dict[str, Any] | None:
        path = results / f"{name}.json"
        return dict(json.loads(path.read_text())) if path.exists() else None

    for name in ("drain", "budget", "ingest"):
        if (figures := load(name)) and (backend := figures.get("dynamodb_backend")):
            where = backend["name"] + (f" {backend['version']}" if backend.get("version") else "")
            if backend.get("fallback"):
                where += f" (FALLBACK: dynalite unavailable: {backend['reason']})"
            rows.append((f"DynamoDB backend ({name})", where))
    if limiter := load("limiter"):
        for name, run in limiter["scenarios"].items():
            rows.append(
                (
                    f"limiter {name}: achieved / server limit",
                    f"{run['achieved_per_minute']:.0f}/min of {run['server_limit_per_minute']:.0f}"
                    f"/min ({run['achieved_of_server_limit']:.1%}), paced at "
                    f"{run['paced_per_minute']:.0f}, {run['simulator_429']} x 429",
                )
            )
    if ingest := load("ingest"):
        for run in ingest["runs"]:
            rows.append((f"ingest: {run['front_door']}", f"{run['messages_per_second']:.0f} msg/s"))
    if drain := load("drain"):
        for point in drain["sweep"]:
            verify = "on" if point["verify_conversation"] else "off"
            worker = point["cpu_split"]["processes"]["worker"]
            rows.append(
                (
                    f"drain {point['pool']}:{point['concurrency']} verify {verify}",
                    f"{point['events_per_second']:.1f} ev/s spawn->final, "
                    f"{point['events_per_second_after_first_delivery']:.1f} after first "
                    f"delivery; worker {point['worker_cpu_ms_per_event']} CPU ms/event, "
                    f"{worker['cores_busy']:.2f} cores busy",
                )
            )
        if "pipeline" in drain:
            rows += _drain_extras(drain)
    if (budget := load("budget")) and "goals" in budget:
        for goal in budget["goals"]:
            verdict = {True: "met", False: "MISSED", None: ""}[goal["met"]]
            value = f"{goal['value']} {goal['goal']} {verdict}"
            rows.append((f"budget: {goal['figure'].strip()}", value))
    return rows


def _drain_extras(drain: dict[str, Any]) -> list[tuple[str, str]]:
    """The rows of a full drain run: pipeline, baseline, ratios, cost per event."""
    pipeline, base, ratios, cost = (
        drain["pipeline"],
        drain["baseline"],
        drain["ratios"],
        drain["cost"],
    )
    rows = [
        (
            f"pipeline c={pipeline['concurrency']} (poller + worker)",
            f"{pipeline['events_per_second']:.1f} ev/s",
        ),
        ("baseline (sequential tutorial)", f"{base['events_per_second']:.1f} ev/s"),
        ("throughput pipeline / baseline", f"x{ratios['throughput_pipeline_over_baseline']}"),
        (
            "Genesys calls per event project / baseline",
            f"{ratios['genesys_calls_per_event_project']} / "
            f"{ratios['genesys_calls_per_event_baseline']}",
        ),
        (
            "DynamoDB requests per event (ingest + worker)",
            f"{cost['ingest']['dynamodb_per_event']} + {cost['worker']['dynamodb_per_event']}",
        ),
        (
            "Redis commands per event (ingest + worker)",
            f"{cost['ingest']['redis_commands_per_event']} + "
            f"{cost['worker']['redis_commands_per_event']}",
        ),
        (
            f"worker CPU per event ({cost['pool']}:{cost['concurrency']}, until settled)",
            f"{cost['worker']['cpu_ms_per_event']} ms",
        ),
        ("worker ceiling (cores x 1000 / CPU ms)", cost["ceiling"]["line"]),
    ]
    headline = next(
        (
            p
            for p in drain["sweep"]
            if p["pool"] == "threads" and p["concurrency"] == 16 and p["verify_conversation"]
        ),
        drain["sweep"][0],
    )
    rows.append(
        (
            f"worker CPU per event, peak RSS ({headline['pool']}:{headline['concurrency']})",
            f"{headline['worker_cpu_ms_per_event_after_first_delivery']} ms after first "
            f"delivery, {headline['worker_peak_rss_mb']:.0f} MiB",
        )
    )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in BENCHMARKS:
        module = importlib.import_module(f"bench.{argv[0]}")
        status: int = module.main(argv[1:])
        return status
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny workloads")
    parser.add_argument("--only", nargs="+", choices=SUITE, default=list(SUITE))
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--report", action="store_true", help="render the figures into docs/performance.md"
    )
    backends.add_option(parser)
    args = parser.parse_args(argv)
    if args.quick and args.report:
        parser.error("--report renders the standard workload's figures: not with --quick")
    args.results.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    for name in args.only:
        print(f"== bench.{name}", flush=True)
        status, seconds = run_one(
            name, quick=args.quick, results=args.results, dynamodb=args.dynamodb
        )
        print(f"== bench.{name}: exit {status} after {seconds:.0f} s", flush=True)
        if status != 0:
            failed.append(name)
    info = machine()
    print(
        f"\nSummary ({info['nproc']} x {info['cpu_model']}, {info['memory_gib']} GiB, "
        f"Python {info['python']})"
    )
    rows = summary(args.results)
    width = max((len(figure) for figure, _ in rows), default=0)
    for figure, value in rows:
        print(f"  {figure:<{width}}  {value}")
    if args.report and not failed:
        from bench import report

        report.write(args.results, report.DOC, readme=report.README, summary=report.SUMMARY)
        print(f"figures rendered into {report.DOC}, {report.README} and {report.SUMMARY}")
    if failed:
        print(f"failed: {', '.join(failed)}; docs/performance.md left as it was")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
