"""The `dlq-replay` command: the composition root, where settings meet the parts.

One module per command (`cli/<command>.py`) over `cli/_common.py`. The group loads a
command's module only when that command runs (click's documented lazy-loading group),
so `dlq-replay setup` or `poll` never imports the local dev stack or the demo.
"""

from __future__ import annotations

import importlib

import click

#: command name -> "module:function"
COMMANDS = {
    "setup": "cli.setup:setup",
    "doctor": "cli.doctor:doctor",
    "poll": "cli.poll:poll",
    "status": "cli.status:status",
    "inspect": "cli.inspect:inspect",
    "redrive": "cli.redrive:redrive",
    "resolve": "cli.resolve:resolve",
    "forget": "cli.forget:forget",
    "export": "cli.export:export",
    "unpark": "cli.unpark:unpark",
    "pause": "cli.pause:pause",
    "resume": "cli.resume:resume",
    "paused": "cli.paused:paused",
    "seed": "cli.seed:seed",
    "demo": "cli.demo:demo",
    "genesys-sim": "cli.sim:genesys_sim",
    "health": "cli.health:health",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, name = target.split(":")
        command = getattr(importlib.import_module(module), name)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dlq-replay")
def main() -> None:
    """Replay dead-lettered Genesys Cloud events to the EventBridge targets that missed them."""
