"""Metrics after a real drain: a prefork worker subprocess and the poller, scraped over HTTP.

The worker is `celery -A tasks worker --pool prefork -c 2` (its two children write
per-process files that the main process adds up); the poller runs in this process with
its own endpoint. Both are scraped and parsed with prometheus_client's parser, and the
counts are held against the ledger's, which is the truth.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import uuid
from collections import Counter

import pytest
import redis
import requests
from click.testing import CliRunner
from helpers import REPO, SIM_CLIENT_SECRET, eventually, genesys_event
from prometheus_client.parser import text_string_to_metric_families
from stack import HttpSink, Stack, configured, sim_env

from cli.main import main
from devstack.process import free_port
from dlq.ledger import Status
from dlq.metrics.wiring import process_metrics, start_endpoint
from dlq.settings import load_settings
from ingest.frontdoor import FrontDoor
from ingest.poller import Poller
from tasks.application import app
from tasks.names import REPLAY_QUEUE, TRACK_QUEUE, VERIFY_QUEUE
from tasks.producer import CeleryEnqueuer

pytestmark = pytest.mark.slow
API_DESTINATION = "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f"


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


def events_by_outcome(metrics: dict[str, list], outcomes: set[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for sample in metrics.get("dlq_replay_events", []):
        if sample.name.endswith("_total") and sample.labels["outcome"] in outcomes:
            counts[sample.labels["outcome"]] += int(sample.value)
    return counts


@pytest.fixture(scope="module")
def drained(redis_server, moto_server, sim):
    """A mixed backlog drained by a prefork worker subprocess and the in-process poller;
    answers the stack, both ports, the ledger's items and the ids that must not leak.
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
        try:
            eventually(
                lambda: answers(worker_port, worker), timeout=60, what="the worker's /metrics"
            )
            stop_poller_endpoint = start_endpoint(
                settings, cache, port=poller_port, setting="POLLER_METRICS_PORT"
            )
            assert stop_poller_endpoint is not None
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
            yield stack, worker_port, poller_port, items, secrets, env
        finally:
            if stop_poller_endpoint is not None:
                stop_poller_endpoint()
            worker.terminate()
            _, stderr = worker.communicate(timeout=60)
            cache.close()
            sink.__exit__(None, None, None)
            if worker.returncode not in (0, -15):
                print(stderr.decode(errors="replace")[-4000:])


def test_the_prefork_workers_counters_equal_the_ledgers_outcomes_after_a_drain(drained):
    _, worker_port, _, items, _, _ = drained
    ledger = Counter(i.status.value for i in items if i.status is not Status.REJECTED)

    scraped = events_by_outcome(scrape(worker_port), {"replayed", "failed", "exhausted"})

    assert ledger == {"replayed": 6, "failed": 2, "exhausted": 1}
    assert scraped == ledger


def test_the_pollers_counters_equal_what_the_ledger_took_in(drained):
    _, _, poller_port, items, _, _ = drained
    statuses = Counter(i.status for i in items)

    scraped = events_by_outcome(scrape(poller_port), {"ingested", "rejected", "duplicate"})

    assert scraped == {
        "ingested": len(items) - statuses[Status.REJECTED],
        "rejected": statuses[Status.REJECTED],
    }
    ages = scrape(poller_port)["dlq_replay_dlq_message_age_seconds"]
    assert [s.value for s in ages if s.name.endswith("_count")] == [10]


def test_the_sampled_ledger_gauges_reach_both_endpoints(drained):
    _, worker_port, poller_port, _, _, _ = drained
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
    stack, worker_port, _, _, _, _ = drained
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
    _, worker_port, poller_port, _, secrets, _ = drained
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
    _, _, _, items, _, env = drained
    statuses = Counter(i.status.value for i in items)

    result = CliRunner().invoke(main, ["status", "--json"], env=env)

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {o: report["by_outcome"][o] for o in statuses} == statuses
    assert report["by_outcome"]["ingested"] == len(items) - statuses["rejected"]
    assert report["waiting"]["failed"] == statuses["failed"]
