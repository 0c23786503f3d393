"""The end-to-end benchmarks run in their quick mode and report consistent figures.

They only have to run and add up (every event final, each redelivered once, counts that
match the workload); how fast is for `make bench` to say, never for a test. The three
benchmark processes run side by side, each with its own stack, with DynamoDB on moto
(`--dynamodb moto`): CI needs no node, and the fallback itself is tested in
test_bench_smoke_dynamodb.py. The drain compares a thread and a prefork worker, and
repeats its first point.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import REPO

QUICK_EVENTS = 5 * 4 + 1  # bench.common.QUICK: 5 conversations of 4 events, 1 presence

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("bench")
    pools = "threads:4,prefork:2,threads:4"
    extra = {"drain": ["--chart", str(out / "drain.png"), "--pools", pools]}
    procs = {}
    for name in ("drain", "budget", "ingest"):
        argv = [sys.executable, "-m", f"bench.{name}", "--quick", "--dynamodb", "moto"]
        argv += ["--output", str(out / f"{name}.json"), *extra.get(name, [])]
        procs[name] = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    figures: dict[str, dict] = {}
    for name, proc in procs.items():
        try:
            output, _ = proc.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            for other in procs.values():
                other.kill()
            raise
        assert proc.returncode == 0, f"bench.{name} failed:\n{output[-4000:]}"
        figures[name] = json.loads((out / f"{name}.json").read_text())
        figures[name]["stdout"] = output
    figures["drain"]["png"] = (out / "drain.png").stat().st_size
    return figures


def test_drain_replays_every_event_exactly_once(results: dict[str, dict]) -> None:
    drain = results["drain"]
    for point in [*drain["sweep"], drain["pipeline"]]:
        assert point["events"] == QUICK_EVENTS
        assert point["statuses"] == {"replayed": QUICK_EVENTS}
        assert point["sink_posts"] == QUICK_EVENTS
        assert point["events_per_second"] > 0
        assert point["timeline"][-1].get("replayed") == QUICK_EVENTS
    assert drain["png"] > 0
    assert "events/s" in drain["stdout"]


def test_every_benchmark_says_which_server_dynamodb_was_on(results: dict[str, dict]) -> None:
    for name in ("drain", "budget", "ingest"):
        assert "DynamoDB backend: moto (asked for with --dynamodb moto)" in results[name]["stdout"]
        assert results[name]["dynamodb_backend"]["name"] == "moto"
        assert results[name]["dynamodb_backend"]["fallback"] is False


def test_drain_compares_a_thread_and_a_prefork_worker(results: dict[str, dict]) -> None:
    sweep = results["drain"]["sweep"]
    pools = [(p["pool"], p["concurrency"]) for p in sweep]
    assert pools == [("threads", 4), ("prefork", 2), ("threads", 4)]
    for point in sweep:
        assert point["replayed"] == QUICK_EVENTS
        assert point["worker_cpu_ms_per_event"] > 0
        assert point["ceiling"]["events_per_second"] > 0
    assert "comparison (DynamoDB on moto)" in results["drain"]["stdout"]


def test_a_repeated_drain_point_reads_a_worker_log_of_its_own(results: dict[str, dict]) -> None:
    first, _, again = results["drain"]["sweep"]
    assert first["label"] == again["label"]
    assert first["worker_log"] != again["worker_log"]
    # Its timeline ends with this point's events, not with both points' added up.
    assert again["timeline"][-1]["replayed"] == QUICK_EVENTS


def test_each_run_splits_its_cpu_among_the_processes(results: dict[str, dict]) -> None:
    drain = results["drain"]
    for split in [p["cpu_split"] for p in drain["sweep"]] + [drain["cost"]["cpu_split"]]:
        processes = split["processes"]
        assert {"worker", "moto", "redis", "genesys_sim"} <= set(processes)
        assert processes["worker"]["cpu_seconds"] > 0
        assert split["events"] == QUICK_EVENTS
    assert "cores busy" in drain["stdout"]
    assert all("cpu_split" in run for run in results["budget"]["runs"].values())
    assert all("cpu_split" in run for run in results["ingest"]["runs"])


def test_drain_verifies_each_conversation_at_most_once_when_verifying(
    results: dict[str, dict],
) -> None:
    for point in results["drain"]["sweep"]:
        reads = point["genesys_lookups"] + point["genesys_batch_reads"]
        if point["verify_conversation"]:
            assert 1 <= reads <= 5  # a batch for all five, or single lookups at worst
        else:
            assert reads == 0
        assert point["genesys_429"] == 0


def test_baseline_makes_three_genesys_calls_per_conversation_event(
    results: dict[str, dict],
) -> None:
    baseline = results["drain"]["baseline"]
    assert baseline["processed"] == QUICK_EVENTS
    assert baseline["sink_posts"] == QUICK_EVENTS
    assert baseline["genesys_lookups"] == 20
    assert baseline["genesys_patches"] == 40
    ratios = results["drain"]["ratios"]
    assert ratios["genesys_calls_per_event_baseline"] > ratios["genesys_calls_per_event_project"]


def test_cost_counts_one_ledger_write_per_event_at_ingest(results: dict[str, dict]) -> None:
    cost = results["drain"]["cost"]
    # One per message; SQS (moto's too, receivers racing) may hand a message out twice,
    # and the second PutItem is the refused conditional write that finds it there.
    assert (
        QUICK_EVENTS <= cost["ingest"]["aws_by_operation"]["dynamodb.PutItem"] <= 2 * QUICK_EVENTS
    )
    assert cost["worker"]["dynamodb_requests"] >= 2 * QUICK_EVENTS  # claim + finish at least
    assert cost["worker"]["redis_commands"] > 0


def test_cost_counts_the_worker_process_requests_at_the_server(results: dict[str, dict]) -> None:
    worker = results["drain"]["cost"]["worker"]
    # Claim and finish of every event, counted by the proxy in front of the DynamoDB server.
    assert worker["aws_by_operation"]["dynamodb.UpdateItem"] >= 2 * QUICK_EVENTS
    assert worker["dynamodb_per_event"] >= 2
    assert worker["redis_commands_per_event"] > 0
    # The net figure subtracts an idle worker's start-up, measured apart: over 21 events
    # on a busy machine the difference is noise, so only the total is asked to be positive.
    assert worker["cpu_ms_per_event_with_startup"] > 0
    assert worker["cpu_ms_per_event"] < worker["cpu_ms_per_event_with_startup"]


def test_cost_sets_the_run_against_the_worker_cpu_ceiling(results: dict[str, dict]) -> None:
    cost = results["drain"]["cost"]
    ceiling = cost["ceiling"]
    cpu_ms = cost["worker"]["cpu_ms_per_event"]
    expected = ceiling["cores"] * 1000 / cpu_ms if cpu_ms > 0 else 0.0
    assert abs(ceiling["events_per_second"] - expected) < 0.1
    assert ceiling["achieved_events_per_second"] > 0
    assert "ceiling" in results["drain"]["stdout"]


def test_budget_stays_within_the_limit_and_tracks_every_conversation(
    results: dict[str, dict],
) -> None:
    budget = results["budget"]
    runs = budget["runs"]
    assert set(runs) == {"verify-on", "verify-off"}
    for run in runs.values():
        assert run["replayed"] == QUICK_EVENTS
        assert run["genesys_429"] == 0
        assert run["genesys_patches"] >= 5
        assert run["tracking_settled_seconds"] >= run["all_final_seconds"]
    on, off = runs["verify-on"], runs["verify-off"]
    assert 1 <= on["genesys_lookups"] + on["genesys_batch_reads"] <= 5
    assert off["genesys_batch_reads"] == 0
    assert budget["tracking_ceiling_seconds"] > 0


def test_budget_checks_each_conversation_arrival_order_at_the_sink(
    results: dict[str, dict],
) -> None:
    for run in results["budget"]["runs"].values():
        assert run["replay_order"] == "conversation"
        order = run["order"]
        assert order["conversations"] == 5
        assert order["conversation_events_missing"] == 0
        assert order["conversations_out_of_order"] == 0


def test_budget_prints_each_figure_next_to_its_goal_and_the_scale_model(
    results: dict[str, dict],
) -> None:
    budget = results["budget"]
    on, off = budget["runs"]["verify-on"], budget["runs"]["verify-off"]
    ratio = next(g for g in budget["goals"] if g["figure"].startswith("every redelivery done"))
    assert ratio["value"] == round(on["all_final_seconds"] / off["all_final_seconds"], 2)
    assert ratio["goal"] == "≤ 1.1"
    for goal in budget["goals"]:
        assert goal["figure"] in budget["stdout"]
    assert "scale model: 100,000 events over 25,000 conversations" in budget["stdout"]
    assert [row["verification"] for row in budget["scale"]["models"]] == [
        "measured",
        "batch of 100",
        "single GETs (before the batch)",
    ]


def test_ingest_puts_every_message_in_the_ledger_and_the_broker(results: dict[str, dict]) -> None:
    for run in results["ingest"]["runs"]:
        assert run["messages"] == QUICK_EVENTS
        assert run["ledger_items"] == QUICK_EVENTS
        # The Lambda's handler: at least one task per event. SQS may hand the same
        # message out twice; the second hand-off of a still `received` item enqueues it
        # again, which the ledger's claim makes harmless. The poller parks each line's
        # pass while it drains: a line's first event has its task, the line its pass sent
        # at the drain's end, the presence event its own task.
        least = QUICK_EVENTS if run["front_door"].startswith("lambda") else 2 * 5 + 1
        assert least <= run["broker_queued"] <= 2 * QUICK_EVENTS
        assert run["messages_per_second"] > 0
        assert run.get("dlq_left", 0) == 0
        assert run.get("batch_item_failures", 0) == 0
