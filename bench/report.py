"""Render the benchmarks' figures from bench/results/*.json into docs/performance.md.

Only the text between the marker comments is replaced; the prose around it is kept (in
docs/performance.md, and the table of README.md's Performance section). Each table is
stamped with when and where it was measured (date, machine, load average, DynamoDB
backend), read from its own JSON. A render also writes `bench/summary.json`, committed:
each benchmark's figures (its bulky series left out), so a checkout without
`bench/results/` re-renders the same tables; a benchmark in neither is named as not
measured, never filled from an older render.

    .venv/bin/python -m bench.report                 # after `python -m bench` or one benchmark
    .venv/bin/python -m bench --report               # run the suite, then render
    .venv/bin/python -m bench.report --results DIR --doc PATH
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import scale
from bench.common import RESULTS_DIR

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
README = ROOT / "README.md"
SUMMARY = Path(__file__).resolve().parent / "summary.json"
START = "<!-- bench:figures:start -->"
END = "<!-- bench:figures:end -->"
README_START = "<!-- bench:readme:start -->"
README_END = "<!-- bench:readme:end -->"
#: Series too long for the committed summary (no section renders them).
BULKY = (
    "timeline",
    "samples",
    "arrivals",
    "series",
    "per_second",
    "cpu_ms_rounds",
    "wall_ms_rounds",
)
#: Issue 14's goals for the worker's cost per event (standard workload, dynalite).
COST_GOALS = {
    "cpu_ms_per_event": 5.0,
    "dynamodb_per_event": 2.0,
    "redis_commands_per_event": 15.0,
    "tracking_runs_per_conversation": 1.1,
}

Figures = Mapping[str, Any]


def load(results: Path, summary: Path | None = None) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Every `<name>.json` in `results`, by name, with its path; a benchmark that has none
    there comes from `summary` (the committed figures of the last full run)."""
    found: dict[str, tuple[Path, dict[str, Any]]] = {}
    if summary is not None and summary.exists():
        for name, figures in json.loads(summary.read_text()).items():
            found[name] = (summary, figures)
    if results.is_dir():
        for path in sorted(results.glob("*.json")):
            found[path.stem] = (path, json.loads(path.read_text()))
    return found


def summarize(found: Mapping[str, tuple[Path, Mapping[str, Any]]]) -> dict[str, Any]:
    """The figures to commit: every benchmark's, its bulky series left out."""
    return {
        name: _stamped(path, _pruned(figures)) for name, (path, figures) in sorted(found.items())
    }


def _stamped(path: Path, figures: dict[str, Any]) -> dict[str, Any]:
    """`figures` with the time they were measured, as `stamp` read it (an old result that
    does not say when keeps its file's time, not the summary's)."""
    machine = dict(figures.get("machine") or {})
    if not machine.get("measured_at"):
        measured = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
        figures = {**figures, "machine": {**machine, "measured_at": measured}}
    return figures


def _pruned(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _pruned(v) for k, v in value.items() if k not in BULKY}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def stamp(path: Path, figures: Figures) -> str:
    """When, on what, how busy, and which DynamoDB server: one line under each heading."""
    info = figures.get("machine") or {}
    measured = info.get("measured_at") or datetime.fromtimestamp(  # an old result's file time
        path.stat().st_mtime, UTC
    ).isoformat(timespec="seconds")
    parts = [f"Measured {measured.replace('T', ' ').replace('+00:00', ' UTC')}"]
    if info:
        parts.append(
            f"{info.get('nproc')} x {info.get('cpu_model')}, {info.get('memory_gib')} GiB, "
            f"Python {info.get('python')}"
        )
        if load := info.get("load_average_1_5_15"):
            parts.append(f"load average {' / '.join(f'{x:g}' for x in load)} (1/5/15 min, at end)")
    backend = figures.get("dynamodb_backend")
    if isinstance(backend, Mapping):
        version = f" {backend['version']}" if backend.get("version") else ""
        where = str(backend.get("name", "?")) + version
        if backend.get("fallback"):
            where += f" (fallback: {backend.get('reason')})"
        parts.append(f"DynamoDB on {where}")
    elif isinstance(backend, str):
        parts.append(f"DynamoDB on {backend}")
    source = "bench/summary.json" if path.name == SUMMARY.name else f"bench/results/{path.name}"
    return "_" + "; ".join(parts) + f"; from `{source}`._"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        digits = 3 if abs(value) < 10 else 2
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: ""}[met]


# --- sections ----------------------------------------------------------------------------


def budget_section(path: Path, figures: Figures) -> str:
    runs = figures["runs"]
    parts = [
        "### Genesys budget, ordering and verification (`bench.budget`, issue 13)",
        stamp(path, figures),
        f"{figures['workload']['events']:,} events over {figures['workload']['conversations']} "
        f"conversations; simulator {figures['simulator_limit']} "
        f"({figures['simulator_limit_per_minute']:.0f}/min); budget "
        f"`GENESYS_RATE_LIMIT_PER_MINUTE={figures['budget_per_minute']}`; "
        f"{_budget_workers(figures)}; tracking debounce "
        f"{figures['tracking_debounce_seconds']:g} s; `REPLAY_ORDER={figures['replay_order']}`. "
        f"Clock: {figures['timing']}.",
    ]
    if goals := figures.get("goals"):
        parts.append(
            table(
                ("figure", "measured", "goal", ""),
                [(g["figure"].strip(), g["value"], g["goal"], _verdict(g["met"])) for g in goals],
            )
        )
    parts.append(
        table(
            (
                "drain",
                "every redelivery done",
                "tracking settled",
                "single GETs",
                "analytics calls",
                "PATCHes",
                "429",
                "calls/min (of the limit)",
                "conversations out of order",
            ),
            [
                (
                    run["label"],
                    f"{run['all_final_seconds']:.1f} s",
                    f"{run['tracking_settled_seconds']:.1f} s",
                    run["genesys_lookups"],
                    run["genesys_batch_reads"],
                    run["genesys_patches"],
                    run["genesys_429"],
                    f"{run['achieved_calls_per_minute']:.0f} ({run['achieved_of_limit']:.1%})",
                    f"{run['order']['conversations_out_of_order']} of "
                    f"{run['order']['conversations']}",
                )
                for run in runs.values()
            ],
        )
    )
    if figures.get("repeat", 1) > 1:
        each = "; ".join(
            f"{run['label']} "
            + ", ".join(f"{t:.1f}" for t in run.get("all_final_seconds_of_each_run", []))
            + " s"
            for run in runs.values()
        )
        parts.append(
            f"{figures['repeat']} pairs of drains, each pair in the other order than the last; "
            f"each drain's row and figures are its median run by time to all final. Every "
            f"run's time to all final: {each}."
        )
    parts.append(
        f"Tracking's ceiling: {figures['workload']['conversations']} PATCHes at "
        f"{figures['budget_per_minute']}/min = {figures['tracking_ceiling_seconds']:g} s. "
        f"The tutorial loop would need {figures['baseline_calls_needed']:,} calls "
        "(GET + 2 PATCH per conversation event)."
    )
    return "\n\n".join(parts)


def _budget_workers(figures: Mapping[str, Any]) -> str:
    threads = figures["worker_concurrency"]
    if tracker := figures.get("tracker_concurrency"):
        return (
            f"a redelivery worker (`-Q replay,verify`, {threads} threads) and a tracking "
            f"worker (`-Q track`, {tracker} threads), as the README deploys them"
        )
    return f"one worker, {threads} threads on every queue"


def scale_section(path: Path, figures: Figures) -> str:
    scaled = figures.get("scale") or scale.model(figures)
    inputs = scaled["inputs"]
    parts = [
        f"### Scale model: {inputs['events']:,} events over {inputs['conversations']:,} "
        "conversations (`bench.scale`)",
        "Arithmetic on the budget run above (same stamp), not a measurement. Inputs: "
        f"drain rate {inputs['drain_events_per_second']} events/s "
        f"({inputs['drain_rate_from']}); {inputs['verification_reads_per_conversation']} "
        f"verification reads and {inputs['patches_per_conversation']} PATCHes per "
        f"conversation (measured); budget {inputs['budget_per_minute']}/min per OAuth client; "
        f"batch {inputs['batch']} ids per analytics call. Redelivery ends no sooner than the "
        "drain rate allows and than verification's calls at the budget; tracking catches "
        "up when verification and PATCHes have been paid for at the budget.",
        table(
            (
                "verification",
                "verification calls",
                "at the budget",
                "every redelivery done",
                "bound by",
                "tracking caught up",
                "Genesys calls/event",
            ),
            [
                (
                    row["verification"],
                    row["verification_calls"],
                    f"{row['verification_minutes']:g} min",
                    f"{row['redeliver_minutes']:g} min",
                    row["redelivery_bound_by"],
                    f"{row['tracking_caught_up_minutes']:g} min",
                    row["genesys_calls_per_event"],
                )
                for row in scaled["models"]
            ],
        ),
    ]
    return "\n\n".join(parts)


def cost_section(path: Path, figures: Figures, *, inside: str | None = None) -> str:
    worker = figures["worker"]
    ceiling = figures["ceiling"]
    rows: list[tuple[Any, ...]] = []
    for key, label in (
        ("cpu_ms_per_event", "worker CPU, ms per event (spawn -> tracking settled, less start-up)"),
        ("dynamodb_per_event", "DynamoDB requests per event (worker)"),
        ("redis_commands_per_event", "Redis commands per event (worker)"),
        ("tracking_runs_per_conversation", "tracking runs per conversation"),
    ):
        if key in worker:
            goal = COST_GOALS[key]
            rows.append((label, worker[key], f"≤ {goal:g}", _verdict(worker[key] <= goal)))
    rows.append(
        (
            f"ceiling: {ceiling['cores']} cores x 1000 / {ceiling['cpu_ms_per_event']:g} ms",
            f"{ceiling['events_per_second']:g} events/s",
            "",
            "",
        )
    )
    rows.append(
        (
            f"achieved after the first delivery ({figures['pool']}:{figures['concurrency']})",
            f"{ceiling['achieved_events_per_second']:g} events/s "
            f"({ceiling['achieved_of_ceiling']:.0%} of the ceiling)",
            "",
            "",
        )
    )
    ingest = figures.get("ingest", {})
    if ingest:
        rows.append(
            (
                "ingest (Poller): DynamoDB / SQS / Redis per event",
                f"{ingest['dynamodb_per_event']:g} / {ingest['sqs_per_event']:g} / "
                f"{ingest['redis_commands_per_event']:g}",
                "",
                "",
            )
        )
    source = f" (inside `bench.{inside}`)" if inside else ""
    top = ", ".join(f"{name} {n:,}" for name, n in list(worker["aws_by_operation"].items())[:4])
    return "\n\n".join(
        [
            f"### Cost per event (`bench.cost`{source}, issue 14)",
            stamp(path, figures),
            f"{figures['events']:,} events, one worker {figures['pool']}:"
            f"{figures['concurrency']}, tracking debounce "
            f"{figures['tracking_debounce_seconds']:g} s; AWS requests counted at the server by "
            "counting proxies, Redis commands from INFO commandstats, CPU from /proc.",
            table(("figure", "measured", "goal", ""), rows),
            f"Worker requests by operation: {top}.",
        ]
    )


def floor_section(path: Path, figures: Figures) -> str:
    columns = ("label", "cpu_ms", "wall_ms", "per_event", "cpu_ms_per_event")
    rows: list[tuple[Any, ...]] = [
        tuple(part[column] for column in columns) for part in figures["operations"].values()
    ]
    floor, goal = figures["floor_cpu_ms_per_event"], figures["goal_cpu_ms_per_event"]
    rows.append(
        ("**floor: what the libraries alone cost per event**", "", "", "", f"**{floor:.2f}**")
    )
    closing = f"Goal of issue 14: ≤ {goal:g} ms of worker CPU per event."
    if measured := figures.get("measured_worker_cpu_ms_per_event"):
        closing += (
            f" The worker measured {measured:g} ms per event in `bench.cost`: the floor is "
            f"{floor / measured:.0%} of it; the rest is the project's own code and the calls "
            "it makes beyond these."
        )
    return "\n\n".join(
        [
            "### The CPU floor of one event (`bench.floor`, issue 14)",
            stamp(path, figures),
            f"Each operation measured {figures['calls_per_operation']:,} times after a "
            f"warm-up, {_made(figures)} in one process: the project's `Ledger` on a "
            "boto3 client built as the worker builds it, the product's requests Session to "
            "the sink, redis-py. The task is Celery's builtin no-op task, "
            f"{figures['tasks']:,} of them run by a real worker: its CPU less the same "
            "worker's idle CPU, its wall time the pool's pace. Counts per event from "
            f"{figures['per_event_source']}. A lower bound.",
            table(
                ("component", "CPU ms per op", "wall ms per op", "per event", "CPU ms per event"),
                rows,
            ),
            closing,
        ]
    )


def _made(figures: Figures) -> str:
    """How a floor's calls were made: in threads (results from 2026-12-07 21:00 UTC on)."""
    threads = next(
        (part["threads"] for part in figures["operations"].values() if "threads" in part), None
    )
    if threads is None:
        return "alone and single-threaded"
    return (
        f"in {threads} threads at once (the floor) and alone (the one-thread floor, "
        f"{figures['floor_one_thread_cpu_ms_per_event']:g} ms per event)"
    )


def drain_section(path: Path, figures: Figures) -> str:
    sweep = figures["sweep"]
    pools = {point["pool"] for point in sweep}
    title = "prefork against threads" if {"prefork", "threads"} <= pools else "by concurrency"
    rows = []
    for point in sweep:
        processes = point["cpu_split"]["processes"]
        server = processes.get("dynalite") or processes.get("moto") or {}
        rows.append(
            (
                f"{point['pool']}:{point['concurrency']}",
                "on" if point["verify_conversation"] else "off",
                point["events_per_second"],
                point["events_per_second_after_first_delivery"],
                point["worker_cpu_ms_per_event"],
                processes["worker"]["cores_busy"],
                server.get("cores_busy"),
                f"{point['ceiling']['events_per_second']:g} "
                f"({point['ceiling']['achieved_of_ceiling']:.0%})",
                f"{point['worker_peak_rss_mb']:.0f} MiB",
            )
        )
    parts = [
        f"### Drain, Genesys unconstrained, {title} (`bench.drain`)",
        stamp(path, figures),
        f"{figures['workload']['events']:,} events; simulator at "
        f"{figures['simulator_latency_ms']:g} ms; ledger and broker filled first; clock from "
        "the worker's spawn to every ledger item final.",
        table(
            (
                "pool",
                "verify",
                "events/s",
                "after 1st delivery",
                "worker CPU ms/event",
                "worker cores",
                "DynamoDB cores",
                "ceiling events/s (achieved)",
                "peak RSS",
            ),
            rows,
        ),
    ]
    if "pipeline" in figures:
        pipeline, base, ratios = figures["pipeline"], figures["baseline"], figures["ratios"]
        parts.append(
            table(
                ("whole pipeline and baseline", "value"),
                [
                    (
                        f"pipeline: worker running, Poller on a full DLQ -> all final "
                        f"(c={pipeline['concurrency']})",
                        f"{pipeline['events_per_second']:g} events/s",
                    ),
                    (
                        "baseline: sequential tutorial loop",
                        f"{base['events_per_second']:g} events/s",
                    ),
                    (
                        "Genesys calls per event, project (at all final) / baseline",
                        f"{ratios['genesys_calls_per_event_project']:g} / "
                        f"{ratios['genesys_calls_per_event_baseline']:g}",
                    ),
                ],
            )
        )
    return "\n\n".join(parts)


def limiter_section(path: Path, figures: Figures) -> str:
    rows = [
        (
            name,
            scenario["priority"],
            f"{scenario['server_limit_per_minute']:,.0f}/min",
            f"{scenario['paced_per_minute']:,.0f}",
            f"{scenario['achieved_per_minute']:,.0f}/min",
            f"{scenario['achieved_of_server_limit']:.1%}",
            f"{scenario['slack_ms']} ms" if "slack_ms" in scenario else "not measured",
            scenario["simulator_429"],
        )
        for name, scenario in figures["scenarios"].items()
    ]
    return "\n\n".join(
        [
            "### Shared rate limiter (`bench.limiter`)",
            stamp(path, figures),
            f"{figures['processes']} processes x {figures['threads']} threads per scenario. "
            "Slack: how late a granted call may reach the server and still find room in its "
            "window; with Genesys's 60 s window it is over a second, and shortening the window "
            "shortens it in proportion (a 429 here means a grant arrived later than that).",
            table(
                (
                    "scenario",
                    "priority",
                    "server limit",
                    "paced at",
                    "achieved",
                    "of limit",
                    "slack",
                    "429",
                ),
                rows,
            ),
        ]
    )


def ingest_section(path: Path, figures: Figures) -> str:
    rows = [
        (
            run["front_door"],
            run["messages_per_second"],
            run["redis_commands_per_message"],
            run["cpu_split"]["processes"].get("bench", {}).get("ms_per_event"),
        )
        for run in figures["runs"]
    ]
    return "\n\n".join(
        [
            "### Ingest (`bench.ingest`)",
            stamp(path, figures),
            table(
                ("front door", "messages/s", "Redis commands/msg", "this process CPU ms/msg"),
                rows,
            ),
        ]
    )


# --- the document ------------------------------------------------------------------------


def deployed_section(path: Path, figures: Figures) -> str:
    goals = figures["goals"]
    rows = [
        (label, figures[key], f"≤ {goals[key]:g}", _verdict(figures[key] <= goals[key]))
        for key, label in (
            ("genesys_calls_per_event", "Genesys calls per event"),
            ("patches_per_conversation", "PATCHes per conversation"),
            ("dynamodb_per_event", "DynamoDB requests per event (workers)"),
            ("redis_commands_per_event", "Redis commands per event (workers and poller)"),
            ("worker_over_floor", "worker CPU beyond idle over the libraries' floor (same run)"),
        )
    ]
    rows += [
        ("worker CPU, ms per event (both workers)", figures["worker_cpu_ms_per_event"], "", ""),
    ]
    if "worker_busy_cpu_ms_per_event" in figures:  # results from 2026-12-07 12:00 UTC on
        idle = figures["worker_idle_cpu_ms_per_second"]
        spells = figures.get("worker_idle_cpu_ms_per_second_at")  # from 2026-12-07 23:00 UTC
        rows += [
            ("... beyond the workers' idle rate, ms per event",
             figures["worker_busy_cpu_ms_per_event"], "", ""),
            ("the workers at rest, CPU ms per second (measured ready, before the poller)"
             if spells is None else
             "the workers at rest, CPU ms per second (the mean of 3 s before the poller and "
             "3 s after tracking settled, on their CPU clocks)",
             " / ".join(f"{name} {rate:g}" for name, rate in idle.items()), "", ""),
        ]  # fmt: skip
        if spells is not None:
            rows += [
                ("... before / after",
                 " / ".join(f"{name} {spells['before'][name]:g} / {spells['after'][name]:g}"
                            for name in idle), "", ""),
            ]  # fmt: skip
        rows += [
            ("worker CPU with idle over the floor", figures["worker_over_floor_with_idle"], "", ""),
        ]  # fmt: skip
    rows += [
        ("the floor of this run's mix, ms per event", figures["floor_cpu_ms_per_event"], "", ""),
    ]
    operations = figures["floor"]["operations"]
    if "floor_one_thread_cpu_ms_per_event" in figures:  # results from 2026-12-07 21:00 UTC on
        threads = operations["post"]["threads"]
        each = ", ".join(
            f"{name} {part['cpu_ms'] / part['one_thread']['cpu_ms']:.2f}x"
            for name, part in operations.items()
            if "one_thread" in part
        )
        rows += [
            (f"... its calls made in {threads} threads at once, as the redelivery worker's "
             f"pool makes them; each call's CPU in {threads} threads over alone",
             each, "", ""),
            ("the floor with every call made alone, in one thread, ms per event",
             figures["floor_one_thread_cpu_ms_per_event"], "", ""),
            ("worker CPU beyond idle over that (no thread pool reaches it)",
             figures["worker_over_one_thread_floor"], "", ""),
        ]  # fmt: skip
    if "sent" in operations:  # results from 2026-12-07 20:00 UTC on
        sent, redis_own = operations["sent"], operations["redis"]
        # From 21:20 UTC the workers' Redis is counted and priced in round trips.
        unit = "round trips" if "redis_round_trips" in figures["worker"] else "commands"
        rows += [
            ("... of it, tasks the workers sent (each a send_task), per event",
             f"{sent['per_event']:g} at {sent['cpu_ms']:g} ms", "", ""),
            (f"... and Redis {unit} priced (a command, a pipeline or a script each), the "
             "broker's for the tasks run and sent left out (in their prices), per event",
             redis_own["per_event"], "", ""),
        ]  # fmt: skip
    if "task_burst" in figures:  # results from 2026-12-07 23:50 UTC on
        task, arrival = operations["task"], operations["task"]["arrival"]
        rows += [
            ("... of it, Celery task runs, per event, each priced as the no-op task sent as "
             f"the run's poller sent its {task['calls']} (over {arrival['over_seconds']:g} s, "
             f"{arrival['with_countdown']} with a countdown, up to "
             f"{arrival['countdown_seconds_max']:.0f} s) / queued first and taken in a burst",
             f"{task['per_event']:g} at {task['cpu_ms']:g} ms / "
             f"{figures['task_burst']['cpu_ms']:g} ms", "", ""),
            ("worker CPU beyond idle over the floor with tasks priced as a burst (the floor "
             "until 2026-12-07 23:50 UTC)", figures["worker_over_floor_with_burst_tasks"], "", ""),
        ]  # fmt: skip
    if "worker_over_floor_spread" in figures:  # results from 2026-12-07 15:00 UTC on
        low, high = figures["floor"]["floor_cpu_ms_per_event_spread"]
        over_high, over_low = figures["worker_over_floor_spread"]
        rows += [
            ("... over its lowest and highest rounds (half before the run, half after), "
             "ms per event", f"{low:g} to {high:g}", "", ""),
            ("worker CPU beyond idle over those (lowest, highest)",
             f"{over_low:g} to {over_high:g}", "", ""),
        ]  # fmt: skip
    if "machine_speed" in figures:  # results from 2026-12-07 20:00 UTC on
        speed = figures["machine_speed"]
        rows += [
            ("the machine's speed: a fixed piece of Python (`bench.speed`), CPU ms, while the "
             "floor was timed / in the run",
             f"{speed['probe_cpu_ms_in_floor']:g} / {speed['probe_cpu_ms_in_run']:g} "
             f"({speed['slowdown_in_run']:g}x)", "", ""),
            ("worker CPU beyond idle over the floor, at the floor's speed (a diagnosis; the "
             "goal is judged on the row above)",
             figures.get("worker_over_floor_at_floor_speed", "not measured"), "", ""),
        ]  # fmt: skip
    rows += [
        ("poller: Redis commands per event", figures["poller"]["redis_commands_per_event"], "", ""),
        ("the poller took / all final / tracking settled, s",
         f"{figures['poller_seconds']:g} / {figures['drain_seconds']:g} / "
         f"{figures['tracking_settled_seconds']:g}", "", ""),
        ("events per second (poller start -> all final)", figures["events_per_second"], "", ""),
    ]  # fmt: skip
    tasks = ", ".join(f"{name} {n:,}" for name, n in figures["worker"]["tasks"].items())
    return "\n\n".join(
        [
            "### As deployed (`bench.deployed`, issue 22)",
            stamp(path, figures),
            f"{figures['events']:,} events over {figures['conversations']} conversations, "
            "shuffled in the DLQ; the poller drains it while the README's two workers run "
            "(redelivery threads:16, tracking threads:2); Genesys at "
            f"{figures['genesys_per_minute']} calls a minute.",
            table(("figure", "measured", "goal", ""), rows),
            f"Tasks run: {tasks}. Genesys calls: {figures['genesys_by_endpoint']}.",
        ]
    )


def growth_section(path: Path, figures: Figures) -> str:
    goals = figures["goals"]
    rows: list[tuple[Any, ...]] = [
        (label, figures[key], f"≤ {goals[key]:g}", _verdict(figures[key] <= goals[key]))
        for key, label in (
            ("reconciler_read_units_per_changed_item",
             "reconciler: read units per item changed since its last pass"),
            ("sampler_read_units_per_minute",
             "metrics sampler: read units per minute (its recount spread over its period)"),
            ("status_seconds", "`status`: seconds"),
        )
    ]  # fmt: skip
    for name, run in figures["reconciler_passes"].items():
        measured = f"{run['read_units']:g} / {run['queries']:g} / {run['seconds']:g}"
        rows.append((f"reconciler pass ({name}): read units / queries / s", measured, "", ""))
    if "recount_read_units" in figures:  # the status counts kept in Redis (dlq.metrics.tally)
        every = figures["recount_every_seconds"] / 3600
        rows += [
            ("metrics sample: read units (the counts kept in Redis)",
             figures["sampler_read_units_per_sample"], "", ""),
            (f"status counts' recount, every {every:g} h: read units / s",
             f"{figures['recount_read_units']:g} / {figures['recount_seconds']:g}", "", ""),
            ("`status` on a flushed Redis (it recounts first): seconds",
             figures["status_seconds_recounting"], "", ""),
        ]  # fmt: skip
    return "\n\n".join(
        [
            "### Reads as the ledger grows (`bench.growth`, issue 22)",
            stamp(path, figures),
            f"{figures['items']:,} items, {figures['changed_items']:,} changed in the last hour, "
            f"{figures['changed_since_last_pass']} since the reconciler's last pass. Passes: "
            "`first` without a high-water mark (after a Redis flush: the whole hour), "
            "`caught_up` once tracking covers it all, `changed` after the new changes.",
            table(("figure", "measured", "goal", ""), rows),
        ]
    )


def readme_table(found: Mapping[str, tuple[Path, Figures]]) -> str:
    """README.md's Performance table: the headline figures, each with its date."""
    rows: list[tuple[str, str]] = []

    def when(figures: Figures) -> str:
        measured = (figures.get("machine") or {}).get("measured_at") or ""
        return measured[:10]

    if "deployed" in found:
        d = found["deployed"][1]
        rows += [
            (f"as deployed ({when(d)}): Genesys calls per event / PATCHes per conversation",
             f"{d['genesys_calls_per_event']:g} / {d['patches_per_conversation']:g}"),
            (f"as deployed ({when(d)}): DynamoDB / Redis per event, worker CPU ms per event",
             f"{d['dynamodb_per_event']:g} / {d['redis_commands_per_event']:g}, "
             f"{d['worker_cpu_ms_per_event']:g} ({d['worker_over_floor']:g}x the libraries' "
             "floor)"),
        ]  # fmt: skip
    if "growth" in found:
        g = found["growth"][1]
        rows.append(
            (f"ledger of {g['items']:,} items ({when(g)}): reconciler pass / sampler / `status`",
             f"{g['reconciler_read_units_per_pass']:g} read units (without its mark "
             f"{g['reconciler_read_units_first_pass']:g}) / {g['sampler_read_units_per_minute']:g}"
             f" read units a minute / {g['status_seconds']:g} s"),
        )  # fmt: skip
    if (budget := found.get("budget")) and "goals" in budget[1]:
        for goal in budget[1]["goals"]:
            rows.append(
                (f"budget ({when(budget[1])}): {goal['figure'].strip()}", str(goal["value"]))
            )
    if "drain" in found:
        drain = found["drain"][1]
        for point in drain.get("sweep", []):
            verify = "on" if point["verify_conversation"] else "off"
            rows.append(
                (f"drain, filled first ({when(drain)}): {point['pool']}:{point['concurrency']}, "
                 f"verification {verify}", f"{point['events_per_second']:.1f} events/s"),
            )  # fmt: skip
    if "floor" in found:
        floor = found["floor"][1]
        rows.append((f"the libraries' floor ({when(floor)})",
                     f"{floor['floor_cpu_ms_per_event']:g} ms of CPU per event"))  # fmt: skip
    return table(("figure", "value"), rows)


def render(results: Path, summary: Path | None = None) -> str:
    """The markdown that goes between the markers."""
    found = load(results, summary)
    sections: list[str] = []
    missing: list[str] = []

    def add(name: str, section: Callable[[Path, Figures], str]) -> None:
        if name in found:
            sections.append(section(*found[name]))
        else:
            missing.append(f"`python -m bench.{name}`")

    if "budget" in found and "goals" in found["budget"][1]:
        sections.append(budget_section(*found["budget"]))
        sections.append(scale_section(*found["budget"]))
    else:
        missing.append("`python -m bench.budget`")
    if "cost" in found:
        sections.append(cost_section(*found["cost"]))
    elif "drain" in found and "cost" in found["drain"][1]:
        path, drain = found["drain"]
        inner = {**drain["cost"], "machine": drain["machine"]}
        sections.append(cost_section(path, inner, inside="drain"))
    else:
        missing.append("`python -m bench.cost`")
    add("deployed", deployed_section)
    add("growth", growth_section)
    add("floor", floor_section)
    add("drain", drain_section)
    add("limiter", limiter_section)
    add("ingest", ingest_section)
    if missing:
        sections.append(
            "Not in this render (no results in `bench/results/` or `bench/summary.json`): "
            + ", ".join(missing)
            + "."
        )
    header = (
        "<!-- Generated by `python -m bench.report` from bench/results/*.json: "
        "edits between the markers are overwritten. -->"
    )
    return "\n\n".join([header, *sections])


def replace_figures(document: str, figures: str, *, start: str = START, end: str = END) -> str:
    """`document` with the text between the markers replaced by `figures`."""
    first, last = document.find(start), document.find(end)
    if first < 0 or last < first:
        raise ValueError(
            f"the document needs the markers {start} and {end}, in that order, around "
            "the generated figures: add them where the tables go"
        )
    return f"{document[: first + len(start)]}\n{figures}\n{document[last:]}"


def write(
    results: Path, doc: Path, *, readme: Path | None = None, summary: Path | None = None
) -> str:
    """Render `results` (and the summary) into `doc` and the README's table, and write the
    summary of what was rendered; answers what went between the doc's markers."""
    figures = render(results, summary)
    doc.write_text(replace_figures(doc.read_text(), figures))
    found = load(results, summary)
    if readme is not None:
        text = replace_figures(
            readme.read_text(), readme_table(found), start=README_START, end=README_END
        )
        readme.write_text(text)
    if summary is not None and found:
        summary.write_text(json.dumps(summarize(found), indent=1) + "\n")
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.report", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--readme", type=Path, default=README, help="its Performance table")
    parser.add_argument(
        "--summary", type=Path, default=SUMMARY, help="the committed figures it reads and writes"
    )
    args = parser.parse_args(argv)
    if not args.results.is_dir() and not args.summary.exists():
        parser.error(
            f"neither {args.results} nor {args.summary} exists: run `python -m bench` first"
        )
    figures = write(args.results, args.doc, readme=args.readme, summary=args.summary)
    print(f"rendered {figures.count('### ')} tables from {args.results} into {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
