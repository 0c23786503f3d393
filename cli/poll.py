"""`dlq-replay poll`: the long-poll front door for containers.

Its stderr is a log of JSON lines from the first line on: a failure that ends it, a
setting that does not load included, is one of them, at ERROR, with the line and the exit
status every other command gives (`cli.failures`). Its stdout is one JSON line at the end:
what it did.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from types import FrameType

import click

from cli._common import redis_of, settings
from cli.failures import FAILED, failure_of
from dlq.health import Heartbeat
from dlq.logs import configure_logging
from dlq.metrics.wiring import start_endpoint
from dlq.secrets.redis_auth import RedisCredentials
from dlq.settings import Settings
from dlq.startup import check_ready
from ingest.poller import Poller, PollStats

log = logging.getLogger(__name__)

#: The outcomes the closing line always counts (zeros included, for scripts).
OUTCOMES = ("accepted", "duplicate", "rejected", "kept")


@click.command()
@click.option("--receivers", type=int, default=None, help="Concurrent receive loops.")
@click.option(
    "--until-empty",
    is_flag=True,
    help="Stop when a receive comes back empty (receives then wait 1 s at most, not a long poll).",
)
def poll(receivers: int | None, until_empty: bool) -> None:
    """Long-poll the DLQ and hand each message to the ledger and the workers."""
    configure_logging()
    redis_url = "REDIS_URL"
    try:
        config = settings()
        redis_url = config.redis_url
        queue_url, stats = _poll(config, receivers, until_empty=until_empty)
    except Exception as exc:
        failure = failure_of(exc, redis_url)
        if failure is None:
            log.exception("the poller stopped on an unexpected error")
            sys.exit(FAILED)
        log.error(failure.text)
        sys.exit(failure.status)
    counts = {outcome: stats.counts[outcome] for outcome in OUTCOMES}
    log.info("poller stopped: " + ", ".join(f"{n} {outcome}" for outcome, n in counts.items()))
    summary = {"command": "poll", "queue_url": queue_url, "until_empty": until_empty, **counts}
    click.echo(json.dumps(summary))


def _poll(config: Settings, receivers: int | None, *, until_empty: bool) -> tuple[str, PollStats]:
    """Run the poller until it is stopped (or the queue is empty); (queue, what it did)."""
    config.require("dlq_queue_url", purpose="the poller")
    configure_logging(secrets=[config.genesys_client_secret.get_secret_value()])
    heartbeat = Heartbeat.of("poller", config.replay_health_dir)
    heartbeat.clear()
    # Credentials, the ledger table and Redis, before the first receive: without the
    # table every message would fail its hand-off, and an empty queue would not say so.
    unready = check_ready(config, ledger=True, redis_auth=RedisCredentials.from_settings(config))
    if unready is not None:
        log.error(unready.text)
        sys.exit(unready.status)
    # One process: its metrics live in memory, never in a worker's multiprocess files
    # (a shared .env may name that directory), so the variable is dropped before
    # prometheus_client is imported.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cache = redis_of(config, health_check_interval=30)
    endpoint = (
        start_endpoint(
            config, cache, port=config.poller_metrics_port, setting="POLLER_METRICS_PORT"
        )
        if config.poller_metrics_port
        else None
    )
    poller = Poller.from_settings(
        config,
        cache,
        receivers=receivers or config.poller_receivers,
        wait_seconds=config.poller_wait_seconds,
        prometheus=endpoint is not None,
        heartbeat=heartbeat,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        poller.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return config.dlq_queue_url, poller.run(until_empty=until_empty)
    finally:
        heartbeat.clear()
