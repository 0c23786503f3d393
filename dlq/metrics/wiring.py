"""The observers a process runs with, built from the settings (for the composition roots)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis

from dlq.metrics.buffer import CountBuffer
from dlq.metrics.counters import OutcomeCounters
from dlq.metrics.emf import EmfCounts
from dlq.observe import MetricsObserver, fanout
from dlq.settings import Settings

log = logging.getLogger(__name__)


def process_metrics(
    settings: Settings,
    client: redis.Redis,
    *,
    prometheus: bool,
    emf: EmfCounts | None = None,
    counts: CountBuffer | None = None,
) -> MetricsObserver:
    """Redis outcome counters (always: `status` reads them; summed in `counts` until its
    flush when given), Prometheus when this process has an endpoint, and `emf` when given."""
    observers: list[MetricsObserver] = [
        OutcomeCounters(client, settings.ledger_table, counts=counts)
    ]
    if prometheus:
        # Imported here, once the process has decided on PROMETHEUS_MULTIPROC_DIR.
        from dlq.metrics.prometheus import PrometheusMetrics

        observers.append(PrometheusMetrics())
    if emf is not None:
        observers.append(emf)
    return fanout(*observers)


def worker_emf(settings: Settings) -> EmfCounts | None:
    """EMF lines for failed and exhausted outcomes, printed at once, when asked for."""
    if not settings.replay_metrics_emf:
        return None
    return EmfCounts(
        lambda line: print(line, flush=True),
        replay_outcomes=frozenset({"failed", "exhausted"}),
        immediate=True,
    )


def start_endpoint(
    settings: Settings, client: redis.Redis, *, port: int, setting: str
) -> Callable[[], None] | None:
    """Serve `/metrics` on `port` and sample the ledger and the DLQ in the background.

    `setting` names the port's variable for the error. A port that cannot be bound is
    logged, not raised: a worker without its endpoint still replays. Answers what stops
    both, or None when not serving.
    """
    from dlq.aws import aws_client
    from dlq.clock import SYSTEM_CLOCK
    from dlq.ledger import Ledger
    from dlq.metrics.prometheus import SampleCollector, serve
    from dlq.metrics.sampling import Sampler, read_sample, sqs_queue_depth

    scope = settings.ledger_table
    try:
        stop_serving = serve(
            port,
            settings.replay_metrics_address,
            collectors=(SampleCollector(lambda: read_sample(client, scope), SYSTEM_CLOCK.now),),
        )
    except OSError as exc:
        log.error(
            f"the metrics endpoint could not listen on {settings.replay_metrics_address}:{port} "
            f"({exc}): set {setting} to a free port, or 0 to turn it off; running without it"
        )
        return None
    ledger = Ledger(aws_client("dynamodb", settings), settings.ledger_table)
    depth = (
        sqs_queue_depth(aws_client("sqs", settings), settings.dlq_queue_url)
        if settings.dlq_queue_url
        else None
    )
    stop_sampling = Sampler(
        client,
        scope,
        count_status=ledger.count_by_status,
        queue_depth=depth,
        interval=settings.replay_metrics_sample_seconds,
        recount_every=settings.replay_tally_recount_seconds,
    ).start()
    log.debug(f"metrics: serving /metrics on {settings.replay_metrics_address}:{port}")

    def stop() -> None:
        stop_sampling.set()
        stop_serving()

    return stop
