"""The end-to-end benchmarks run in their quick mode and report consistent figures.

They only have to run and add up (every event final, each redelivered once, counts that
match the workload); how fast is for `make bench` to say, never for a test. The three
benchmark processes run side by side, each with its own stack.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUICK_EVENTS = 5 * 4 + 1  # bench.common.QUICK: 5 conversations of 4 events, 1 presence

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("bench")
    extra = {"drain": ["--chart", str(out / "drain.png")]}
    procs = {}
    for name in ("drain", "budget", "ingest"):
        argv = [sys.executable, "-m", f"bench.{name}", "--quick"]
        argv += ["--output", str(out / f"{name}.json"), *extra.get(name, [])]
        procs[name] = subprocess.Popen(
            argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
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


def test_drain_looks_each_conversation_up_once_when_verifying(results: dict[str, dict]) -> None:
    for point in results["drain"]["sweep"]:
        expected = 5 if point["verify_conversation"] else 0
        assert point["genesys_lookups"] == expected
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
    assert cost["ingest"]["aws_by_operation"]["dynamodb.PutItem"] == QUICK_EVENTS
    assert cost["worker"]["dynamodb_requests"] >= 2 * QUICK_EVENTS  # claim + finish at least
    assert cost["worker"]["redis_commands"] > 0


def test_budget_stays_within_the_limit_and_tracks_every_conversation(
    results: dict[str, dict],
) -> None:
    budget = results["budget"]
    assert budget["replayed"] == QUICK_EVENTS
    assert budget["genesys_429"] == 0
    assert budget["genesys_lookups"] == 5
    assert budget["genesys_patches"] >= 5
    assert budget["tracking_settled_seconds"] >= budget["all_final_seconds"]
    assert budget["calls_needed"] == 10


def test_ingest_puts_every_message_in_the_ledger_and_the_broker(results: dict[str, dict]) -> None:
    for run in results["ingest"]["runs"]:
        assert run["messages"] == QUICK_EVENTS
        assert run["ledger_items"] == QUICK_EVENTS
        assert run["broker_queued"] == QUICK_EVENTS
        assert run["messages_per_second"] > 0
        assert run.get("dlq_left", 0) == 0
        assert run.get("batch_item_failures", 0) == 0
