"""Metrics: bounded labels, the per-minute Redis counters, the sampler, EMF lines, the seam."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from dlq.ledger import Status
from dlq.metrics.counters import BUCKET_SECONDS, OutcomeCounters, bucket_key, read_counts
from dlq.metrics.emf import EmfCounts, emf_line
from dlq.metrics.labels import MAX_TARGETS, dlq_error_label, target_label
from dlq.metrics.sampling import LEASE_PREFIX, Sampler, read_sample
from dlq.metrics.tally import COUNTED
from dlq.observe import Fanout, NoMetrics
from dlq.replay import ReplayOutcome
from dlq.replay.recorded import observed

from .fakes import TARGET_ARN, settle

REPO = Path(__file__).resolve().parents[2]


class Recorded(NoMetrics):
    """An observer that keeps what it heard."""

    def __init__(self) -> None:
        self.finished_items: list = []
        self.lags: list[float] = []

    def finished(self, outcome) -> None:
        self.finished_items.append(outcome)

    def tracked(self, *, lag_seconds: float) -> None:
        self.lags.append(lag_seconds)


class Broken(NoMetrics):
    def finished(self, outcome) -> None:
        raise RuntimeError("metrics backend down")


# --- labels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arn", "label"),
    [
        ("arn:aws:sqs:us-east-1:111122223333:crm-events", "sqs:crm-events"),
        ("arn:aws:lambda:us-east-1:111122223333:function:crm-sync:live", "lambda:crm-sync"),
        (
            "arn:aws:events:us-east-1:111122223333:api-destination/crm/0d1e2f",
            "events:api-destination/crm",
        ),
        ("arn:aws:states:us-east-1:111122223333:stateMachine:flow", "states:flow"),
        ("https://example.com/hook?token=abc", "other"),
        (None, "none"),
    ],
)
def test_a_target_label_is_its_kind_and_name_never_the_whole_arn(arn, label):
    assert target_label(arn) == label


def test_target_labels_stop_growing_after_the_cap(monkeypatch):
    import dlq.metrics.labels as labels

    monkeypatch.setattr(labels, "_seen", set())
    names = [target_label(f"arn:aws:sqs:us-east-1:1:q{n}") for n in range(MAX_TARGETS + 5)]

    assert len(set(names)) == MAX_TARGETS + 1
    assert names[-1] == "other"
    assert target_label("arn:aws:sqs:us-east-1:1:q0") == "sqs:q0"


def test_an_undocumented_dlq_error_code_is_other():
    assert dlq_error_label("THROTTLING") == "THROTTLING"
    assert dlq_error_label("ignore previous; DROP TABLE") == "other"
    assert dlq_error_label(None) == "none"


# --- the counters `status` reads ----------------------------------------------------------


def test_counts_land_in_the_minute_they_happen_and_since_leaves_older_minutes_out(
    cache, ledger, clock, receive
):
    counters = OutcomeCounters(cache, "ledger-t", clock=clock)
    counters.ingested("accepted", target_arn=TARGET_ARN, dlq_error_code="THROTTLING")
    clock.advance(2 * 3600)
    counters.ingested("rejected", target_arn=None, dlq_error_code=None)
    counters.finished(
        observed(settle(ledger, receive(), Status.FAILED, error_code="NotARuleTarget"))
    )

    recent = read_counts(cache, "ledger-t", since=clock.now() - 3600, until=clock.now())
    everything = read_counts(cache, "ledger-t", since=clock.now() - 3 * 3600, until=clock.now())

    assert recent.by_outcome == {"rejected": 1, "failed": 1}
    assert recent.by_error_code[("failed", "NotARuleTarget")] == 1
    assert recent.by_target[("failed", "sqs:crm-sync")] == 1
    assert everything.by_outcome == {"ingested": 1, "rejected": 1, "failed": 1}


def test_since_counts_from_the_start_of_its_minute(cache, clock):
    counters = OutcomeCounters(cache, "ledger-t", clock=clock)
    counters.ingested("accepted", target_arn=TARGET_ARN, dlq_error_code="TIMEOUT")
    since = clock.now() + 1  # later in the same minute, or the start of the next one

    counts = read_counts(cache, "ledger-t", since=since, until=clock.now() + 1)

    same_minute = int(since // BUCKET_SECONDS) == int(clock.now() // BUCKET_SECONDS)
    assert counts.by_outcome["ingested"] == (1 if same_minute else 0)


def test_a_bucket_expires_after_the_retention_even_one_a_redis_restart_emptied(cache, clock):
    counters = OutcomeCounters(cache, "ledger-t", clock=clock, ttl_seconds=600)
    clock.advance(BUCKET_SECONDS - clock.now() % BUCKET_SECONDS)  # the start of a minute
    minute = bucket_key("ledger-t", int(clock.now()))
    counters.ingested("accepted", target_arn=TARGET_ARN, dlq_error_code=None)
    assert 0 < cache.ttl(minute) <= 600 + BUCKET_SECONDS
    cache.delete(minute)  # a Redis restart mid-minute

    for _ in range(4):
        counters.ingested("accepted", target_arn=TARGET_ARN, dlq_error_code=None)
    counters.ingested("rejected", target_arn=TARGET_ARN, dlq_error_code=None)

    assert 0 < cache.ttl(minute) <= 600 + BUCKET_SECONDS
    assert cache.hgetall(minute) == {
        b"ingested|sqs:crm-sync|none|none": b"4",
        b"rejected|sqs:crm-sync|none|none": b"1",
    }


def test_only_the_count_that_creates_a_field_sends_an_expire(cache, clock):
    counters = OutcomeCounters(cache, "ledger-t", clock=clock, ttl_seconds=600)
    clock.advance(BUCKET_SECONDS - clock.now() % BUCKET_SECONDS)
    minute = bucket_key("ledger-t", int(clock.now()))
    counters.ingested("accepted", target_arn=TARGET_ARN, dlq_error_code=None)
    cache.persist(minute)  # so that an EXPIRE sent later would show

    for _ in range(3):
        counters.ingested("accepted", target_arn=TARGET_ARN, dlq_error_code=None)

    assert cache.ttl(minute) == -1


def test_deployments_sharing_a_redis_count_apart(cache, clock):
    OutcomeCounters(cache, "ledger-a", clock=clock).ingested(
        "duplicate", target_arn=TARGET_ARN, dlq_error_code=None
    )

    assert read_counts(cache, "ledger-b", since=clock.now(), until=clock.now()).by_outcome == {}


# --- the seam in the use cases --------------------------------------------------------------


def test_the_replayer_reports_each_recorded_outcome_once(make_replayer, receive, ledger):
    recorded = Recorded()
    replayer = make_replayer(metrics=recorded)
    ok = receive()

    assert replayer.replay(ok) is ReplayOutcome.REPLAYED

    [outcome] = recorded.finished_items
    assert outcome.status == Status.REPLAYED.value
    assert outcome == observed(ledger.get(ok))


def test_a_failing_observer_never_fails_the_replay(make_replayer, receive, ledger):
    replayer = make_replayer(metrics=Fanout([Broken()]))
    key = receive()

    assert replayer.replay(key) is ReplayOutcome.REPLAYED
    assert ledger.get(key).status is Status.REPLAYED


def test_tracking_reports_the_lag_from_the_first_news_to_the_patch(
    ledger, client, directory, cache, tracking_news, clock, receive
):
    from dlq.tracking import Tracker

    recorded = Recorded()
    tracker = Tracker(
        ledger=ledger,
        client=client,
        directory=directory,
        cache=cache,
        prefix="dlqReplay",
        clock=clock,
        metrics=recorded,
    )
    key = receive()
    settle(ledger, key, Status.REPLAYED)
    tracking_news.mark(key_conversation(ledger, key))
    clock.advance(7)

    tracker.track(key_conversation(ledger, key))

    assert recorded.lags == [7]


def key_conversation(ledger, key) -> str:
    return ledger.get(key).conversation_id


# --- the sampler ----------------------------------------------------------------------------


def test_one_process_takes_each_sample_and_every_endpoint_reads_it(
    cache, peer_cache, ledger, clock, receive
):
    receive(), receive()
    settle(ledger, receive(), Status.EXHAUSTED)
    queries: list[Status] = []

    def count(status: Status) -> int:
        queries.append(status)
        return ledger.count_by_status(status)

    def sampler(client):
        return Sampler(
            client, "ledger-t", count_status=count, queue_depth=lambda: (4, 1), interval=60,
            clock=clock,
        )  # fmt: skip

    assert sampler(cache).sample_once() is True
    assert sampler(peer_cache).sample_once() is False  # another process, same interval

    sample = read_sample(peer_cache, "ledger-t")
    assert sample["ledger:received"] == 2
    assert sample["ledger:exhausted"] == 1
    assert sample["ledger:in_progress"] == 0
    assert (sample["dlq:visible"], sample["dlq:not_visible"]) == (4, 1)
    # The first sample sets the status counts from the table: one COUNT per counted
    # status, by one process; the next ones read the counts kept in Redis. `in_progress`
    # (the items under a lease, as many as the fleet's threads) is counted each time.
    assert sorted(queries) == sorted([*COUNTED, Status.IN_PROGRESS])
    clock.advance(60)
    cache.delete(LEASE_PREFIX + "ledger-t")  # the interval's lease ended
    assert sampler(peer_cache).sample_once() is True
    assert len(queries) == len(COUNTED) + 2
    assert read_sample(cache, "ledger-t")["ledger:received"] == 2


# --- EMF ------------------------------------------------------------------------------------


def test_an_emf_line_follows_the_specification_with_a_dimensionless_metric():
    document = json.loads(emf_line({"EventsRejected": 2}, timestamp_ms=1_800_000_000_000))

    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert document["_aws"]["Timestamp"] == 1_800_000_000_000
    assert directive == {
        "Namespace": "DlqReplay",
        "Dimensions": [[]],
        "Metrics": [{"Name": "EventsRejected", "Unit": "Count"}],
    }
    assert document["EventsRejected"] == 2


def test_emf_counts_print_nothing_when_nothing_counted_and_once_per_flush(clock):
    lines: list[str] = []
    emf = EmfCounts(lines.append, clock=clock)
    emf.flush()
    emf.ingested("accepted", target_arn=TARGET_ARN, dlq_error_code=None)
    emf.ingested("requeued", target_arn=TARGET_ARN, dlq_error_code=None)
    emf.ingested("rejected", target_arn=None, dlq_error_code=None)
    emf.flush()
    emf.flush()

    [line] = lines
    document = json.loads(line)
    assert (document["EventsIngested"], document["EventsRejected"]) == (2, 1)


def test_a_workers_emf_prints_each_exhausted_outcome_at_once(clock, ledger, receive):
    lines: list[str] = []
    emf = EmfCounts(
        lines.append, replay_outcomes=frozenset({"exhausted"}), immediate=True, clock=clock
    )

    emf.finished(observed(settle(ledger, receive(), Status.REPLAYED)))
    emf.finished(observed(settle(ledger, receive(), Status.EXHAUSTED)))

    assert [json.loads(line)["EventsExhausted"] for line in lines] == [1]


# --- prefork: several processes, one sum ------------------------------------------------------


def test_the_multiprocess_collector_adds_up_what_two_processes_counted(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from dlq.metrics.prometheus import PrometheusMetrics
        metrics = PrometheusMetrics()
        for _ in range(int(sys.argv[1])):
            metrics.ingested("accepted", target_arn=sys.argv[2], dlq_error_code="TIMEOUT")
        metrics.genesys_call("GET /api/v2/conversations/{id}", "429")
        """
    )
    arn = "arn:aws:sqs:us-east-1:111122223333:crm-events"
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    for count in (3, 4):
        subprocess.run([sys.executable, "-c", script, str(count), arn], env=env, check=True)

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    labels = {
        "outcome": "ingested",
        "target": "sqs:crm-events",
        "error_code": "none",
        "dlq_error_code": "TIMEOUT",
    }

    assert len(list(tmp_path.glob("counter_*.db"))) == 2
    assert registry.get_sample_value("dlq_replay_events_total", labels) == 7
    endpoint = {"endpoint": "GET /api/v2/conversations/{id}"}
    assert registry.get_sample_value("dlq_replay_genesys_rate_limited_total", endpoint) == 2
