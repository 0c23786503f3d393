"""The `dlq-replay` command: the composition root, where settings meet the parts."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from functools import wraps
from types import FrameType
from typing import Any, TypeVar

import click

from cli.output import Output
from dlq.errors import ConfigurationError
from dlq.settings import Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(command: F) -> F:
    """Configuration problems end the command with one line, not a traceback."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConfigurationError as exc:
            Output().error(str(exc))
            sys.exit(2)

    return run  # type: ignore[return-value]


def settings() -> Settings:
    return load_settings()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dlq-replay")
def main() -> None:
    """Replay dead-lettered Genesys Cloud events to the EventBridge targets that missed them."""


@main.command()
@click.option("--queue", "queues", multiple=True, help="Also create this SQS queue (repeat).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def setup(queues: tuple[str, ...], as_json: bool) -> None:
    """Create the DLQ, extra queues and the ledger table (idempotent; for local use)."""
    from devstack.provision import provision

    config = settings()
    if config.replay_parking_queue_url:
        queues = (*queues, config.replay_parking_queue_url.rstrip("/").rsplit("/", 1)[-1])
    done = provision(config, queues=queues)
    out = Output(as_json=as_json)
    if as_json:
        out.json({"dlq_url": done.dlq_url, "table_created": done.table_created,
                  "queues": done.queue_urls})  # fmt: skip
        return
    table = "created" if done.table_created else "already there"
    out.line(f"ledger table {config.ledger_table}: {table}")
    out.table("queues", ["name", "url", "arn"],
              [(n, u, done.queue_arns[n]) for n, u in done.queue_urls.items()])  # fmt: skip


@main.command()
@click.option("--receivers", type=int, default=None, help="Concurrent receive loops.")
@click.option("--until-empty", is_flag=True, help="Stop when a receive comes back empty.")
@friendly_errors
def poll(receivers: int | None, until_empty: bool) -> None:
    """Long-poll the DLQ and hand each message to the ledger and the workers."""
    from dlq.aws import aws_client
    from dlq.logs import configure_logging
    from ingest.frontdoor import FrontDoor
    from ingest.poller import Poller

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


@main.command(
    "genesys-sim",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def genesys_sim(ctx: click.Context) -> None:
    """Run the Genesys Cloud simulator (see `dlq-replay genesys-sim --help`)."""
    from devstack.genesys_sim import main as sim_main

    sys.exit(sim_main(list(ctx.args)))


def _register() -> None:
    from cli import demo, operate, seed

    main.add_command(operate.status)
    main.add_command(operate.inspect)
    main.add_command(operate.redrive)
    main.add_command(seed.seed)
    main.add_command(demo.demo)


_register()
