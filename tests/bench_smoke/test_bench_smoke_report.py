"""The figures' render, the scale model and the ordering check, on small results files.

No stack: `bench.report` renders the JSON of `tests/fixtures/bench/` (a quick budget run,
a standard cost run, a quick floor run) into a copy of a document, `bench.scale` does its
arithmetic, and `bench.common.arrival_order` judges arrival orders against a real
synthetic workload.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import FIXTURES

from bench import report, scale
from bench.common import WorkloadSpec, arrival_order


def _document(path: Path, between: str) -> str:
    text = (
        "# Performance\n\nProse above the figures.\n\n"
        f"{report.START}\n{between}\n{report.END}\n\n## After\n\nProse below.\n"
    )
    path.write_text(text)
    return text


@pytest.fixture
def results(tmp_path: Path) -> Path:
    folder = tmp_path / "results"
    shutil.copytree(FIXTURES / "bench", folder)
    return folder


def test_render_replaces_only_the_text_between_the_markers(results: Path, tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    _document(doc, "| stale | table |\n| --- | --- |\n| 11.2 | events/s |")

    report.write(results, doc)

    text = doc.read_text()
    before, rest = text.split(report.START)
    between, after = rest.split(report.END)
    assert before == "# Performance\n\nProse above the figures.\n\n"
    assert after == "\n\n## After\n\nProse below.\n"
    assert "stale" not in between
    assert "### Genesys budget, ordering and verification" in between
    assert "### Scale model: 100,000 events over 25,000 conversations" in between
    assert "### Cost per event" in between
    # A benchmark without a results file is named, not filled in.
    assert "`python -m bench.drain`" in between and "`python -m bench.limiter`" in between


def test_render_stamps_each_table_with_date_machine_load_and_backend(
    results: Path, tmp_path: Path
) -> None:
    doc = tmp_path / "performance.md"
    _document(doc, "")
    between = report.write(results, doc)
    budget = json.loads((results / "budget.json").read_text())
    cost = json.loads((results / "cost.json").read_text())

    stamps = [line for line in between.splitlines() if line.startswith("_Measured ")]
    assert len(stamps) == 5
    budget_stamp, cost_stamp, deployed_stamp, growth_stamp, floor_stamp = stamps
    assert budget["machine"]["measured_at"][:10] in budget_stamp
    assert budget["machine"]["cpu_model"] in budget_stamp
    load = " / ".join(f"{x:g}" for x in budget["machine"]["load_average_1_5_15"])
    assert f"load average {load}" in budget_stamp
    assert "DynamoDB on moto" in budget_stamp
    assert "DynamoDB on dynalite 4.0.0" in cost_stamp
    assert "DynamoDB on dynalite 4.0.0" in floor_stamp
    assert "DynamoDB on dynalite 4.0.0" in deployed_stamp and "dynalite" in growth_stamp
    # The cost figures of issue 14, and the ceiling computed from them.
    assert f"| {cost['worker']['cpu_ms_per_event']:g} | ≤ 5 |" in between
    assert f"{cost['ceiling']['events_per_second']:g} events/s" in between


def test_render_puts_each_budget_goal_next_to_its_figure(results: Path) -> None:
    between = report.render(results)
    budget = json.loads((results / "budget.json").read_text())
    for goal in budget["goals"]:
        row = next(line for line in between.splitlines() if goal["figure"].strip() in line)
        assert goal["goal"] in row
        assert ("met" in row) is (goal["met"] is True)


def test_a_second_render_gives_the_same_document(results: Path, tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    _document(doc, "old")
    report.write(results, doc)
    once = doc.read_text()
    report.write(results, doc)
    assert doc.read_text() == once


def test_deployed_and_growth_figures_stand_next_to_their_goals(results: Path) -> None:
    between = report.render(results)
    for name, section in (("deployed", "### As deployed"), ("growth", "### Reads as the ledger")):
        figures = json.loads((results / f"{name}.json").read_text())
        assert section in between
        for key, goal in figures["goals"].items():
            value = figures[key]
            row = next(
                line
                for line in between.splitlines()
                if line.startswith("| ") and f"| {report._cell(value)} | ≤ {goal:g} |" in line
            )
            assert ("| met |" in row) is (value <= goal), (key, row)


def test_a_floor_timed_in_threads_shows_each_calls_cost_over_alone_and_the_one_thread_floor(
    results: Path,
) -> None:
    path = results / "deployed.json"
    figures = json.loads(path.read_text())
    operations = figures["floor"]["operations"]
    for name in ("claim_finish", "post"):  # as bench.deployed writes them from 21:00 UTC on
        operations[name] |= {
            "threads": 16,
            "one_thread": {"cpu_ms": operations[name]["cpu_ms"] / 2},
        }
    figures |= {"floor_one_thread_cpu_ms_per_event": 3.25, "worker_over_one_thread_floor": 1.625}
    path.write_text(json.dumps(figures))

    section = report.deployed_section(path, figures)

    assert "its calls made in 16 threads at once" in section
    assert "claim_finish 2.00x, post 2.00x |" in section
    assert "| the floor with every call made alone, in one thread, ms per event | 3.25 |" in section
    assert "| worker CPU beyond idle over that (no thread pool reaches it) | 1.625 |" in section
    before = json.loads((FIXTURES / "bench" / "deployed.json").read_text())
    assert "in one thread" not in report.deployed_section(path, before)


def test_the_idle_rate_shows_its_spells_before_and_after_the_run(results: Path) -> None:
    path = results / "deployed.json"
    figures = json.loads(path.read_text())
    figures |= {
        "worker_busy_cpu_ms_per_event": 6.4,
        "worker_over_floor_with_idle": 1.3,
        "worker_idle_cpu_ms_per_second": {"replay": 1.65, "track": 1.5},
        "worker_idle_cpu_ms_per_second_at": {
            "before": {"replay": 1.5, "track": 1.4},
            "after": {"replay": 1.8, "track": 1.6},
        },
    }
    path.write_text(json.dumps(figures))

    section = report.deployed_section(path, figures)

    assert "3 s after tracking settled, on their CPU clocks) | replay 1.65 / track 1.5 |" in section
    assert "| ... before / after | replay 1.5 / 1.8 / track 1.4 / 1.6 |" in section
    del figures["worker_idle_cpu_ms_per_second_at"]  # as written before 2026-12-07 23:00 UTC
    earlier = report.deployed_section(path, figures)
    assert "(measured ready, before the poller) | replay 1.65 / track 1.5 |" in earlier
    assert "before / after" not in earlier


def test_a_task_priced_as_the_run_sent_them_shows_the_burst_price_beside(results: Path) -> None:
    path = results / "deployed.json"
    figures = json.loads(path.read_text())
    figures["floor"]["operations"]["task"] |= {
        "cpu_ms": 1.2,
        "calls": 516,
        "per_event": 0.76,
        "arrival": {
            "sent": "as scheduled",
            "over_seconds": 3.8,
            "with_countdown": 516,
            "countdown_seconds_max": 60.3,
        },
    }
    figures |= {"task_burst": {"cpu_ms": 0.55}, "worker_over_floor_with_burst_tasks": 1.45}
    path.write_text(json.dumps(figures))

    section = report.deployed_section(path, figures)

    assert "sent its 516 (over 3.8 s, 516 with a countdown, up to 60 s)" in section
    assert "| 0.76 at 1.2 ms / 0.55 ms |" in section
    assert "(the floor until 2026-12-07 23:50 UTC) | 1.45 |" in section
    before = json.loads((FIXTURES / "bench" / "deployed.json").read_text())
    assert "taken in a burst" not in report.deployed_section(path, before)


def test_the_summary_renders_the_same_tables_in_a_checkout_without_results(
    results: Path, tmp_path: Path
) -> None:
    summary, empty = tmp_path / "summary.json", tmp_path / "no-results"  # as bench/summary.json
    first, second = tmp_path / "first.md", tmp_path / "second.md"
    _document(first, "")
    _document(second, "")

    rendered = report.write(results, first, summary=summary)
    again = report.write(empty, second, summary=summary)

    assert "from `bench/summary.json`" not in rendered
    assert again == re.sub(r"`bench/results/\w+\.json`", "`bench/summary.json`", rendered)


def test_the_readme_table_is_rendered_between_its_markers(results: Path, tmp_path: Path) -> None:
    doc, readme = tmp_path / "performance.md", tmp_path / "README.md"
    _document(doc, "")
    readme.write_text(
        f"# dlq-replay\n\n## Performance\n\n{report.README_START}\nold\n"
        f"{report.README_END}\n\n## After\n"
    )
    deployed = json.loads((results / "deployed.json").read_text())

    report.write(results, doc, readme=readme)

    text = readme.read_text()
    assert "\nold\n" not in text and text.endswith(f"{report.README_END}\n\n## After\n")
    assert f"{deployed['genesys_calls_per_event']:g} / " in text
    assert deployed["machine"]["measured_at"][:10] in text


def test_a_document_without_markers_is_refused_and_left_alone(
    results: Path, tmp_path: Path
) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nNo markers here.\n")
    with pytest.raises(ValueError, match="needs the markers"):
        report.write(results, doc)
    assert doc.read_text() == "# Performance\n\nNo markers here.\n"


def _budget(**on: Any) -> dict[str, Any]:
    run = {
        "label": "verify-on",
        "genesys_lookups": 0,
        "genesys_batch_reads": 3,
        "genesys_patches": 250,
        "all_final_seconds": 20.0,
    }
    run.update(on)
    off = {"label": "verify-off", "all_final_seconds": 10.1}
    return {
        "workload": {"events": 1010, "conversations": 250},
        "budget_per_minute": 290,
        "runs": {"verify-on": run, "verify-off": off},
    }


def test_scale_model_single_gets_take_86_minutes_at_290_a_minute() -> None:
    model = scale.model(_budget())
    rows = {row["verification"]: row for row in model["models"]}
    single = rows["single GETs (before the batch)"]
    assert single["verification_calls"] == 25_000
    assert single["verification_minutes"] == pytest.approx(86.2, abs=0.05)
    # The drain (100 events/s -> 16.7 min) is faster: the budget bounds redelivery.
    assert model["inputs"]["drain_events_per_second"] == 100.0
    assert single["redelivery_bound_by"] == "budget"
    assert single["tracking_caught_up_minutes"] == pytest.approx(50_000 / 290, abs=0.05)


def test_scale_model_with_the_batch_is_bound_by_the_drain_rate() -> None:
    rows = {row["verification"]: row for row in scale.model(_budget())["models"]}
    batch = rows["batch of 100"]
    assert batch["verification_calls"] == 250
    assert batch["redelivery_bound_by"] == "drain rate"
    assert batch["redeliver_minutes"] == pytest.approx(100_000 / 100 / 60, abs=0.05)
    # Tracking: 250 reads + 25,000 PATCHes (1.0 per conversation measured) at 290/min.
    assert batch["tracking_caught_up_minutes"] == pytest.approx(25_250 / 290, abs=0.05)
    measured = rows["measured"]
    assert measured["verification_calls"] == 300  # 3 analytics calls per 250 conversations


def _workload() -> Any:
    return WorkloadSpec(conversations=6, presence_events=2, seed=3).generate()


def test_the_workload_gives_each_conversation_increasing_distinct_times() -> None:
    workload = _workload()
    times: dict[str, list[tuple[str, str]]] = {}
    for message in workload.messages:
        if message.conversation_id:
            event = json.loads(message.body)
            topic = event["detail"]["topicName"].rsplit(".", 2)[-2:]
            times.setdefault(message.conversation_id, []).append((event["time"], ".".join(topic)))
    assert len(times) == 6
    for events in times.values():
        ordered = sorted(events)
        assert [topic for _, topic in ordered] == [
            "customer.start",
            "acd.end",
            "agent.end",
            "customer.end",
        ]
        assert len({t for t, _ in events}) == 4


def _in_time_order(workload: Any) -> list[str]:
    events = [
        (json.loads(m.body)["time"], m.event_id) for m in workload.messages if m.conversation_id
    ]
    return [event_id for _, event_id in sorted(events)]


def test_arrivals_in_time_order_leave_no_conversation_out_of_order() -> None:
    workload = _workload()
    # The DLQ's shuffled order, as an unordered replay would deliver it, for contrast.
    shuffled = arrival_order([m.event_id for m in workload.messages if m.event_id], workload)
    ordered = arrival_order(_in_time_order(workload), workload)
    assert ordered["conversations_out_of_order"] == 0
    assert ordered["conversations"] == 6
    assert ordered["conversation_events_missing"] == 0
    assert shuffled["conversations_out_of_order"] > 0


def test_one_swapped_pair_marks_its_conversation_and_only_it() -> None:
    workload = _workload()
    arrivals = _in_time_order(workload)
    conversation = workload.conversation_ids[0]
    start, end = (
        arrivals.index(m.event_id)
        for m in sorted(
            (m for m in workload.messages if m.conversation_id == conversation),
            key=lambda m: json.loads(m.body)["time"],
        )[::3]
    )
    arrivals[start], arrivals[end] = arrivals[end], arrivals[start]
    # A duplicate POST later on does not count again: each event at its first arrival.
    arrivals.append(arrivals[start])
    found = arrival_order(arrivals, workload)
    assert found["conversations_out_of_order"] == 1
    assert found["examples"] == [conversation]


def test_missing_events_are_counted_apart() -> None:
    workload = _workload()
    found = arrival_order(_in_time_order(workload)[2:], workload)
    assert found["conversation_events_missing"] == 2
    assert found["conversations_out_of_order"] == 0


def test_render_shows_each_part_of_the_cpu_floor_its_total_and_the_goal(results: Path) -> None:
    between = report.render(results)
    floor = json.loads((results / "floor.json").read_text())
    lines = between.splitlines()

    assert "### The CPU floor of one event (`bench.floor`, issue 14)" in between
    for part in floor["operations"].values():
        assert any(line.startswith(f"| {part['label']} |") for line in lines), part["label"]
    total = next(line for line in lines if "**floor:" in line)
    assert f"**{floor['floor_cpu_ms_per_event']:.2f}**" in total
    assert "Goal of issue 14: ≤ 5 ms of worker CPU per event." in between


def test_render_without_a_floor_names_the_benchmark_to_run(results: Path) -> None:
    (results / "floor.json").unlink()

    between = report.render(results)

    assert "### The CPU floor of one event" not in between
    missing = next(line for line in between.splitlines() if line.startswith("Not in this render"))
    assert "`python -m bench.floor`" in missing


def test_render_lists_every_run_of_a_repeated_budget_and_says_which_one_is_shown(
    results: Path,
) -> None:
    path = results / "budget.json"
    budget = json.loads(path.read_text())
    budget["repeat"] = 3
    budget["runs"]["verify-on"]["all_final_seconds_of_each_run"] = [16.6, 18.2, 17.1]
    budget["runs"]["verify-off"]["all_final_seconds_of_each_run"] = [15.0, 14.5, 16.9]
    path.write_text(json.dumps(budget))

    between = report.render(results)

    assert "3 pairs of drains" in between
    assert "verify-on 16.6, 18.2, 17.1 s; verify-off 15.0, 14.5, 16.9 s" in between
