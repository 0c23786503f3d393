"""Metrics after a real drain: a prefork worker subprocess and the poller, scraped over HTTP,
and the fleet's CloudWatch metrics put by two beats at once, read back from moto.

The worker is `celery -A tasks worker --pool prefork -c 2` (its two children write
per-process files that the main process adds up); the poller runs in this process with
its own endpoint. Both are scraped and parsed with prometheus_client's parser, and the
counts are held against the ledger's, which is the truth. Two `celery beat` processes
with deploy/fleet.yaml's scheduler run through the drain, as a deployment briefly runs
two: what they put is read back from moto's CloudWatch for every alarm of both templates.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import pytest
import redis
import requests
from cfn import load_template
from click.testing import CliRunner
from helpers import REPO, SIM_CLIENT_SECRET, eventually, genesys_event
from prometheus_client.parser import text_string_to_metric_families
from stack import HttpSink, Stack, configured, sim_env

from cli.main import main
from devstack.process import free_port
from dlq.ledger import Status
from dlq.metrics.emf import NAMESPACE
from dlq.metrics.fleet import BACKLOG, BACKLOG_PER_WORKER, HEARTBEAT, REPLAY_WORKERS
from dlq.metrics.wiring import process_metrics, start_endpoint
from dlq.settings import load_settings
from ingest.frontdoor import FrontDoor
from ingest.poller import Poller
from tasks.application import app
from tasks.names import REPLAY_QUEUE, TRACK_QUEUE, VERIFY_QUEUE
from tasks.producer import CeleryEnqueuer

pytestmark = pytest.mark.slow
API_DESTINATION = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f"


class Drained(NamedTuple):
    """One drain, as the tests read it."""

    stack: Stack
    worker_port: int
    poller_port: int
    items: list[Any]
    secrets: list[str]
    env: dict[str, str]
    #: The minute the beats started in: what CloudWatch holds from then on is theirs.
    since: datetime
    #: The poller's endpoint before the drain: its counters are this process's, which
    #: other modules' in-process pollers may have counted into already.
    poller_before: dict[str, list]


def scrape(port: int) -> dict[str, list]:
    """`/metrics` of 127.0.0.1:port, parsed: samples by metric family name."""
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def answers(port: int, worker: subprocess.Popen[bytes]) -> bool:
    """Whether the endpoint answers (fails at once, with its story, if the worker died)."""
    if worker.poll() is not None:
        raise AssertionError(f"the worker exited: {worker.stderr.read().decode()[-3000:]}")
    try:
        return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).ok
    except requests.ConnectionError:
        return False


def statistic(metric: str, since: datetime, kind: str, period: int = 3600) -> float:
    """The `kind` statistic of the fleet metric `metric` in moto's CloudWatch since
    `since`, over all its periods (Sum and SampleCount added, Maximum the greatest)."""
    points = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        StartTime=since,
        EndTime=datetime.now(UTC) + timedelta(minutes=5),
        Period=period,
        Statistics=[kind],
    )["Datapoints"]
    values = [point[kind] for point in points]
    return (max(values, default=0.0)) if kind == "Maximum" else sum(values)


def any_exited(processes: list[subprocess.Popen[bytes]]) -> bool:
    """False while all run; fails with the story of the first that exited."""
    for process in processes:
        if process.poll() is not None:
            raise AssertionError(f"exited: {process.stderr.read().decode()[-3000:]}")
    return False


def events_by_outcome(metrics: dict[str, list], outcomes: set[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sample in metrics.get("dlq_replay_events", []):
        if sample.name.endswith("_total") and sample.labels["outcome"] in outcomes:
            counts[sample.labels["outcome"]] += int(sample.value)
    return counts


def start_beat(env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    """`celery beat` as deploy/fleet.yaml runs it: the scheduler that puts the fleet's
    CloudWatch metrics; its schedule and heartbeat in `workdir`."""
    workdir.mkdir()
    argv = [sys.executable, "-m", "celery", "-A", "tasks", "beat", "--loglevel", "WARNING"]
    argv += ["-s", str(workdir / "schedule"), "--scheduler", FLEET_SCHEDULER]
    return subprocess.Popen(
        argv,
        cwd=REPO,
        env={**env, "REPLAY_HEALTH_DIR": str(workdir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def fleet_template() -> dict[str, Any]:
    return load_template("deploy/fleet.yaml")


def fleet_scheduler() -> str:
    """The scheduler fleet.yaml's beat service names on its command line."""
    beat_task = fleet_template()["Resources"]["BeatTaskDefinition"]
    [beat] = beat_task["Properties"]["ContainerDefinitions"]
    command = beat["Command"]
    return command[command.index("--scheduler") + 1]


FLEET_SCHEDULER = fleet_scheduler()


@pytest.fixture(scope="module")
def drained(redis_server, moto_server, sim, tmp_path_factory) -> Iterator[Drained]:
    """A mixed backlog drained by a prefork worker subprocess and the in-process poller,
    with two fleet beats running from before the poller starts until the module ends.
    One drain for the module: every test reads the same run."""
    unique = uuid.uuid4().hex[:10]
    redis_url = redis_server.url
    redis.Redis.from_url(redis_url).flushall()
    sink = HttpSink(status=503)
    sink.__enter__()
    worker_port, poller_port = free_port(), free_port()
    env = {
        **sim_env(sim),
        "LEDGER_TABLE": f"ledger-{unique}",
        "REDIS_URL": redis_url,
        "REPLAY_MAX_ATTEMPTS": "2",
        "REPLAY_HTTP_TARGETS": json.dumps({API_DESTINATION: sink.url}),
        "REPLAY_METRICS_PORT": str(worker_port),
        "REPLAY_METRICS_SAMPLE_SECONDS": "1",
        "POLLER_METRICS_PORT": str(poller_port),
        "INGEST_FRONT_DOOR": "poller",
    }
    with configured(env):
        stack = Stack(unique, sim)
        conversations = [str(uuid.uuid4()) for _ in range(3)]
        sim.admin.seed(*conversations[:2])
        events = [genesys_event(conversation_id=c) for c in conversations[:2] for _ in range(3)]
        missing = [genesys_event(conversation_id=conversations[2]) for _ in range(2)]
        sim.admin.delete(conversations[2])
        doomed = genesys_event(conversation_id=conversations[0])
        for event in events + missing:
            stack.put_dlq(event)
        stack.put_dlq(doomed, target_arn=API_DESTINATION)
        stack.sqs.send_message(QueueUrl=stack.dlq_url, MessageBody="{not json")

        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tasks",
                "worker",
                "--pool",
                "prefork",
                "-c",
                "2",
                "-Q",
                f"{REPLAY_QUEUE},{VERIFY_QUEUE},{TRACK_QUEUE}",
                "-n",
                "replay@%h",
                "--loglevel",
                "WARNING",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=REPO,
            # No PROMETHEUS_MULTIPROC_DIR: the worker makes its own (the default path, where
            # Celery's CLI has imported prometheus_client before the worker decides).
            env={**os.environ, "PYTHONPATH": str(REPO), "DLQ_QUEUE_URL": stack.dlq_url},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        cache = redis.Redis.from_url(redis_url)
        settings = load_settings(_env_file=None, dlq_queue_url=stack.dlq_url)
        stop_poller_endpoint = None
        beats: list[subprocess.Popen[bytes]] = []
        try:
            eventually(
                lambda: answers(worker_port, worker), timeout=60, what="the worker's /metrics"
            )
            # A minute's counts are stamped with the minute's start.
            since = datetime.now(UTC).replace(second=0, microsecond=0)
            beat_env = {**os.environ, "PYTHONPATH": str(REPO), "DLQ_QUEUE_URL": stack.dlq_url}
            workdir = tmp_path_factory.mktemp("beats")
            beats = [start_beat(beat_env, workdir / name) for name in ("a", "b")]
            # Their first pass, before the poller takes a message: the backlog is the DLQ.
            eventually(
                lambda: statistic(HEARTBEAT, since, "Sum") or any_exited(beats),
                timeout=60,
                what="the beats' first pass",
            )
            stop_poller_endpoint = start_endpoint(
                settings, cache, port=poller_port, setting="POLLER_METRICS_PORT"
            )
            assert stop_poller_endpoint is not None
            poller_before = scrape(poller_port)
            metrics = process_metrics(settings, cache, prometheus=True)
            door = FrontDoor(
                ledger=stack.ledger,
                enqueuer=CeleryEnqueuer(app),
                metrics=metrics,
                boundary=stack.boundary,
            )
            poller = Poller(
                sqs=stack.sqs,
                queue_url=stack.dlq_url,
                front_door=door,
                wait_seconds=0,
                metrics=metrics,
            )
            poller.run(until_empty=True)
            items = stack.wait_final(10, timeout=90)
            secrets = [e["id"] for e in [*events, *missing, doomed]] + conversations
            yield Drained(
                stack, worker_port, poller_port, items, secrets, env, since, poller_before
            )
        finally:
            if stop_poller_endpoint is not None:
                stop_poller_endpoint()
            for beat in beats:
                beat.terminate()
                _, stderr = beat.communicate(timeout=30)
                if beat.returncode not in (0, -15):
                    print(stderr.decode(errors="replace")[-4000:])
            worker.terminate()
            _, stderr = worker.communicate(timeout=60)
            cache.close()
            sink.__exit__(None, None, None)
            if worker.returncode not in (0, -15):
                print(stderr.decode(errors="replace")[-4000:])


def test_the_prefork_workers_counters_equal_the_ledgers_outcomes_after_a_drain(drained):
    worker_port, items = drained.worker_port, drained.items
    ledger = Counter(i.status.value for i in items if i.status is not Status.REJECTED)

    scraped = events_by_outcome(scrape(worker_port), {"replayed", "failed", "exhausted"})

    assert ledger == {"replayed": 6, "failed": 2, "exhausted": 1}
    assert scraped == ledger


def test_the_pollers_counters_equal_what_the_ledger_took_in(drained):
    poller_port, items = drained.poller_port, drained.items
    statuses = Counter(i.status for i in items)

    outcomes = {"ingested", "rejected", "duplicate"}
    scraped = events_by_outcome(scrape(poller_port), outcomes)
    scraped.subtract(events_by_outcome(drained.poller_before, outcomes))
    scraped = +scraped  # the drain's own counts

    assert scraped == {
        "ingested": len(items) - statuses[Status.REJECTED],
        "rejected": statuses[Status.REJECTED],
    }

    def aged(metrics: dict[str, list]) -> float:
        ages = metrics.get("dlq_replay_dlq_message_age_seconds", [])
        return sum(s.value for s in ages if s.name.endswith("_count"))

    assert aged(scrape(poller_port)) - aged(drained.poller_before) == 10


def test_the_sampled_ledger_gauges_reach_both_endpoints(drained):
    worker_port, poller_port = drained.worker_port, drained.poller_port
    expected = {
        "received": 0, "in_progress": 0, "retry_scheduled": 0, "failed": 2, "exhausted": 1,
    }  # fmt: skip

    def sampled(port: int) -> dict[str, float]:
        samples = scrape(port).get("dlq_replay_ledger_items", [])
        return {s.labels["status"]: s.value for s in samples}

    def fresh(port: int) -> bool:
        return sampled(port) == expected

    for port in (worker_port, poller_port):
        eventually(functools.partial(fresh, port), timeout=15, what="a fresh sample")
    dlq = {s.labels["state"]: s.value for s in scrape(worker_port)["dlq_replay_dlq_messages"]}
    assert dlq == {"visible": 0, "not_visible": 0}


def test_genesys_calls_and_latency_are_labelled_by_template_and_target(drained):
    stack, worker_port = drained.stack, drained.worker_port
    metrics = scrape(worker_port)

    endpoints = {s.labels["endpoint"] for s in metrics["dlq_replay_genesys_requests"]}
    assert "POST /oauth/token" in endpoints
    assert endpoints <= {
        "POST /oauth/token",
        "GET /api/v2/conversations/{id}",
        "GET /api/v2/analytics/conversations/details",
        "PATCH /api/v2/conversations/{id}/participants/{pid}/attributes",
    }
    latency = metrics["dlq_replay_replay_latency_seconds"]
    [replayed] = [s for s in latency if s.name.endswith("_count")]
    assert replayed.labels == {"target": f"sqs:target-{stack.unique}"}
    assert replayed.value == 6


def test_no_label_carries_an_id_a_payload_or_a_secret(drained):
    worker_port, poller_port, secrets = drained.worker_port, drained.poller_port, drained.secrets
    forbidden = [*secrets, SIM_CLIENT_SECRET, "Bearer", "{not json", "Rate Exceeded"]

    values = {
        value
        for port in (worker_port, poller_port)
        for samples in scrape(port).values()
        for sample in samples
        for value in sample.labels.values()
    }

    assert values
    leaks = [(v, f) for v in values for f in forbidden if f in v]
    assert leaks == []


def test_status_counts_equal_the_ledger_after_the_drain(drained):
    items, env = drained.items, drained.env
    statuses = Counter(i.status.value for i in items)

    def flushed() -> dict:
        result = CliRunner().invoke(main, ["status", "--json"], env=env)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        counted = {o: report["by_outcome"][o] for o in statuses} == statuses
        return report if counted and report["waiting"]["failed"] == statuses["failed"] else {}

    # The workers write their counts every FLUSH_SECONDS, not as the ledger does.
    report = eventually(flushed, timeout=10, what="the workers' counts equal to the ledger")

    assert report["by_outcome"]["ingested"] == len(items) - statuses["rejected"]


def test_beat_put_the_backlog_while_the_dead_letter_queue_held_it(drained):
    # The beats' first pass ran before the poller took a message: 10 waited in the DLQ
    # for one replay worker.
    assert statistic(BACKLOG, drained.since, "Maximum") == 10
    assert statistic(BACKLOG_PER_WORKER, drained.since, "Maximum") == 10
    assert statistic(REPLAY_WORKERS, drained.since, "Maximum") == 1


def test_every_count_an_alarm_reads_reaches_cloudwatch_once_from_two_beats(drained):
    """The outcome counts put by the two beats equal the ledger's once each drained
    minute has passed, and each is put once: no minute has two datums of a metric."""
    statuses = Counter(i.status.value for i in drained.items)
    expected = {
        "EventsReplayed": statuses["replayed"],
        "EventsFailed": statuses["failed"],
        "EventsExhausted": statuses["exhausted"],
        "EventsRejected": statuses["rejected"],
    }
    assert expected == {
        "EventsReplayed": 6, "EventsFailed": 2, "EventsExhausted": 1, "EventsRejected": 1,
    }  # fmt: skip

    def put() -> dict[str, float]:
        return {name: statistic(name, drained.since, "Sum") for name in expected}

    # A minute's counts are put 5 s after it ends: at most about 65 s after the drain.
    try:
        eventually(lambda: put() == expected, timeout=100, what="the counts", every=2)
    except AssertionError:
        assert put() == expected  # says what CloudWatch holds
    alarmed = {
        r["Properties"]["MetricName"]
        for template in (load_template(), fleet_template())
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["Namespace"] == NAMESPACE
    }
    assert alarmed == {"EventsExhausted", "EventsRejected", HEARTBEAT, REPLAY_WORKERS, BACKLOG}
    for metric in alarmed:
        assert statistic(metric, drained.since, "SampleCount") > 0, metric
    for metric in expected:
        assert per_minute(metric, drained.since) <= {1.0}, metric
    # Gauges: one pass per minute, whichever beat ran it (two would put about twice). A
    # pass runs once between :05 and the next :05, at any moment of it: L minutes meet at
    # most floor(L) + 2 passes (1.16 minutes met 3 on CI, stop 30: one each).
    minutes = (datetime.now(UTC) - drained.since).total_seconds() / 60
    assert statistic(HEARTBEAT, drained.since, "SampleCount") <= math.floor(minutes) + 2


def per_minute(metric: str, since: datetime) -> set[float]:
    """The numbers of datums of `metric` put in each minute since `since`."""
    points = boto3.client("cloudwatch").get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        StartTime=since - timedelta(minutes=1),
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=60,
        Statistics=["SampleCount"],
    )["Datapoints"]
    return {point["SampleCount"] for point in points}
