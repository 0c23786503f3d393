"""What the end-to-end benchmarks share: the stack, the workload, the meters, the results.

Every benchmark runs against the real local stand-ins (`devstack.DevStack`: redis-server,
moto's server, the Genesys simulator), DynamoDB on dynalite where node is present
(`bench.backends`; else on moto, said in the output), plus `bench.sink`, an HTTP
endpoint standing in for the redelivery target (an EventBridge API destination mapped by
REPLAY_HTTP_TARGETS), so that moto's SQS is not what a drain measures. One stack per
benchmark process: the Celery producer in this process reads its broker URL once.
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import requests

from bench.backends import ENDPOINT_VARIABLE, DynamoDbBackend, create_ledger, dynamodb_backend
from bench.cpu import cpu_seconds
from devstack.process import ChildServer, free_port
from devstack.rules import create_rule
from devstack.stack import DevStack, SimOptions
from devstack.synthetic import SyntheticMessage, Workload, generate, send_batches
from dlq.aws import aws_client
from dlq.ledger import FINAL_STATUSES
from dlq.settings import Settings, load_settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: The target every benchmark event missed: an API destination, redelivered over HTTP.
API_DESTINATION_ARN = "arn:aws:events:us-east-1:111122223333:api-destination/crm/bench"
#: Genesys "unconstrained": far above anything two cores can ask for.
UNLIMITED_PER_MINUTE = 6_000_000
DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:genesys-eventbridge-dlq"


# --- the workload ------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkloadSpec:
    """N conversations of four events each, plus a few presence events (no conversation)."""

    conversations: int = 250
    events_per_conversation: int = 4
    presence_events: int = 10
    seed: int = 20240601

    @property
    def events(self) -> int:
        return self.conversations * self.events_per_conversation + self.presence_events

    def generate(self) -> Workload:
        return generate(
            conversations=self.conversations,
            events_per_conversation=self.events_per_conversation,
            presence_events=self.presence_events,
            target_arns=(API_DESTINATION_ARN,),
            seed=self.seed,
        )

    def describe(self) -> dict[str, int]:
        return {
            "events": self.events,
            "conversations": self.conversations,
            "events_per_conversation": self.events_per_conversation,
            "presence_events": self.presence_events,
        }


STANDARD = WorkloadSpec()
QUICK = WorkloadSpec(conversations=5, presence_events=1)


# --- the machine and Redis ---------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    with Path("/proc/cpuinfo").open() as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with Path("/proc/meminfo").open() as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
                break
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Other work on the machine skews every figure: say how busy it was.
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def redis_calls(client: redis.Redis) -> dict[str, int]:
    """Commands the redis-server has executed, by command (INFO commandstats)."""
    return redis_traffic(client).commands


@dataclass(frozen=True)
class RedisTraffic:
    """What a redis-server counted, read in one INFO: commands by name (commandstats, which
    counts a script's own commands one by one) and requests read (`total_reads_processed`:
    one a round trip, whether it carries a command, a pipeline or a script; a request
    above 16 KiB takes more than one read)."""

    commands: dict[str, int]
    requests: int

    def since(self, before: RedisTraffic) -> RedisTraffic:
        """What was counted between `before` and this reading, neither INFO included."""
        return RedisTraffic(
            calls_between(before.commands, self.commands), self.requests - before.requests - 1
        )


def redis_traffic(client: redis.Redis) -> RedisTraffic:
    """The redis-server's counts now (`RedisTraffic`)."""
    info = client.info("stats", "commandstats")
    commands = {
        name.removeprefix("cmdstat_"): int(values["calls"])
        for name, values in info.items()
        if name.startswith("cmdstat_") and isinstance(values, dict)
    }
    return RedisTraffic(commands, int(info["total_reads_processed"]))


def calls_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Commands by name between two `redis_calls` snapshots (less the INFO that took them)."""
    delta = {name: after[name] - before.get(name, 0) for name in after}
    delta["info"] = delta.get("info", 0) - 1
    return {name: n for name, n in sorted(delta.items(), key=lambda kv: -kv[1]) if n > 0}


# --- the target --------------------------------------------------------------------------


class Sink(ChildServer):
    """`bench.sink` as a child process: the HTTP target every benchmark redelivers to."""

    def __init__(self, workdir: Path) -> None:
        port = free_port()
        argv = [sys.executable, "-m", "bench.sink", "--port", str(port)]
        super().__init__(argv, port, log=workdir / "sink.log")
        self._session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/events"

    def counts(self) -> dict[str, Any]:
        """{posts, distinct, first, last}: POSTs taken, distinct event ids, wall times."""
        response = self._session.get(f"http://127.0.0.1:{self.port}/count", timeout=5)
        response.raise_for_status()
        counts: dict[str, Any] = response.json()
        return counts

    def arrivals(self) -> list[str]:
        """The event id of every POST taken, in the order they arrived."""
        response = self._session.get(f"http://127.0.0.1:{self.port}/arrivals", timeout=10)
        response.raise_for_status()
        return [str(event_id) for event_id in response.json()["event_ids"]]

    def reset(self) -> None:
        self._session.post(f"http://127.0.0.1:{self.port}/reset", timeout=5).raise_for_status()


def arrival_order(arrivals: Sequence[str], workload: Workload) -> dict[str, Any]:
    """How many conversations' events reached the target out of their `time` order.

    A conversation is in order when its events, each taken at its first arrival, came
    with strictly increasing envelope `time`s (the workload gives them distinct ones;
    a conversation with two equal times cannot be judged and is refused). Events that
    never arrived are left out of the sequence and counted apart.
    """
    times: dict[str, tuple[str, str]] = {}
    for message in workload.messages:
        if message.conversation_id and message.event_id:
            event = json.loads(message.body)
            times[message.event_id] = (message.conversation_id, str(event["time"]))
    by_conversation: dict[str, list[str]] = {}
    for conversation_id, time_ in times.values():
        by_conversation.setdefault(conversation_id, []).append(time_)
    for conversation_id, conversation_times in by_conversation.items():
        if len(set(conversation_times)) != len(conversation_times):
            raise ValueError(
                f"conversation {conversation_id} has events with equal `time`s: arrival "
                "order cannot be judged; give the workload distinct times"
            )
    seen: set[str] = set()
    arrived: dict[str, list[str]] = {}
    for event_id in arrivals:
        if event_id in seen or event_id not in times:
            continue
        seen.add(event_id)
        conversation_id, time_ = times[event_id]
        arrived.setdefault(conversation_id, []).append(time_)
    # ISO 8601 times of one format sort as text.
    disordered = sorted(
        conversation_id
        for conversation_id, sequence in arrived.items()
        if any(later <= earlier for earlier, later in itertools.pairwise(sequence))
    )
    return {
        "conversations": len(by_conversation),
        "conversations_out_of_order": len(disordered),
        "examples": disordered[:3],
        "conversation_events_missing": len(times) - len(seen),
    }


# --- the stack ---------------------------------------------------------------------------


@dataclass
class BenchStack:
    """A DevStack, the sink, and observer clients (made before any counting hook)."""

    dev: DevStack
    sink: Sink
    backend: DynamoDbBackend
    settings: Settings
    sqs: Any
    dynamodb: Any
    redis: redis.Redis
    rounds: int = 0
    tables: list[str] = field(default_factory=list)

    def pids(self, **more: int) -> dict[str, int]:
        """The processes whose CPU a run reports: the stand-ins, the sink, this process."""
        dev = self.dev
        pids = {
            "moto": _pid(dev.moto),
            "redis": _pid(dev.redis),
            "genesys_sim": _pid(dev.sim),
            "sink": _pid(self.sink),
            "bench": os.getpid(),
        }
        if self.backend.server is not None:
            pids["dynalite"] = _pid(self.backend.server)
        pids.update(more)
        return pids

    @property
    def dynamodb_pid(self) -> int:
        """The process serving DynamoDB (dynalite, or moto)."""
        return _pid(self.backend.server or self.dev.moto)

    def worker_env(self, table: str, **overrides: str) -> dict[str, str]:
        """The environment of a worker of this stack, redelivering to the sink."""
        env = {
            "LEDGER_TABLE": table,
            "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION_ARN: self.sink.url}),
            "GENESYS_RATE_LIMIT_PER_MINUTE": str(UNLIMITED_PER_MINUTE),
        }
        if self.backend.url:
            env[ENDPOINT_VARIABLE] = self.backend.url
        env.update(overrides)
        return self.dev.env(**env)

    def fresh_round(self, label: str) -> str:
        """Empty Redis and DLQ, a reset simulator and sink, and a new ledger table; its name.

        The previous round's table is deleted, so the DynamoDB server does not carry it along.
        """
        for old in self.tables:
            self.dynamodb.delete_table(TableName=old)
        self.tables.clear()
        self.redis.flushall()
        self.empty_dlq()
        self.dev.admin.reset()
        self.sink.reset()
        self.rounds += 1
        table = f"ledger-{self.rounds}-{label}"
        create_ledger(self.dynamodb, table, self.backend)
        self.tables.append(table)
        return table

    def empty_dlq(self) -> None:
        """Purge what a previous round left in the DLQ.

        A message the previous round's receivers got twice can outlive its deletion (the
        older receipt handle) and come back into this round with older `time`s. SQS
        allows one purge a minute: an empty queue needs none, a second one waits.
        """
        if self.dlq_depth() == 0:
            return
        deadline = time.monotonic() + 65
        while True:
            try:
                self.sqs.purge_queue(QueueUrl=self.settings.dlq_queue_url)
                return
            except self.sqs.exceptions.PurgeQueueInProgress:
                if time.monotonic() > deadline:
                    raise
                time.sleep(5)

    def fill_dlq(self, workload: Workload) -> float:
        """Seed the simulator, send the workload into the (empty) DLQ; seconds the send took."""
        self.seed_conversations(workload)
        started = time.perf_counter()
        send_batches(self.sqs, self.settings.dlq_queue_url, workload.messages)
        return time.perf_counter() - started

    def seed_conversations(self, workload: Workload) -> None:
        """Give the simulator the workload's conversations, with the events' participants.

        The simulator's auto-created conversations have participant ids of their own, so
        the participant an event names would be unknown and every tracking PATCH a 404.
        """
        participants: dict[str, str] = {}
        for message in workload.messages:
            if message.conversation_id and message.conversation_id not in participants:
                body = json.loads(message.body)["detail"]["eventBody"]
                participants[message.conversation_id] = body["participantId"]
        if not participants:
            return
        admin = self.dev.admin
        bodies = admin.seed(*participants)
        for conversation in bodies:
            for participant in conversation["participants"]:
                if participant.get("purpose") == "customer":
                    participant["id"] = participants[conversation["id"]]
        admin.seed_bodies(bodies)

    def dlq_depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.settings.dlq_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )

    def poll_dlq(self, table: str, *, receivers: int = 4) -> tuple[dict[str, int], float]:
        """Drain the DLQ into the ledger and the broker with the real Poller, in process,
        built as `dlq-replay poll` builds it (its outcome counters and status moves summed
        in a count buffer, flushed as it stops)."""
        from dlq.redisclient import redis_client
        from dlq.secrets.redis_auth import RedisCredentials
        from ingest.poller import Poller

        settings = load_settings(_env_file=None, ledger_table=table)
        cache = redis_client(settings, RedisCredentials.from_settings(settings))
        poller = Poller.from_settings(settings, cache, receivers=receivers, wait_seconds=0)
        started = time.perf_counter()
        counts = dict(poller.run(until_empty=True).counts)
        return counts, time.perf_counter() - started

    def ingest_direct(self, table: str, workload: Workload) -> tuple[dict[str, int], float]:
        """Fill the ledger and the broker through the Lambda front door (no SQS involved).

        The same ingest core as the poller, without moto's SQS, whose receive and delete
        slow down with the queue's depth (see bench.ingest): a sweep's setup stays short.
        """
        from ingest.frontdoor import FrontDoor
        from ingest.lambda_handler import handler

        self.seed_conversations(workload)
        records = [lambda_record(m) for m in workload.messages]
        door = FrontDoor.from_settings(load_settings(_env_file=None, ledger_table=table))
        started = time.perf_counter()
        failures = 0
        for start in range(0, len(records), 10):
            answer = handler({"Records": records[start : start + 10]}, None, front_door=door)
            failures += len(answer["batchItemFailures"])
        seconds = time.perf_counter() - started
        return {"accepted": len(records) - failures, "failed": failures}, seconds

    def statuses(self, table: str) -> Counter[str]:
        """Ledger items by status: a scan of the status attribute only (the observer's cost)."""
        counts: Counter[str] = Counter()
        paginator = self.dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=table, ProjectionExpression="#s", ExpressionAttributeNames={"#s": "status"}
        ):
            counts.update(item["status"]["S"] for item in page.get("Items", []))
        return counts


def lambda_record(message: SyntheticMessage) -> dict[str, Any]:
    """One record of an SQS-triggered Lambda event (lower camel case attributes)."""
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": f"AQEB{uuid.uuid4().hex}",
        "body": message.body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String", "stringListValues": []}
            for name, value in message.attributes.items()
        },
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": DLQ_ARN,
        "awsRegion": "us-east-1",
    }


def _pid(server: ChildServer) -> int:
    assert server.process is not None, "server not started"
    return server.process.pid


@contextmanager
def bench_stack(
    name: str,
    *,
    latency_ms: float = 20.0,
    rate_limit: int = 1_000_000,
    rate_window: float = 60.0,
    dynamodb: str = "auto",
) -> Iterator[BenchStack]:
    """Start the stand-ins and the sink, point this process at them, stop them all after.

    `dynamodb` picks the DynamoDB server (`bench.backends`); which one it is, is printed.
    """
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as work:
        workdir = Path(work)
        options = SimOptions(latency_ms=latency_ms, rate_limit=rate_limit, rate_window=rate_window)
        with (
            DevStack(workdir, sim_options=options) as dev,
            Sink(workdir) as sink,
            dynamodb_backend(dynamodb, workdir) as backend,
        ):
            print(backend.message, flush=True)
            # A variable left in this process's environment would send moto's runs elsewhere.
            os.environ.pop(ENDPOINT_VARIABLE, None)
            dev.apply_env(**({ENDPOINT_VARIABLE: backend.url} if backend.url else {}))
            settings = load_settings(_env_file=None)
            sqs = aws_client("sqs", settings)
            sqs.create_queue(QueueName=dev.dlq_name, Attributes={"VisibilityTimeout": "120"})
            # The rule the synthetic messages name, with the sink's ARN as its target, so
            # the workers route as in production (one ListTargetsByRule per rule, cached).
            create_rule(settings, [{"Id": "sink", "Arn": API_DESTINATION_ARN}])
            yield BenchStack(
                dev=dev,
                sink=sink,
                backend=backend,
                settings=settings,
                sqs=sqs,
                dynamodb=aws_client("dynamodb", settings),
                redis=redis.Redis.from_url(dev.redis.url),
            )


# --- waiting for the ledger --------------------------------------------------------------


@dataclass
class Drained:
    """How a drain went: when it ended, the final statuses, and how often it was looked at."""

    seconds: float
    final: Counter[str]
    scans: int
    timeline: list[dict[str, Any]] = field(default_factory=list)


def wait_all_final(
    stack: BenchStack,
    table: str,
    *,
    expected: int,
    started: float,
    timeout: float,
    scan_every: float = 30.0,
    tick: Callable[[], None] | None = None,
) -> Drained:
    """Watch until `expected` ledger items are all final; `started` is a perf_counter.

    Progress is read from the sink (a cheap counter) and the ledger is scanned only once
    the sink has every event, or every `scan_every` seconds in case some end otherwise:
    a moto scan of a 1,000-item table costs moto 0.4-2 s of CPU, which would otherwise be
    charged to the drain (the status timeline comes from the worker's log instead).
    """
    scans = 0
    last_scan = time.perf_counter() - started
    while True:
        now = time.perf_counter() - started
        if now > timeout:
            raise TimeoutError(f"not all final after {timeout:.0f} s")
        if tick is not None:
            tick()
        near_end = stack.sink.counts()["distinct"] >= expected
        if (near_end and now - last_scan >= 0.5) or now - last_scan >= scan_every:
            counts = stack.statuses(table)
            scans += 1
            last_scan = time.perf_counter() - started
            if sum(counts.values()) >= expected and all(s in FINAL_STATUSES for s in counts):
                return Drained(round(last_scan, 3), counts, scans)
        time.sleep(0.05 if near_end else 0.1)


def log_timeline(
    log: Path, *, wall_start: float, expected: int, step: float = 0.5
) -> list[dict[str, Any]]:
    """Events by outcome over time, from a worker's JSON log (seconds since `wall_start`).

    `pending` is what is not final yet (received, in progress or waiting for a retry);
    `attempts_failed` and `waits` count retries scheduled and tasks put back (lock busy,
    budget), cumulatively.
    """
    marks: list[tuple[float, str]] = []
    if not log.exists():
        return []
    with log.open(errors="replace") as lines:
        for line in lines:
            if not line.startswith("{"):
                continue
            kind = _log_kind(line)
            if kind is None:
                continue
            try:
                at = datetime.fromisoformat(json.loads(line)["time"]).timestamp()
            except (ValueError, KeyError):
                continue
            marks.append((at - wall_start, kind))
    marks.sort()
    timeline: list[dict[str, Any]] = []
    totals: Counter[str] = Counter()
    k = 0
    end = marks[-1][0] if marks else 0.0
    t = 0.0
    while t <= end + step:
        while k < len(marks) and marks[k][0] <= t:
            totals[marks[k][1]] += 1
            k += 1
        final = totals["replayed"] + totals["failed"] + totals["exhausted"]
        timeline.append({"t": round(t, 2), "pending": expected - final, **totals})
        t += step
    return timeline


def _log_kind(line: str) -> str | None:
    if '"logger": "dlq.replay"' in line:
        if '"outcome": "replayed"' in line:
            return "replayed"
        if '"outcome": "failed"' in line:
            return "failed"
        if '"replay exhausted' in line:
            return "exhausted"
        if '"replay attempt failed' in line:
            return "attempts_failed"
    elif "'waiting'" in line:
        return "waits"
    return None


def write_results(path: Path, figures: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")


def stop_child(child: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Warm shutdown (SIGTERM), then kill if it lingers."""
    if child.poll() is None:
        child.terminate()
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def per(total: float, n: int, digits: int = 3) -> float:
    return round(total / n, digits) if n else 0.0


def count_in_log(path: Path, needle: str) -> int:
    """Lines of a log holding `needle` (e.g. tasks that answered 'waiting')."""
    if not path.exists():
        return 0
    with path.open(errors="replace") as log:
        return sum(1 for line in log if needle in line)


def scan_cost(stack: BenchStack, table: str, *, repeat: int = 3) -> float:
    """DynamoDB server CPU seconds one observer scan of `table` costs (the watching's cost)."""
    server = stack.dynamodb_pid
    before = cpu_seconds(server)
    for _ in range(repeat):
        stack.statuses(table)
    return round((cpu_seconds(server) - before) / repeat, 4)
