"""`dlq-replay poll`: the long-poll front door for containers."""

from __future__ import annotations

import signal
from types import FrameType

import click

from cli._common import friendly_errors, settings
from dlq.aws import aws_client
from dlq.logs import configure_logging
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
    poller = Poller(
        sqs=aws_client("sqs", config),
        queue_url=config.dlq_queue_url,
        front_door=FrontDoor.from_settings(config),
        receivers=receivers or config.poller_receivers,
        wait_seconds=config.poller_wait_seconds,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        poller.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stats = poller.run(until_empty=until_empty)
    click.echo(f"poller stopped: {dict(stats.counts)}", err=True)
