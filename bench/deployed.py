"""What an event costs as deployed: the poller drains the DLQ while the workers run.

The other benchmarks fill the ledger or the broker first and start the workers after
(their mode is said in their docstrings). Deployed, the ingest takes a shuffled DLQ a
batch at a time while the README's two workers, redelivery (`-Q replay,verify`,
threads:16) and tracking (`-Q track`, threads:2), already run, and Genesys allows its
real budget (the simulator at 300 calls a minute, the workers at their default
GENESYS_RATE_LIMIT_PER_MINUTE). Counted until tracking has settled:

- Genesys calls and PATCHes, as the simulator counted them;
- the workers' AWS requests, server side, through `bench.proxy` (as `bench.cost`);
- the poller's AWS calls (a botocore handler) and Redis commands (the commands its
  threads pack, counted in this process), and redis-server's commandstats for all;
- the workers' CPU (their process trees, from /proc), less their start-up, measured on
  idle workers first; and, in the same run, the floor of the libraries alone
  (`bench.floor`'s method) for this run's mix of operations (the target's POSTs and the
  Genesys calls priced as one POST each; the tasks the workers sent, every task run less
  those the poller sent, each priced as a `send_task`; the workers' Redis round trips
  less the broker's for the tasks run and sent, which their prices hold). `bench.floor` prices
  a Celery task as the worker's CPU less what the same worker uses idle; here its no-op
  tasks are sent as the run's poller sent its tasks, each at its time with its countdown
  (a worker woken for each task, holding the counted-down ones, costs Celery two to three
  times a burst's CPU a task; the burst's price and the ratio over a floor with it are
  kept beside, `worker_over_floor_with_burst_tasks`). So here, too: each
  worker's idle rate is measured at rest (below), and `worker_over_floor` compares the
  CPU beyond it (`worker_busy_cpu_ms_per_event`) with the floor. The whole CPU, idle
  included, is `worker_cpu_ms_per_event`, over the floor `worker_over_floor_with_idle`.
  The idle rate is the mean of two spells at rest, one before the poller starts and one
  after tracking has settled (`worker_idle_cpu_ms_per_second_at`), each on the workers'
  CPU clocks (`bench.cpu`): it is multiplied by the run's minute, so 3 s read in ticks
  moved a worker's CPU by up to 0.23 s.
  The floor's calls are made half before the run and half after, in rounds, each
  operation's cost the median round; `worker_over_floor_spread` is the ratio over the
  floor of the highest rounds and of the lowest. They are made in 16 threads at once, as
  the redelivery worker's pool makes them (the tracking worker's quarter of a POST an
  event is priced so too), and alone: `worker_over_one_thread_floor` is the ratio over
  the floor of every call made alone, which no thread pool reaches (`bench.floor`);
- the machine's speed (`bench.speed`: a fixed piece of Python timed every half second in
  a child process) while the floor's rounds ran and during the run: a CPU second that buys
  less work in the run than in the rounds shows as `slowdown_in_run` above 1, and
  `worker_over_floor_at_floor_speed` is the ratio with that taken out (a diagnosis of the
  figure's spread; the goal is judged on `worker_over_floor`).

    .venv/bin/python -m bench.deployed            # 1,010 events, 250 conversations
    .venv/bin/python -m bench.deployed --quick    # 21 events
    .venv/bin/python -m bench.deployed --monitor  # and where the Redis commands go (MONITOR:
                                                  # slower; a diagnosis, not a figure)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis.connection
from celery.signals import before_task_publish

from bench import backends
from bench.common import (
    QUICK,
    RESULTS_DIR,
    STANDARD,
    BenchStack,
    WorkloadSpec,
    bench_stack,
    machine,
    per,
    redis_traffic,
    stop_child,
    wait_all_final,
    write_results,
)
from bench.cost import (
    Proxies,
    counting_aws_calls,
    service_total,
    side,
    startup_cpu,
    tasks_run,
    wait_tracking_settled,
)
from bench.cpu import tree_cpu_seconds
from bench.floor import (
    Send,
    celery_tasks,
    compose,
    in_process,
    operation_counts,
    pooled,
    requests_not_ours,
    threads_of,
    without_broker,
)
from bench.speed import SpeedProbe
from bench.worker import Pool, start_worker, wait_ready
from devstack.sim_admin import PATCH_ATTRIBUTES

RESULTS = RESULTS_DIR / "deployed.json"
#: Genesys as it is: about 300 calls a minute per OAuth client.
GENESYS_PER_MINUTE = 300
#: The README's workers: (name, queues, pool).
WORKERS = (
    ("replay", "replay,verify", Pool("threads", 16)),
    ("track", "track", Pool("threads", 2)),
)
#: How long the ready workers are watched at rest, before the poller starts (their idle
#: rate), after a pause for what follows their start (the first heartbeats, connections).
IDLE_SECONDS, SETTLE_SECONDS = 3.0, 1.0
#: The floor's rounds (half before the run, half after), as `bench.floor` makes them.
FLOOR_ROUNDS = 16
#: The issue's goals (issue 22), for the printout.
GOALS = {
    "genesys_calls_per_event": 0.26,
    "patches_per_conversation": 1.1,
    "dynamodb_per_event": 2.3,
    "redis_commands_per_event": 20.0,
    "worker_over_floor": 1.2,
}


class RedisCommandCounter:
    """Counts the Redis commands and round trips of this process's threads other than the
    main one (the poller's receivers and the producer's publishes; the benchmark's own
    looks run on the main thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.commands = 0
        self.round_trips = 0

    def count(self, *, commands: int = 1, round_trips: int = 0) -> None:
        if threading.current_thread() is not threading.main_thread():
            with self._lock:
                self.commands += commands
                self.round_trips += round_trips


@contextmanager
def counting_redis_commands() -> Iterator[RedisCommandCounter]:
    """Count every command a redis-py connection packs inside the block (pipelines too:
    each command of one goes through its serializer's `pack`), and every request it
    sends (a command, a pipeline or a script: one `send_packed_command` each)."""
    counter = RedisCommandCounter()
    serializers: list[type[Any]] = [redis.connection.PythonRespSerializer]
    if hasattr(redis.connection, "HiredisRespSerializer"):
        serializers.append(redis.connection.HiredisRespSerializer)
    originals = {cls: cls.pack for cls in serializers}
    connection = redis.connection.AbstractConnection
    send: Any = connection.send_packed_command

    def wrap(original: Any) -> Any:
        def pack(self: Any, *args: Any) -> Any:
            counter.count()
            return original(self, *args)

        return pack

    def sending(self: Any, *args: Any, **kwargs: Any) -> Any:
        counter.count(commands=0, round_trips=1)
        return send(self, *args, **kwargs)

    for cls, original in originals.items():
        cls.pack = wrap(original)
    connection.send_packed_command = sending  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        for cls, original in originals.items():
            cls.pack = original
        connection.send_packed_command = send  # type: ignore[method-assign]


class SentTasks(Counter[str]):
    """The tasks this process sent, by name, and when each was sent with what countdown
    (`schedule`: seconds since the block began, countdown or None)."""

    def __init__(self) -> None:
        super().__init__()
        self.schedule: list[Send] = []


@contextmanager
def counting_sent_tasks() -> Iterator[SentTasks]:
    """Count the tasks this process sends inside the block, by name, and note when (Celery's
    `before_task_publish`, which every `send_task` and `apply_async` fires; a countdown
    is in the message's `eta` header by then)."""
    sent = SentTasks()
    began = time.monotonic()

    def count(sender: str | None = None, headers: Mapping[str, Any] | None = None,
              **_: Any) -> None:  # fmt: skip
        sent[sender or "?"] += 1
        eta = (headers or {}).get("eta")
        countdown = (
            max((datetime.fromisoformat(eta) - datetime.now(UTC)).total_seconds(), 0.0)
            if eta
            else None
        )
        sent.schedule.append((round(time.monotonic() - began, 4), countdown))

    before_task_publish.connect(count, weak=False)
    try:
        yield sent
    finally:
        before_task_publish.disconnect(count)


#: A key's part that names one conversation, event or digest: counted as one family.
_ONE_OF_MANY = re.compile(r"[0-9a-f]{8}-[0-9a-f-]{27}|[0-9a-f]{16,}")


def _family(key: str) -> str:
    """A key's family: the per-conversation (per-target, per-event) parts as `*`."""
    if not key.startswith("dlq"):
        return key[:20]
    return ":".join(_ONE_OF_MANY.sub("*", part) for part in key.split(":")[:4])


class RedisMonitor:
    """Counts the commands redis-server runs by command, key family and caller (a client
    or a Lua script), from MONITOR, in a thread of its own until `stop`."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-monitor", daemon=True)

    def start(self) -> RedisMonitor:
        self._thread.start()
        return self

    def _run(self) -> None:
        with self._client.monitor() as monitor:  # type: ignore[no-untyped-call]
            while not self._stop.is_set():
                seen = monitor.next_command()
                words = seen["command"].split(" ")
                key = words[1] if len(words) > 1 else ""
                family = _family(key)
                via = "lua" if seen["client_type"] == "lua" else "client"
                self.counts[f"{via} {words[0].upper()} {family}"] += 1

    def stop(self, events: int) -> dict[str, float]:
        """Every family seen at least once in twenty events, per event."""
        self._stop.set()
        self._client.ping()  # wakes the monitor's read
        self._thread.join(5)
        return {
            name: round(n / events, 2)
            for name, n in self.counts.most_common()
            if n / events >= 0.05
        }


def measure(stack: BenchStack, spec: WorkloadSpec, *, floor_calls: int, floor_tasks: int,
            timeout: float = 900.0, monitor: bool = False) -> dict[str, Any]:  # fmt: skip
    """The DLQ filled, the workers started, then the poller drains while they run; the
    machine's speed probed throughout (`bench.speed`)."""
    with SpeedProbe() as probe:
        figures = _measure(stack, spec, floor_calls=floor_calls, floor_tasks=floor_tasks,
                           timeout=timeout, monitor=monitor)  # fmt: skip
    speed = machine_speed(probe, figures.pop("windows"))
    figures["machine_speed"] = speed
    if figures["worker_over_floor"] and speed["slowdown_in_run"]:
        figures["worker_over_floor_at_floor_speed"] = round(
            figures["worker_over_floor"] / speed["slowdown_in_run"], 3
        )
    return figures


def machine_speed(
    probe: SpeedProbe, windows: Mapping[str, list[tuple[float, float]]]
) -> dict[str, Any]:
    """The probe's work in the floor's rounds and in the run: how much slower a CPU
    second ran during the run than while the floor was timed (`bench.speed`)."""
    floor_ms, run_ms = probe.median(*windows["floor"]), probe.median(*windows["run"])
    return {
        "probe_cpu_ms_in_floor": floor_ms,
        "probe_cpu_ms_in_run": run_ms,
        "slowdown_in_run": round(run_ms / floor_ms, 3) if floor_ms and run_ms else None,
        "samples": {name: len(probe.taken(*spans)) for name, spans in windows.items()},
    }


def _measure(stack: BenchStack, spec: WorkloadSpec, *, floor_calls: int, floor_tasks: int,
             timeout: float, monitor: bool) -> dict[str, Any]:  # fmt: skip
    # The floor's calls, half before the run and half after (`bench.floor`'s rounds, pooled):
    # a spell of the machine on either side weighs on half of its rounds, not on the floor.
    # `windows`: when the floor's rounds and the run were, for the speed probe.
    windows: dict[str, list[tuple[float, float]]] = {"floor": [], "run": []}
    since = time.time()
    # The floor's calls are made alone and in as many threads as the replay worker's pool.
    threads = threads_of(WORKERS[0][2])
    floor_before = in_process(
        stack,
        stack.fresh_round("floor-before"),
        floor_calls // 2,
        rounds=FLOOR_ROUNDS // 2,
        threads=threads,
    )
    windows["floor"].append((since, time.time()))
    table = stack.fresh_round("deployed")
    workload = spec.generate()  # shuffled, as a DLQ hands events back
    stack.fill_dlq(workload)
    proxies = Proxies(stack)
    with proxies.dynamodb, proxies.aws:
        env = proxies.env(stack.worker_env(table))
        env.pop("GENESYS_RATE_LIMIT_PER_MINUTE")  # the workers' default budget
        startup = {name: startup_cpu(stack, pool, env, name=name) for name, _, pool in WORKERS}
        workers = {
            name: start_worker(stack.dev, pool, env, name=f"{name}-{stack.rounds:02d}", queues=q)
            for name, q, pool in WORKERS
        }
        try:
            for worker in workers.values():
                wait_ready(worker)
            time.sleep(SETTLE_SECONDS)
            idle_before = idle_rates(workers)
            proxies.take()
            stack.dev.admin.reset()
            cpu_from, run_from = time.perf_counter(), time.time()
            cpu_before = {name: tree_cpu_seconds(w.pid) for name, w in workers.items()}
            before = redis_traffic(stack.redis)
            load_before = os.getloadavg()
            monitored = RedisMonitor(stack.redis).start() if monitor else None
            started = time.perf_counter()
            with (
                counting_aws_calls() as aws,
                counting_redis_commands() as poller_redis,
                counting_sent_tasks() as poller_sent,
            ):
                polled: list[float] = []

                def poll() -> None:
                    polled.append(stack.poll_dlq(table)[1])

                polling = threading.Thread(target=poll, name="poller")
                polling.start()
                drained = wait_all_final(
                    stack, table, expected=spec.events, started=started, timeout=timeout
                )
                polling.join(timeout)
            settled = wait_tracking_settled(stack, spec, started, timeout)
            windows["run"].append((run_from, time.time()))
            load_after = os.getloadavg()
            cpu = {name: tree_cpu_seconds(w.pid) - cpu_before[name] for name, w in workers.items()}
            cpu_seconds = time.perf_counter() - cpu_from
            requests, errors = proxies.take()
            traffic = redis_traffic(stack.redis).since(before)
            commands = traffic.commands
            genesys = stack.dev.admin.stats()
            by_family = monitored.stop(spec.events) if monitored else None
            # At rest again, once the run's counts are read (an idle worker polls the broker).
            idle_after = idle_rates(workers)
        finally:
            for worker in workers.values():
                stop_child(worker.process)
    events = spec.events
    worker_side = side(requests, commands, events)
    tasks: Counter[str] = Counter()
    for worker in workers.values():
        tasks.update(tasks_run(worker.log))
    worker_side["tasks"] = dict(tasks)
    poller_side = side(aws.take(), {}, events)
    poller_side["tasks_sent"] = dict(poller_sent)
    poller_side["redis_commands"] = poller_redis.commands
    poller_side["redis_commands_per_event"] = per(poller_redis.commands, events, 2)
    poller_side["redis_round_trips"] = poller_redis.round_trips
    # The workers' round trips: every request redis-server read, less the benchmark's own
    # and the poller's.
    worker_side["redis_round_trips"] = requests_not_ours(traffic) - poller_redis.round_trips
    worker_side["redis_round_trips_per_event"] = per(worker_side["redis_round_trips"], events, 2)
    # At rest before the run and after it: each spell alone catches a few of the idle
    # loop's periodic wakes (the broker's poll, heartbeats, the counts' flush) or not.
    idle = {name: (idle_before[name] + idle_after[name]) / 2 for name in workers}
    worker_cpu_ms = per(sum(cpu.values()) * 1000, events, 2)
    busy = {name: cpu[name] - idle[name] * cpu_seconds for name in cpu}
    busy_ms = per(sum(busy.values()) * 1000, events, 2)
    # The floor of this run's mix: the workers' Redis round trips (a command, a pipeline or
    # a script each: commandstats counts a script's commands one by one, and pricing each
    # as a GET's round trip would price work the server does as the workers'), and the
    # tasks they sent (every task run, less those the poller sent).
    ran = sum(tasks.values())
    mix = operation_counts(
        worker_side["aws_by_operation"],
        redis_per_event=worker_side["redis_round_trips"] / events,
        tasks_per_event=ran / events,
        sent_per_event=max(ran - sum(poller_sent.values()), 0) / events,
        events=events,
        genesys_per_event=genesys.requests / events,
    )
    floor_table = stack.fresh_round("floor")
    since = time.time()
    floor_after = in_process(
        stack, floor_table, floor_calls // 2, rounds=FLOOR_ROUNDS // 2, threads=threads
    )
    windows["floor"].append((since, time.time()))
    costs = pooled(floor_before, floor_after)
    pool = WORKERS[0][2]
    # A task as the run's worker took them: the no-op sent as the poller sent the run's,
    # each at its time with its countdown (a deployed worker is woken for each task and
    # holds the counted-down ones); a burst of tasks queued first, Celery's cheapest case,
    # is kept beside it.
    burst = celery_tasks(stack, floor_table, floor_tasks, pool, idle_seconds=2.0)
    schedule = poller_sent.schedule
    costs["task"] = celery_tasks(
        stack, floor_table, len(schedule), pool, idle_seconds=2.0, schedule=schedule
    )

    def priced(costs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        return compose(costs, without_broker(mix, costs, unit="broker_round_trips"))

    floor = priced(costs)
    burst_ms = priced({**costs, "task": burst})["floor_cpu_ms_per_event"]
    floor_ms = floor["floor_cpu_ms_per_event"]
    alone_ms = floor.get("floor_one_thread_cpu_ms_per_event")
    low, high = floor["floor_cpu_ms_per_event_spread"]
    return {
        "windows": windows,
        "mode": "deployed: the poller drains a shuffled DLQ while the README's workers run",
        "events": events,
        "conversations": spec.conversations,
        "workload": spec.describe(),
        "dynamodb_backend": stack.backend.describe(),
        "genesys_per_minute": GENESYS_PER_MINUTE,
        "poller_seconds": round(polled[0], 3) if polled else None,
        "drain_seconds": drained.seconds,
        "tracking_settled_seconds": round(settled, 3),
        "events_per_second": round(events / drained.seconds, 1) if drained.seconds else 0.0,
        "load_average": {"before": load_before, "after": load_after},
        "genesys_calls": genesys.requests,
        "genesys_calls_per_event": per(genesys.requests, events),
        "genesys_by_endpoint": {e: sum(c.values()) for e, c in genesys.endpoints.items()},
        "patches": genesys.count(PATCH_ATTRIBUTES),
        "patches_per_conversation": per(genesys.count(PATCH_ATTRIBUTES), spec.conversations, 2),
        "dynamodb_per_event": worker_side["dynamodb_per_event"],
        "redis_commands_per_event": per(sum(commands.values()), events, 2),
        "worker_cpu_ms_per_event": worker_cpu_ms,
        "worker_busy_cpu_ms_per_event": busy_ms,
        "worker_idle_cpu_ms_per_second": {name: round(r * 1000, 2) for name, r in idle.items()},
        "worker_idle_cpu_ms_per_second_at": {
            "before": {name: round(r * 1000, 2) for name, r in idle_before.items()},
            "after": {name: round(r * 1000, 2) for name, r in idle_after.items()},
        },
        "worker_cpu_seconds": {name: round(s, 3) for name, s in cpu.items()},
        "cpu_window_seconds": round(cpu_seconds, 3),
        "startup_cpu_seconds": {name: round(s, 3) for name, s in startup.items()},
        "floor_cpu_ms_per_event": floor_ms,
        "floor": floor,
        "worker_over_floor": round(busy_ms / floor_ms, 3) if floor_ms else None,
        # Over the floor's highest and lowest rounds: how far the machine alone moves it.
        "worker_over_floor_spread": [round(busy_ms / high, 3), round(busy_ms / low, 3)]
        if low
        else None,
        "worker_over_floor_with_idle": round(worker_cpu_ms / floor_ms, 3) if floor_ms else None,
        # With a task priced as a burst of no-op tasks queued before the worker takes any
        # (the floor's task until 2026-12-07 23:50 UTC).
        "task_burst": burst,
        "floor_with_burst_tasks_cpu_ms_per_event": burst_ms,
        "worker_over_floor_with_burst_tasks": round(busy_ms / burst_ms, 3) if burst_ms else None,
        # Over the libraries' calls each made alone, in one thread: no thread pool's worker
        # reaches it (docs/performance.md), but it says what the pool's threads cost.
        "floor_one_thread_cpu_ms_per_event": alone_ms,
        "worker_over_one_thread_floor": round(busy_ms / alone_ms, 3) if alone_ms else None,
        "worker": {**worker_side, "dynamodb_error_answers": service_total(errors, "dynamodb")},
        "poller": poller_side,
        "goals": GOALS,
        **({"redis_per_event_by_family": by_family} if by_family else {}),
        "counted_by": {
            "genesys": "the simulator's own counts, reset when the poller starts",
            "worker_aws": "bench.proxy, server side, on the workers' endpoints only",
            "poller": "botocore before-call handler and redis-py's serializer, this process",
            "redis": "redis-server INFO commandstats deltas (workers and poller)",
            "cpu": "/proc of the workers' process trees, poller start to tracking settled; "
            "busy: less each worker's idle rate (measured ready, before the poller) over "
            "that window, as bench.floor prices a task",
        },
    }


def print_deployed(figures: Mapping[str, Any]) -> None:
    print(
        f"  deployed: {figures['events']} events, the poller took {figures['poller_seconds']} s,"
        f" drained in {figures['drain_seconds']:.1f} s "
        f"({figures['events_per_second']:.1f} events/s), tracking settled at "
        f"{figures['tracking_settled_seconds']:.1f} s"
    )
    for name, goal in figures["goals"].items():
        value = figures[name]
        mark = "ok" if value is not None and value <= goal else "ABOVE"
        print(f"  {name:<28} {value!s:>8}   goal <= {goal:<6} {mark}")
    print(
        f"  worker CPU {figures['worker_cpu_ms_per_event']:.2f} ms/event "
        f"({figures['worker_busy_cpu_ms_per_event']:.2f} beyond idle; over the floor with "
        f"idle {figures['worker_over_floor_with_idle']}), floor "
        f"{figures['floor_cpu_ms_per_event']:.2f} ms/event (its rounds' spread "
        f"{figures['floor']['floor_cpu_ms_per_event_spread']}, over it "
        f"{figures['worker_over_floor_spread']}; the floor in one thread "
        f"{figures['floor_one_thread_cpu_ms_per_event']} ms/event, over it "
        f"{figures['worker_over_one_thread_floor']}; a task priced "
        f"{figures['floor']['operations']['task']['cpu_ms']} ms as the run sent them, "
        f"{figures['task_burst']['cpu_ms']} in a burst, over that floor "
        f"{figures['worker_over_floor_with_burst_tasks']}); poller "
        f"{figures['poller']['redis_commands_per_event']:.2f} Redis commands/event; "
        f"Genesys {figures['genesys_by_endpoint']}",
        flush=True,
    )
    speed = figures["machine_speed"]
    print(
        f"  machine speed (bench.speed's work, CPU ms): {speed['probe_cpu_ms_in_floor']} while "
        f"the floor was timed, {speed['probe_cpu_ms_in_run']} in the run (slower "
        f"{speed['slowdown_in_run']}x; samples {speed['samples']}); worker over the floor at "
        f"the floor's speed {figures.get('worker_over_floor_at_floor_speed')} (a diagnosis: "
        "the goal is judged on worker_over_floor)",
        flush=True,
    )


def idle_rates(workers: Mapping[str, Any]) -> dict[str, float]:
    """Each worker's CPU seconds per second over `IDLE_SECONDS` at rest (nothing queued)."""
    start = time.perf_counter()
    before = {name: tree_cpu_seconds(w.pid) for name, w in workers.items()}
    time.sleep(IDLE_SECONDS)
    seconds = time.perf_counter() - start
    return {name: (tree_cpu_seconds(w.pid) - before[name]) / seconds for name, w in workers.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.deployed", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="21 events")
    parser.add_argument("--monitor", action="store_true", help="Redis commands by key family")
    backends.add_option(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    spec = QUICK if args.quick else STANDARD
    calls, tasks = (32, 100) if args.quick else (800, 500)
    with bench_stack(
        "deployed", latency_ms=20.0, rate_limit=GENESYS_PER_MINUTE, dynamodb=args.dynamodb
    ) as stack:
        figures = {
            "benchmark": "deployed",
            "machine": machine(),
            **measure(stack, spec, floor_calls=calls, floor_tasks=tasks, monitor=args.monitor),
        }
    write_results(args.output, figures)
    print_deployed(figures)
    print(f"  written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
