"""The Prometheus implementation of `MetricsObserver`, and its HTTP endpoint.

Import this module only after `PROMETHEUS_MULTIPROC_DIR` is decided: prometheus_client
chooses, at its import, between in-memory values and the per-process files that a
prefork worker's children write and its main process adds up
(`prometheus_client.multiprocess`). `tasks.metrics` and `cli.poll` take care of that.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from dlq.metrics.counters import ingest_labels, outcome_labels
from dlq.metrics.labels import target_label
from dlq.observe import Outcome

log = logging.getLogger(__name__)

#: Every name starts so; counters end in `_total` on the wire.
NS = "dlq_replay"

EVENTS = Counter(
    f"{NS}_events",
    "DLQ events by outcome: ingested, duplicate, rejected (ingest); replayed, failed, "
    "exhausted (replay). error_code: the replay's own failure code for failed and "
    "exhausted (none otherwise); dlq_error_code: the DLQ's ERROR_CODE.",
    ["outcome", "target", "error_code", "dlq_error_code"],
)
REPLAY_LATENCY = Histogram(
    f"{NS}_replay_latency_seconds",
    "From the ledger item's received_at (its DLQ arrival at the ingest) to its replay.",
    ["target"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 12 * 3600, 86400),
)
TRACKING_LAG = Histogram(
    f"{NS}_tracking_lag_seconds",
    "From a conversation's first outcome news to the PATCH of its participant attributes.",
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
GENESYS_REQUESTS = Counter(
    f"{NS}_genesys_requests",
    "Genesys Cloud requests by templated endpoint and HTTP status (or timeout, connection_error).",
    ["endpoint", "status"],
)
GENESYS_429 = Counter(
    f"{NS}_genesys_rate_limited",
    "Genesys Cloud 429 answers, by templated endpoint.",
    ["endpoint"],
)
BUDGET = Counter(
    f"{NS}_genesys_budget_requests",
    "Answers of the fleet's shared Genesys budget: granted, or wait.",
    ["priority", "result"],
)
BUDGET_PACE = Gauge(
    f"{NS}_genesys_budget_pace_per_minute",
    "The rate the shared Genesys budget paces the fleet at (calls per minute).",
    multiprocess_mode="mostrecent",
)
DLQ_MESSAGE_AGE = Histogram(
    f"{NS}_dlq_message_age_seconds",
    "Age of DLQ messages when the poller received them (now - SentTimestamp).",
    buckets=(1, 10, 60, 300, 900, 3600, 3 * 3600, 12 * 3600, 86400, 4 * 86400),
)
TARGET_HOLDS = Counter(
    f"{NS}_target_holds",
    "Changes of a target's hold: breaker_open, breaker_half_open, breaker_closed (the "
    "fleet's breaker per target), paused, resumed (an operator's pause).",
    ["target", "change"],
)


class PrometheusMetrics:
    """Records what the domain reports in this process's Prometheus metrics."""

    def ingested(self, outcome: str, *, target_arn: str | None, dlq_error_code: str | None) -> None:
        labels = ingest_labels(outcome, target_arn, dlq_error_code)
        if labels is not None:
            EVENTS.labels(*labels).inc()

    def finished(self, outcome: Outcome) -> None:
        EVENTS.labels(*outcome_labels(outcome)).inc()
        seconds = outcome.latency_seconds
        if outcome.status == "replayed" and seconds is not None:
            REPLAY_LATENCY.labels(target_label(outcome.target_arn)).observe(seconds)

    def tracked(self, *, lag_seconds: float) -> None:
        TRACKING_LAG.observe(max(0.0, lag_seconds))

    def genesys_call(self, endpoint: str, status: str) -> None:
        GENESYS_REQUESTS.labels(endpoint, status).inc()
        if status == "429":
            GENESYS_429.labels(endpoint).inc()

    def budget(self, priority: str, *, granted: bool, pace_per_minute: float) -> None:
        BUDGET.labels(priority, "granted" if granted else "wait").inc()
        BUDGET_PACE.set(pace_per_minute)

    def dlq_message_age(self, seconds: float) -> None:
        DLQ_MESSAGE_AGE.observe(max(0.0, seconds))

    def target_hold(self, target_arn: str, change: str) -> None:
        TARGET_HOLDS.labels(target_label(target_arn), change).inc()


class SampleCollector(Collector):
    """The fleet's latest sample (`dlq.metrics.sampling`), read from Redis at each scrape."""

    def __init__(self, read: Callable[[], Mapping[str, float]], now: Callable[[], float]) -> None:
        self._read = read
        self._now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            sample = self._read()
        except Exception as exc:
            log.warning(f"could not read the metrics sample from Redis: {exc}")
            return
        if not sample:
            return
        ledger = GaugeMetricFamily(
            f"{NS}_ledger_items",
            "Ledger items waiting, by status (sampled from the counts kept as items move).",
            labels=["status"],
        )
        dlq = GaugeMetricFamily(
            f"{NS}_dlq_messages",
            "DLQ messages (sampled with GetQueueAttributes): visible, not_visible (in flight).",
            labels=["state"],
        )
        for name, value in sorted(sample.items()):
            kind, _, label = name.partition(":")
            if kind == "ledger":
                ledger.add_metric([label], value)
            elif kind == "dlq":
                dlq.add_metric([label], value)
        yield ledger
        yield dlq
        if "sampled_at" in sample:
            yield GaugeMetricFamily(
                f"{NS}_sample_age_seconds",
                "Seconds since the sample above was taken (alarm when it grows: no sampler).",
                value=max(0.0, self._now() - sample["sampled_at"]),
            )


def multiprocess_dir() -> str | None:
    """The directory prometheus_client writes per-process values to, if any."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def serve(port: int, address: str, *, collectors: tuple[Collector, ...] = ()) -> Callable[[], None]:
    """Serve `/metrics` on `address:port` from a daemon thread; answers what stops it.

    In multiprocess mode the registry adds up every process's files (this process's
    too); otherwise it is this process's own.
    """
    if multiprocess_dir() is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    for collector in collectors:
        registry.register(collector)
    server, _ = start_http_server(port, addr=address, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        for collector in collectors:
            registry.unregister(collector)

    return stop


def mark_process_dead(pid: int) -> None:
    """Drop a finished process's live gauge files (prometheus_client's advice)."""
    from prometheus_client import multiprocess

    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
