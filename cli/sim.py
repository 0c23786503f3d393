"""`dlq-replay genesys-sim`: the local Genesys Cloud simulator (development only)."""

from __future__ import annotations

import sys

import click


@click.command(
    "genesys-sim",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def genesys_sim(ctx: click.Context) -> None:
    """Run the Genesys Cloud simulator (see `dlq-replay genesys-sim --help`)."""
    from devstack.genesys_sim import main as sim_main

    sys.exit(sim_main(list(ctx.args)))
