"""The CPU floor of one replayed event: what the mandatory libraries alone cost, measured.

Mode: each library operation in this process, alone and in the worker pool's threads (and
Celery's no-op task in a worker).

Issue 14 asks for at most 5 ms of worker CPU per event. Whether that is reachable at all
depends on what boto3, requests, redis-py and Celery cost per call on the machine, with
none of the project's decisions around them. Each operation an event needs is timed here
on its own, on the same stack as the other benchmarks:

- a ledger claim and its finish (two UpdateItem): the project's `Ledger` on a boto3
  client built as the worker builds it (`tasks/runtime.py`), against the DynamoDB server
  of `--dynamodb`, on `received` items that `put_received` wrote from real DLQ messages;
- a ledger query of one conversation of four items (`by_conversation`, one Query);
- a POST of the event to the target: `dlq.targets.http.post_event` on the product's
  pooled Session, to the benchmark sink;
- one Redis command: a redis-py GET round trip;
- one task sent: Celery's `send_task` of the no-op task, the sender's CPU (the workers send
  the tracking and verification tasks);
- one Celery task: Celery's builtin `celery.accumulate` (no project code) run by a real
  worker (`--pool`, threads:16 by default). Its CPU is the worker's process tree's, from
  /proc, while it drains the tasks, less what the same worker used idle, at the rate
  measured just before. The tasks are queued before the worker starts, in the replay
  queue it does not consume yet: it starts on a queue of its own holding a few warm-up
  tasks, runs those, sits idle (the idle measurement), and is then told to consume the
  replay queue too (one remote-control command), so it meets a full queue.

The first five run in this process, after a few uncounted warm-up calls: N calls of each
in 8 rounds, the five in turn within a round, and each operation's cost is its median
round (the spread of the rounds is kept, and gives the floor's). Within a round each
operation's calls are made twice: alone, in one thread, then spread over as many threads
as the worker's thread pool has (16 by default; a prefork child makes its calls alone),
all at once, as the pool makes them; a call's CPU is its thread's (`time.thread_time`).
The floor is priced at the pool's threads; the same sum with every call made alone is
`floor_one_thread_cpu_ms_per_event`, which a worker of 16 threads cannot reach: in 16
threads a POST costs its caller 1.3-1.5x the CPU it costs alone, a Redis round trip
2.2-2.5x and a `send_task` 1.2-1.5x, the threads handing the GIL to each other around
every socket call (about 20 context switches a POST in 16 threads, 1 alone), while a
ledger claim and finish costs 0.84-0.96x (docs/performance.md).

The floor per event is each cost times how often the standard workload needs it, from
`bench/results/cost.json` when `bench.cost` has run (else the defaults: one claim and
finish, a quarter of a query, one POST, 11 Redis commands, 1.25 tasks, 0.25 sent). The
broker's own commands (the BRPOP that takes a task, kombu's bookkeeping of it until its
ack, the LPUSH that sends one) are in the task's and the send's figures: the Redis count
priced is the rest, the commands a run made less those, counted on the redis-server
while the floor's tasks ran and were sent (`broker_commands`). `bench.cost` counts Redis
in commands, each priced here as a round trip: more than the floor where a pipeline or a
script carries several (`bench.deployed` counts the workers' round trips). It is a lower
bound: a worker of that pool pays at least this.

    .venv/bin/python -m bench.floor            # 400 calls of each, 500 tasks
    .venv/bin/python -m bench.floor --quick    # 30 calls of each, 100 tasks
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import socket
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import redis

from bench import backends
from bench.common import (
    RESULTS_DIR,
    BenchStack,
    RedisTraffic,
    WorkloadSpec,
    bench_stack,
    count_in_log,
    lambda_record,
    machine,
    redis_traffic,
    stop_child,
    write_results,
)
from bench.cpu import tree_cpu_seconds
from bench.worker import Pool, Worker, pools_option, start_worker, wait_ready
from dlq.aws import aws_client
from dlq.events import DlqMessage, ParsedEvent, parse_dlq_message
from dlq.ledger import Status
from dlq.ledger.store import Ledger
from dlq.targets.delivery import Replay
from dlq.targets.http import new_session, post_event
from tasks.names import REPLAY_QUEUE

RESULTS = RESULTS_DIR / "floor.json"
COST = RESULTS_DIR / "cost.json"
WARM_UP = 5
#: The calls of each operation are made in this many rounds, the operations in turn.
ROUNDS = 8
GOAL_MS = 5.0
#: Celery's own no-op task (celery/app/builtins.py): what any task costs a worker.
TASK = "celery.accumulate"
#: The worker's first queue: the warm-up tasks, then nothing (its idle measurement).
WARM_QUEUE = "bench-floor-warm"
#: The tasks the replay workers send themselves (the poller or the Lambda sends the rest).
WORKER_SENT = frozenset({"dlq.track", "dlq.verify"})
#: Celery's line for a task that ran (`celery.app.trace`, INFO).
SUCCEEDED = "] succeeded in "
#: Counts per event when no cost.json says what the standard workload needed.
#: (Redis: every command the run counted, the broker's included; see `without_broker`.)
DEFAULT_PER_EVENT = {
    "claim_finish": 1.0,
    "query": 0.25,
    "post": 1.0,
    "redis": 11.0,
    "task": 1.25,
    "sent": 0.25,
}
LABELS = {
    "claim_finish": "ledger claim + finish (2 UpdateItem, boto3)",
    "query": "ledger query of a conversation (Query, boto3)",
    "post": "POST to the target, or a Genesys call (requests)",
    "redis": "one Redis round trip (redis-py GET), not the broker's",
    "task": "one Celery task (celery.accumulate, worker CPU)",
    "sent": "one task sent (Celery send_task, the sender's CPU)",
}
#: Where the floor's sent tasks go (emptied after): no worker consumes it.
SENT_QUEUE = "bench-floor-sent"
#: Tasks sent, apart from the timed ones, to count the broker's commands for one.
SENT_COUNTED = 20
#: Commands redis-server counts that are the benchmark's own, never a worker's: its
#: polls of a queue's length, and the INFO that reads the counts.
BENCH_COMMANDS = frozenset({"llen", "info"})
#: How the broker's share of a task is counted: in commands, and in round trips.
BROKER_UNITS = ("broker_commands", "broker_round_trips")


def timed(
    operations: Mapping[str, Callable[[int], object]],
    n: int,
    *,
    rounds: int = 1,
    threads: int = 1,
) -> dict[str, dict[str, Any]]:
    """CPU and wall ms per call of each `operation(i)`, after a few uncounted warm-up calls:
    `rounds` rounds of n // rounds calls (i from WARM_UP on, each once), the operations
    in turn within each round, so that a slow spell of the machine falls on all of them
    rather than on one. Each operation's figures are its rounds' medians (`summary`).

    `threads` above 1: each round makes each operation's calls twice, first in this thread
    alone (the figures' `one_thread`), then spread over that many threads at once, as a
    worker's thread pool makes them (the figures). A call's CPU is its thread's
    (`time.thread_time`): in threads it includes what the threads' taking turns at the
    GIL costs the caller."""
    for operation in operations.values():
        for i in range(WARM_UP):
            operation(i)
    per_round = max(n // rounds, 1)
    series = (1, threads) if threads > 1 else (1,)
    measured = {(name, t): _no_rounds() for name in operations for t in series}
    indices = {name: itertools.count(WARM_UP) for name in operations}
    with ThreadPoolExecutor(threads, thread_name_prefix="floor") as pool:
        for _ in range(rounds):
            for name, operation in operations.items():
                for t in series:
                    calls = [next(indices[name]) for _ in range(per_round)]
                    wall = time.perf_counter()
                    if t == 1:
                        cpu = _thread_cpu(operation, calls)
                    else:
                        cpu = sum(pool.map(partial(_thread_cpu, operation), _dealt(calls, t)))
                    figures = measured[name, t]
                    figures["cpu_ms_rounds"].append(cpu * 1000 / per_round)
                    figures["wall_ms_rounds"].append(
                        (time.perf_counter() - wall) * 1000 / per_round
                    )
                    figures["calls"] += per_round
    return {
        name: summary(measured[name, threads])
        | ({"threads": threads, "one_thread": summary(measured[name, 1])} if threads > 1 else {})
        for name in operations
    }


def _thread_cpu(operation: Callable[[int], object], calls: Sequence[int]) -> float:
    """The calling thread's CPU seconds for `operation(i)` of each i."""
    started = time.thread_time()
    for i in calls:
        operation(i)
    return time.thread_time() - started


def _dealt(calls: Sequence[int], hands: int) -> list[Sequence[int]]:
    """`calls` dealt round-robin into `hands` (fewer when there are fewer calls)."""
    return [calls[k::hands] for k in range(min(hands, len(calls)))]


def pooled(*measurements: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rounds of several `timed` measurements of the same operations, as one (their
    `one_thread` rounds too; a count of the broker's commands, the mean of theirs)."""
    merged: dict[str, dict[str, Any]] = {}
    alone: dict[str, dict[str, Any]] = {}
    threads: dict[str, int] = {}
    broker: dict[tuple[str, str], list[float]] = {}
    for measurement in measurements:
        for name, figures in measurement.items():
            _add_rounds(merged.setdefault(name, _no_rounds()), figures)
            if "one_thread" in figures:
                _add_rounds(alone.setdefault(name, _no_rounds()), figures["one_thread"])
                threads[name] = figures["threads"]
            for unit in BROKER_UNITS:
                if unit in figures:
                    broker.setdefault((name, unit), []).append(figures[unit])
    return {
        name: summary(figures)
        | ({"threads": threads[name], "one_thread": summary(alone[name])} if name in alone else {})
        | {
            unit: round(statistics.mean(broker[name, unit]), 3)
            for unit in BROKER_UNITS
            if (name, unit) in broker
        }
        for name, figures in merged.items()
    }


def _add_rounds(into: dict[str, Any], figures: Mapping[str, Any]) -> None:
    into["cpu_ms_rounds"] += figures["cpu_ms_rounds"]
    into["wall_ms_rounds"] += figures["wall_ms_rounds"]
    into["calls"] += figures["calls"]


def _no_rounds() -> dict[str, Any]:
    return {"cpu_ms_rounds": [], "wall_ms_rounds": [], "calls": 0}


def summary(figures: Mapping[str, Any]) -> dict[str, Any]:
    """An operation's median round, and the spread of its rounds (lowest, highest)."""
    cpu, wall = figures["cpu_ms_rounds"], figures["wall_ms_rounds"]
    return {
        "cpu_ms": round(statistics.median(cpu), 3),
        "wall_ms": round(statistics.median(wall), 3),
        "calls": figures["calls"],
        "rounds": len(cpu),
        "cpu_ms_low": round(min(cpu), 3),
        "cpu_ms_high": round(max(cpu), 3),
        "cpu_ms_rounds": [round(ms, 3) for ms in cpu],
        "wall_ms_rounds": [round(ms, 3) for ms in wall],
    }


def received(ledger: Ledger, n: int) -> list[tuple[ParsedEvent, DlqMessage]]:
    """At least `n` real DLQ messages, in whole conversations of four, put in as `received`."""
    spec = WorkloadSpec(conversations=math.ceil(n / 4), presence_events=0)
    events = []
    for synthetic in spec.generate().messages:
        message = DlqMessage.from_lambda_record(lambda_record(synthetic))
        parsed = parse_dlq_message(message)
        ledger.put_received(parsed, message)
        events.append((parsed, message))
    return events


def in_process(
    stack: BenchStack, table: str, n: int, *, rounds: int = 1, threads: int = 1
) -> dict[str, dict[str, Any]]:
    """The ledger, the POST, the Redis command and the task sent, each timed in this
    process, in `rounds` rounds of them all, alone and in `threads` threads (`timed`)."""
    config = stack.settings
    # As the worker builds it (tasks/runtime.py): no client-side parameter validation.
    dynamodb = aws_client("dynamodb", config, pool_size=64, validate=False)
    ledger = Ledger(dynamodb, table, ttl_days=config.ledger_ttl_days)
    events = received(ledger, n * (2 if threads > 1 else 1) + WARM_UP)
    conversations = sorted(
        {parsed.conversation_id for parsed, _ in events if parsed.conversation_id}
    )
    if len(ledger.by_conversation(conversations[0])) != 4:
        raise RuntimeError("the workload's conversations should hold four ledger items each")

    def claim_finish(i: int) -> None:
        claimed = ledger.claim(events[i][0].key, lease_seconds=config.replay_lease_seconds)
        ledger.finish(claimed, Status.REPLAYED, outcome="replayed")

    def query(i: int) -> None:
        ledger.by_conversation(conversations[i % len(conversations)])

    session = new_session()
    replays = [
        Replay(
            target_arn=parsed.key.target_arn,
            delivered_to=parsed.key.target_arn,
            event_id=parsed.key.event_id,
            body=message.body,
            conversation_id=parsed.conversation_id,
            rule_arn=parsed.key.rule_arn,
        )
        for parsed, message in events
    ]

    def post(i: int) -> None:
        post_event(session, stack.sink.url, replays[i], timeout=config.send_timeouts)

    client = redis.Redis.from_url(stack.dev.redis.url)
    client.set("bench:floor", "x" * 32)

    def command(i: int) -> None:
        client.get("bench:floor")

    app = celery_app()

    def sent(i: int) -> None:
        app.send_task(TASK, args=[1], queue=SENT_QUEUE)

    # Claims first: the queries then read conversations of finished items, as tracking does.
    operations = {
        "claim_finish": claim_finish,
        "query": query,
        "post": post,
        "redis": command,
        "sent": sent,
    }
    try:
        costs = timed(operations, n, rounds=rounds, threads=threads)
        before = redis_traffic(client)
        for _ in range(SENT_COUNTED):
            sent(0)
        traffic = redis_traffic(client).since(before)
        costs["sent"]["broker_commands"] = broker_commands(traffic.commands, SENT_COUNTED)
        costs["sent"]["broker_round_trips"] = broker_round_trips(traffic, SENT_COUNTED)
    finally:
        client.delete(SENT_QUEUE)
    return costs


def threads_of(pool: Pool) -> int:
    """How many threads of one worker process make its calls at once: the thread pool's
    size; a prefork child makes them alone."""
    return pool.concurrency if pool.kind == "threads" else 1


def celery_app() -> Any:
    """The project's Celery app. Imported here, not at the top: it reads its broker URL
    from the stack's environment."""
    from tasks.application import app

    return app


def broker_commands(commands: Mapping[str, int], per: float, *, idle: float = 0.0) -> float:
    """Redis commands per task (run or sent), or per second, in a count of a Celery
    broker's commands, less the benchmark's own and `idle` (what the worker sent
    meanwhile at rest)."""
    counted = sum(n for name, n in commands.items() if name not in BENCH_COMMANDS)
    return round(max(counted - idle, 0.0) / per, 3)


def requests_not_ours(traffic: RedisTraffic) -> int:
    """The requests the redis-server read, less the benchmark's own (each of its commands
    one request)."""
    return traffic.requests - sum(
        n for name, n in traffic.commands.items() if name in BENCH_COMMANDS
    )


def broker_round_trips(traffic: RedisTraffic, per: float, *, idle: float = 0.0) -> float:
    """Round trips to Redis per task (run or sent), or per second: `requests_not_ours`,
    less `idle`."""
    return round(max(requests_not_ours(traffic) - idle, 0.0) / per, 3)


def without_broker(
    counts: Mapping[str, float],
    costs: Mapping[str, Mapping[str, Any]],
    *,
    unit: str = "broker_commands",
) -> dict[str, float]:
    """`counts` with Redis the project's own: less the broker's taking and sending tasks,
    which the task's and the send's figures hold already, in the count's `unit`
    (`broker_commands`, or `broker_round_trips` when Redis is counted in round trips)."""
    broker = sum(
        counts.get(name, 0.0) * float(costs[name].get(unit, 0.0)) for name in ("task", "sent")
    )
    return {**counts, "redis": round(max(counts["redis"] - broker, 0.0), 3)}


#: A task sent: seconds after the first send, and its countdown (None: none).
Send = tuple[float, float | None]


def celery_tasks(
    stack: BenchStack,
    table: str,
    n: int,
    pool: Pool,
    *,
    idle_seconds: float,
    schedule: Sequence[Send] = (),
) -> dict[str, Any]:
    """Worker CPU per task of Celery's builtin no-op task, less the same worker idle.

    Without `schedule`, `n` tasks wait in the queue before the worker takes any (a burst:
    Celery's cheapest case). With it, the worker consumes first, and the tasks are sent
    as `schedule` says, each at its time and with its countdown (`n`, its length):
    a worker woken for each task, holding the counted-down ones on its timer, costs
    Celery 2-3x a burst's CPU a task (docs/performance.md), and that is how tasks reach
    a deployed worker."""
    app = celery_app()
    for _ in range(WARM_UP):
        app.send_task(TASK, args=[1], queue=WARM_QUEUE)
    if schedule:
        if n != len(schedule):
            raise ValueError(f"{n} tasks asked for, {len(schedule)} scheduled")
    else:
        for _ in range(n):
            app.send_task(TASK, args=[1], queue=REPLAY_QUEUE)
        queued = int(stack.redis.llen(REPLAY_QUEUE))
        if queued != n:
            raise RuntimeError(f"{queued} tasks in the replay queue, {n} sent")
    name = f"worker-{stack.rounds:02d}-floor{'-scheduled' if schedule else ''}"
    worker = start_worker(stack.dev, pool, stack.worker_env(table), name=name, queues=WARM_QUEUE)
    try:
        wait_ready(worker)
        _wait_succeeded(stack, worker, WARM_UP, queue=WARM_QUEUE, timeout=60.0)
        time.sleep(0.5)  # what follows a task (acknowledging, the next poll) is done
        idle_from, idle_cpu = time.perf_counter(), tree_cpu_seconds(worker.pid)
        at_rest = redis_traffic(stack.redis)
        time.sleep(idle_seconds)
        started, cpu = time.perf_counter(), tree_cpu_seconds(worker.pid)
        at_start = redis_traffic(stack.redis)
        idle_rate = (cpu - idle_cpu) / (started - idle_from)
        # The broker's commands and round trips per second of the idle worker (its polls).
        idle = at_start.since(at_rest)
        idle_command_rate = broker_commands(idle.commands, started - idle_from)
        idle_trip_rate = broker_round_trips(idle, started - idle_from)
        answer = app.control.add_consumer(
            REPLAY_QUEUE,
            destination=[f"{name}@{socket.gethostname()}"],
            reply=True,
            timeout=10.0,
        )
        if not any("ok" in reply for each in answer for reply in each.values()):
            raise RuntimeError(f"add_consumer answered {answer}; see {worker.log}")
        if schedule:
            _send_as(app, schedule)
        _wait_succeeded(stack, worker, WARM_UP + n, queue=REPLAY_QUEUE, timeout=300.0)
        drained = time.perf_counter() - started
        busy = tree_cpu_seconds(worker.pid) - cpu
        ran = redis_traffic(stack.redis).since(at_start)
    finally:
        stop_child(worker.process)
    task_cpu = busy - idle_rate * drained
    if task_cpu <= 0:
        raise RuntimeError(
            f"{n} tasks took no measurable CPU beyond the idle worker's: run more (--tasks)"
        )
    finished = _succeeded_at(worker.log)[WARM_UP:]
    arrival = (
        {"sent": "burst"}
        if not schedule
        else {
            "sent": "as scheduled",
            "over_seconds": round(schedule[-1][0] - schedule[0][0], 3),
            "with_countdown": sum(1 for _, countdown in schedule if countdown is not None),
            "countdown_seconds_max": max(
                (countdown for _, countdown in schedule if countdown is not None), default=0.0
            ),
        }
    )
    return {
        "cpu_ms": round(task_cpu * 1000 / n, 3),
        "arrival": arrival,
        # The pool's pace, first to last task, not one task's latency: the queue's first
        # poll after add_consumer (up to a second) is left out.
        "wall_ms": round((finished[-1] - finished[0]) * 1000 / max(n - 1, 1), 3),
        "calls": n,
        "pool": pool.label,
        "worker_cpu_seconds": round(busy, 3),
        "idle_cpu_ms_per_second": round(idle_rate * 1000, 2),
        "measured_seconds": round(drained, 3),
        # The add_consumer command's own few are in it (a task's are about nine); tasks
        # sent as scheduled were sent in it, one LPUSH each (the send's, not the run's).
        "broker_commands": broker_commands(
            ran.commands, n, idle=idle_command_rate * drained + (n if schedule else 0)
        ),
        "broker_round_trips": broker_round_trips(
            ran, n, idle=idle_trip_rate * drained + (n if schedule else 0)
        ),
    }


def _send_as(app: Any, schedule: Sequence[Send]) -> None:
    """Send one no-op task per `schedule` entry, at its time, with its countdown."""
    start, first = time.monotonic(), schedule[0][0]
    for at, countdown in schedule:
        wait = start + (at - first) - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        app.send_task(TASK, args=[1], queue=REPLAY_QUEUE, countdown=countdown)


def _succeeded_at(log: Path) -> list[float]:
    """When each task of the worker's JSON log succeeded, earliest first (epoch seconds)."""
    times = []
    with log.open(errors="replace") as lines:
        for line in lines:
            if line.startswith("{") and SUCCEEDED in line:
                times.append(datetime.fromisoformat(json.loads(line)["time"]).timestamp())
    return sorted(times)


def _wait_succeeded(
    stack: BenchStack, worker: Worker, expected: int, *, queue: str, timeout: float
) -> None:
    """Until the worker's log shows `expected` tasks succeeded and `queue` is empty."""
    deadline = time.monotonic() + timeout
    # The queue first: the log is read only once the worker has taken every task.
    while stack.redis.llen(queue) or count_in_log(worker.log, SUCCEEDED) < expected:
        if worker.process.poll() is not None:
            raise RuntimeError(f"the worker exited; see {worker.log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {expected} tasks succeeded after {timeout:.0f} s")
        time.sleep(0.02)


def per_event(cost: Path) -> dict[str, Any]:
    """How often an event of the standard workload needs each operation, and whence."""
    if not cost.exists():
        return {
            "counts": dict(DEFAULT_PER_EVENT),
            "source": f"defaults (no {_shown(cost)})",
            "measured_worker_cpu_ms_per_event": None,
        }
    figures = json.loads(cost.read_text())
    worker, events = figures["worker"], figures["events"]
    tasks = worker.get("tasks")
    counts = operation_counts(
        worker["aws_by_operation"],
        redis_per_event=float(worker["redis_commands_per_event"]),
        tasks_per_event=sum(tasks.values()) / events if tasks else DEFAULT_PER_EVENT["task"],
        # Pre-filled, the workers send the tracking and verification tasks, no other.
        sent_per_event=sum(n for name, n in tasks.items() if name in WORKER_SENT) / events
        if tasks
        else DEFAULT_PER_EVENT["sent"],
        events=events,
    )
    measured = (figures.get("machine") or {}).get("measured_at", "at an unknown time")
    pool = f"{figures.get('pool')}:{figures.get('concurrency')}"
    return {
        "counts": counts,
        "source": f"{_shown(cost)} (bench.cost, {pool}, measured {measured})",
        "measured_worker_cpu_ms_per_event": worker.get("cpu_ms_per_event"),
    }


def operation_counts(
    aws_by_operation: Mapping[str, int],
    *,
    redis_per_event: float,
    tasks_per_event: float,
    sent_per_event: float,
    events: int,
    genesys_per_event: float = 0.0,
) -> dict[str, float]:
    """How often an event needed each operation, from a run's counts (every event of the
    standard workload is redelivered once: one POST; `genesys_per_event`: the Genesys
    calls, each an HTTP request through requests as the POST is, priced as one). Redis
    is every command counted, the broker's included (`without_broker` takes those out
    once their count per task is measured)."""
    counts = {
        "claim_finish": aws_by_operation.get("dynamodb.UpdateItem", 0) / 2 / events,
        "query": aws_by_operation.get("dynamodb.Query", 0) / events,
        "post": 1.0 + genesys_per_event,
        "redis": redis_per_event,
        "task": tasks_per_event,
        "sent": sent_per_event,
    }
    return {name: round(count, 3) for name, count in counts.items()}


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(RESULTS_DIR.parent.parent))
    except ValueError:
        return str(path)


def compose(costs: Mapping[str, Mapping[str, Any]], counts: Mapping[str, float]) -> dict[str, Any]:
    """Each operation's cost per event, and the floor: their sum. Measured in threads too
    (`timed`), the floor is at that many threads, and `floor_one_thread_cpu_ms_per_event`
    has every operation made alone (the task aside: a worker's pool runs it)."""
    operations = {
        name: {
            "label": LABELS[name],
            **cost,
            "per_event": counts[name],
            "cpu_ms_per_event": round(cost["cpu_ms"] * counts[name], 3),
        }
        for name, cost in costs.items()
    }
    floor = round(sum(part["cpu_ms_per_event"] for part in operations.values()), 3)

    def bound(end: str) -> float:
        """The floor with every operation at its lowest (highest) round."""
        return round(
            sum(float(cost.get(end, cost["cpu_ms"])) * counts[n] for n, cost in costs.items()), 3
        )

    alone = round(
        sum(float(cost.get("one_thread", cost)["cpu_ms"]) * counts[n] for n, cost in costs.items()),
        3,
    )
    return {
        "operations": operations,
        "floor_cpu_ms_per_event": floor,
        "floor_cpu_ms_per_event_spread": [bound("cpu_ms_low"), bound("cpu_ms_high")],
        **(
            {"floor_one_thread_cpu_ms_per_event": alone}
            if any("one_thread" in cost for cost in costs.values())
            else {}
        ),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    with bench_stack("floor", dynamodb=args.dynamodb) as stack:
        table = stack.fresh_round("floor")
        costs = in_process(
            stack, table, args.calls, rounds=args.rounds, threads=threads_of(args.pool[0])
        )
        costs["task"] = celery_tasks(
            stack, table, args.tasks, args.pool[0], idle_seconds=1.0 if args.quick else 3.0
        )
        backend = stack.backend.describe()
    counts = per_event(args.cost)
    composed = compose(costs, without_broker(counts["counts"], costs))
    measured = counts["measured_worker_cpu_ms_per_event"]
    floor = composed["floor_cpu_ms_per_event"]
    return {
        "benchmark": "floor",
        "machine": machine(),
        "dynamodb_backend": backend,
        "calls_per_operation": args.calls,
        "tasks": args.tasks,
        "per_event_source": counts["source"],
        **composed,
        "goal_cpu_ms_per_event": GOAL_MS,
        "measured_worker_cpu_ms_per_event": measured,
        "floor_of_measured": round(floor / measured, 3) if measured else None,
        "measured_as": "each operation in this process, in as many threads as the pool's "
        "(the floor) and alone (the one-thread floor), the task in the pool: lower bounds",
    }


def format_floor(figures: Mapping[str, Any]) -> str:
    header = (
        f"{'component':50} {'CPU ms/op':>9} {'wall ms/op':>10} {'per event':>9} {'ms/event':>8}"
    )
    lines = [f"  {header}"]
    for part in figures["operations"].values():
        lines.append(
            f"  {part['label']:50} {part['cpu_ms']:9.3f} {part['wall_ms']:10.3f} "
            f"{part['per_event']:9.3f} {part['cpu_ms_per_event']:8.3f}"
        )
    floor, goal = figures["floor_cpu_ms_per_event"], figures["goal_cpu_ms_per_event"]
    lines += [
        f"  floor: what the libraries alone cost per event, with no project code (the ledger's "
        f"own marshalling aside): {floor:.2f} ms of CPU",
        *(
            [f"  the floor with each call made alone, in one thread: {alone:.2f} ms of CPU"]
            if (alone := figures.get("floor_one_thread_cpu_ms_per_event"))
            else []
        ),
        f"  goal (issue 14): {goal:g} ms of worker CPU per event",
    ]
    if measured := figures["measured_worker_cpu_ms_per_event"]:
        lines.append(
            f"  measured worker CPU per event (bench.cost): {measured:g} ms; the floor explains "
            f"{figures['floor_of_measured']:.0%} of it"
        )
    lines += [
        f"  counts per event from {figures['per_event_source']}",
        "  lower bounds: the calls made in this process, in the pool's threads and alone",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, help="timed calls of each operation; 400")
    parser.add_argument("--tasks", type=int, help="Celery tasks; 500")
    parser.add_argument("--quick", action="store_true", help="30 calls of each, 100 tasks")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"of the calls; {ROUNDS}")
    parser.add_argument(
        "--pool", type=pools_option, default=[Pool("threads", 16)], help="e.g. threads:16"
    )
    parser.add_argument("--cost", type=Path, default=COST, help="bench.cost's results")
    backends.add_option(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if len(args.pool) != 1:
        parser.error("--pool takes one pool")
    args.calls = args.calls or (30 if args.quick else 400)
    # Tasks are cheap, and /proc counts CPU in 10 ms ticks: enough of them to measure.
    args.tasks = args.tasks or (100 if args.quick else 500)
    if args.calls < 1 or args.tasks < 2 or not 1 <= args.rounds <= args.calls:
        parser.error("--calls is at least 1, --tasks at least 2, --rounds 1 to --calls")
    figures = measure(args)
    write_results(args.output, figures)
    print(format_floor(figures))
    print(f"  written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
