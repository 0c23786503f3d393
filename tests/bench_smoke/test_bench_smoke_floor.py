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
import threading
from collections.abc import Callable

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
    # In round trips too (bench.deployed counts the workers' Redis so): a send is one LPUSH.
    assert parts["task"]["broker_round_trips"] > 0.5
    assert parts["sent"]["broker_round_trips"] == pytest.approx(1.0, abs=0.1)
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


def test_the_calls_are_timed_in_the_worker_pools_threads_and_alone(floor: dict) -> None:
    parts = floor["operations"]
    in_process = {name: part for name, part in parts.items() if name != "task"}

    for part in in_process.values():
        assert part["threads"] == 16  # bench.floor's default pool, threads:16
        alone = part["one_thread"]
        assert alone["rounds"] == len(alone["cpu_ms_rounds"]) == bench_floor.ROUNDS
        assert alone["calls"] == part["calls"]
    # The task is priced as the pool runs it, in both floors.
    alone = sum(
        part.get("one_thread", part)["cpu_ms"] * part["per_event"] for part in parts.values()
    )
    assert floor["floor_one_thread_cpu_ms_per_event"] == pytest.approx(alone, abs=0.005)


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
    assert "one_thread" not in both["a"]


def test_in_threads_each_round_makes_every_call_once_alone_then_spread_over_the_threads() -> None:
    made: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def operation(name: str) -> Callable[[int], None]:
        def call(i: int) -> None:
            with lock:
                made.append((name, i, threading.current_thread().name))

        return call

    operations = {"a": operation("a"), "b": operation("b")}
    measured = bench_floor.timed(operations, 12, rounds=2, threads=3)

    start = bench_floor.WARM_UP
    for name in operations:
        indices = [i for each, i, _ in made if each == name][bench_floor.WARM_UP :]
        assert sorted(indices) == list(range(start, start + 24))  # each i once
        # Round one: six alone, then six in threads; round two the same.
        alone = [t for each, i, t in made if each == name and i >= start][:6]
        spread = {t for each, i, t in made if each == name and start + 6 <= i < start + 12}
        assert alone == [threading.current_thread().name] * 6
        assert 1 <= len(spread) <= 3 and threading.current_thread().name not in spread
        figures = measured[name]
        assert figures["threads"] == 3
        assert figures["calls"] == figures["one_thread"]["calls"] == 12
        assert figures["rounds"] == figures["one_thread"]["rounds"] == 2

    again = bench_floor.timed(operations, 6, rounds=1, threads=3)
    both = bench_floor.pooled(measured, again)
    assert both["a"]["threads"] == 3
    assert both["a"]["one_thread"]["rounds"] == 3
    assert both["a"]["one_thread"]["cpu_ms_rounds"] == (
        measured["a"]["one_thread"]["cpu_ms_rounds"] + again["a"]["one_thread"]["cpu_ms_rounds"]
    )
