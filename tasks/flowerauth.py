"""Flower never serves without authentication, however and wherever it is started.

Flower reads `flowerconfig.py` from the directory it runs in (or the path `--conf` names)
and silently goes without it elsewhere, so a check kept there is skipped by
`celery -A tasks flower` run from any other directory. Every start, though, loads this
Celery app (`-A tasks`), and Flower builds its web application only once it has read all
of its options (FLOWER_* variables, the command line, then the config file): its
constructor asks the app's loader to import the task modules, which sends Celery's
`import_modules` signal before any port is opened. `tasks.application` connects
`require_authentication` there, for the Flower command only.

Authentication is Flower's HTTP basic auth (FLOWER_BASIC_AUTH or --basic-auth, each entry
`user:password`, never the .env.example placeholder) or its OAuth (--auth). The one way out
is FLOWER_ALLOW_NO_AUTH=1, for a trusted private network. `/metrics` and `/healthcheck` are
never behind auth (Flower's design): keep Flower private either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import click

from dlq.settings import PLACEHOLDER_PREFIX

#: The environment variable that lets Flower run without authentication.
ALLOW_NO_AUTH = "FLOWER_ALLOW_NO_AUTH"
_TRUE = {"1", "true", "yes"}
_HOW = (
    "set FLOWER_BASIC_AUTH=user:password[,user2:password2] "
    f"(or {ALLOW_NO_AUTH}=1 on a trusted private network only)"
)


def running_flower() -> bool:
    """Whether this process is the `flower` command (of `celery`, or `python -m flower`)."""
    context = click.get_current_context(silent=True)
    while context is not None:
        if context.command.name == "flower":
            return True
        context = context.parent
    return False


def require_authentication(options: Any, environ: Mapping[str, str]) -> None:
    """Stop Flower with one line unless it has usable authentication, or is told to go
    without it (`FLOWER_ALLOW_NO_AUTH=1`). `options` is Flower's (tornado's) parsed options."""
    credentials = _checked(options.basic_auth or [])
    if credentials or options.auth:  # Flower's OAuth (--auth) counts as auth too
        return
    if environ.get(ALLOW_NO_AUTH, "").strip().lower() in _TRUE:
        return
    raise SystemExit(f"flower: refusing to start without authentication: {_HOW}")


def _checked(entries: Iterable[str]) -> list[str]:
    """The `user:password` pairs Flower took from FLOWER_BASIC_AUTH or --basic-auth."""
    given = [entry.strip() for entry in entries if entry.strip()]
    for entry in given:
        user, _, password = entry.partition(":")
        if not user or not password:
            raise SystemExit(
                f"flower: FLOWER_BASIC_AUTH has an entry that is not user:password; {_HOW}"
            )
        if password.startswith(PLACEHOLDER_PREFIX):
            # The .env.example value, copied and never changed: published, so no auth at all.
            raise SystemExit(
                f"flower: FLOWER_BASIC_AUTH still has the .env.example placeholder password "
                f"for {user}: set FLOWER_BASIC_AUTH={user}:<a long random password> "
                "(e.g. openssl rand -hex 16)"
            )
    return given
