"""The CPU floor benchmark runs in its quick mode and adds up.

Every component of an event gets a CPU figure and the floor is their sum per event; how
small the figures are is for `python -m bench.floor` to say, never for a test. DynamoDB
on moto (`--dynamodb moto`), as in the other smoke tests, and no cost.json: the floor
then uses its default counts per event.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest
from helpers import REPO

from bench import floor as bench_floor

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("floor")
    argv = [sys.executable, "-m", "bench.floor", "--quick", "--dynamodb", "moto"]
    argv += ["--cost", str(out / "no-cost.json"), "--output", str(out / "floor.json")]
    done = subprocess.run(
        argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=150
    )
    assert done.returncode == 0, f"bench.floor failed:\n{done.stdout[-4000:]}"
    figures: dict = json.loads((out / "floor.json").read_text())
    figures["stdout"] = done.stdout
    return figures


def test_every_component_of_an_event_gets_a_cpu_figure(floor: dict) -> None:
    parts = floor["operations"]

    assert set(parts) == {"claim_finish", "query", "post", "redis", "task", "sent"}
    assert all(part["cpu_ms"] > 0 for part in parts.values())
    assert "DynamoDB backend: moto (asked for with --dynamodb moto)" in floor["stdout"]
    assert "floor:" in floor["stdout"]


def test_the_floor_is_the_sum_of_each_component_times_its_count_per_event(floor: dict) -> None:
    parts = floor["operations"]

    assert floor["per_event_source"].startswith("defaults")
    per_event = {name: part["per_event"] for name, part in parts.items()}
    assert per_event | {"redis": None} == {
        "claim_finish": 1.0,
        "query": 0.25,
        "post": 1.0,
        "redis": None,
        "task": 1.25,
        "sent": 0.25,
    }
    # The 11 Redis commands counted less the broker's for the tasks run and sent, which
    # their own figures hold: the BRPOP that takes a task, the LPUSH that sends one.
    task, sent = parts["task"]["broker_commands"], parts["sent"]["broker_commands"]
    assert task > 0.5 and sent >= 1
    assert per_event["redis"] == pytest.approx(11.0 - 1.25 * task - 0.25 * sent, abs=0.002)
    total = sum(part["cpu_ms"] * part["per_event"] for part in parts.values())
    assert floor["floor_cpu_ms_per_event"] == pytest.approx(total, abs=0.005)


def test_each_component_is_its_median_round_and_the_floor_reports_the_rounds_spread(
    floor: dict,
) -> None:
    measured = {name: part for name, part in floor["operations"].items() if name != "task"}
    for part in measured.values():
        assert part["rounds"] == len(part["cpu_ms_rounds"]) == bench_floor.ROUNDS
        assert part["cpu_ms"] == pytest.approx(statistics.median(part["cpu_ms_rounds"]), abs=1e-3)
        assert part["cpu_ms_low"] == min(part["cpu_ms_rounds"])
        assert part["cpu_ms_high"] == max(part["cpu_ms_rounds"])
    low, high = floor["floor_cpu_ms_per_event_spread"]
    assert low <= floor["floor_cpu_ms_per_event"] <= high


def test_rounds_take_the_operations_in_turn_and_pool_into_one_measurement() -> None:
    calls: list[tuple[str, int]] = []
    operations = {name: lambda i, name=name: calls.append((name, i)) for name in ("a", "b")}

    first = bench_floor.timed(operations, 4, rounds=2)
    measured = calls[2 * bench_floor.WARM_UP :]  # after each one's warm-up calls
    start = bench_floor.WARM_UP
    assert measured == [
        *[("a", i) for i in (start, start + 1)],
        *[("b", i) for i in (start, start + 1)],
        *[("a", i) for i in (start + 2, start + 3)],
        *[("b", i) for i in (start + 2, start + 3)],
    ]
    both = bench_floor.pooled(first, bench_floor.timed(operations, 6, rounds=3))
    assert both["a"]["rounds"] == 5
    assert both["a"]["calls"] == 10
    assert (
        both["a"]["cpu_ms_rounds"] == first["a"]["cpu_ms_rounds"] + both["a"]["cpu_ms_rounds"][2:]
    )
