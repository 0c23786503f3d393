"""`dlq-replay poll`: the long-poll front door for containers."""

from __future__ import annotations

import os
import signal
from types import FrameType

import click

from cli._common import friendly_errors, redis_of, settings
from dlq.aws import aws_client
from dlq.logs import configure_logging
from dlq.metrics.wiring import process_metrics, start_endpoint
from ingest.frontdoor import FrontDoor
from ingest.poller import Poller


@click.command()
@click.option("--receivers", type=int, default=None, help="Concurrent receive loops.")
@click.option("--until-empty", is_flag=True, help="Stop when a receive comes back empty.")
@friendly_errors
def poll(receivers: int | None, until_empty: bool) -> None:
    """Long-poll the DLQ and hand each message to the ledger and the workers."""
    config = settings()
    config.require("dlq_queue_url", purpose="the poller")
    configure_logging(secrets=[config.genesys_client_secret.get_secret_value()])
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
    metrics = process_metrics(config, cache, prometheus=endpoint is not None)
    poller = Poller(
        sqs=aws_client("sqs", config),
        queue_url=config.dlq_queue_url,
        front_door=FrontDoor.from_settings(config, metrics=metrics),
        receivers=receivers or config.poller_receivers,
        wait_seconds=config.poller_wait_seconds,
        metrics=metrics,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        poller.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stats = poller.run(until_empty=until_empty)
    click.echo(f"poller stopped: {dict(stats.counts)}", err=True)
