"""Flower's settings for dlq-replay: history kept across restarts, memory bounded.

`celery -A tasks flower` reads ./flowerconfig.py from the working directory, and silently
runs without it when it is missing there. So give the path where it matters: the compose
file passes `--conf=/app/flowerconfig.py` and the image sets FLOWER_CONF to it; an explicit
path that is missing is an error, not a silent default.
Flower 2.x runs it with tornado's `parse_config_file`: first Flower applies its own `FLOWER_*`
environment variables and the command line, then it executes this file and takes every
top-level name that matches one of its options, then it applies the command line again (so
a command-line flag still wins). Helpers here start with an underscore: any other top-level
name could be taken for an option.

Security is not here: it would be skipped wherever this file is not read. The Celery app
(`tasks.flowerauth`) stops any Flower it runs in that has no authentication (HTTP basic auth
or Flower's OAuth) unless FLOWER_ALLOW_NO_AUTH=1, and one with the .env.example placeholder
password. `/metrics` (Prometheus) and `/healthcheck` are NOT behind auth, by Flower's
design, and basic auth travels in clear text without TLS: keep Flower on a private network
(the compose file publishes it on 127.0.0.1 only) or behind a TLS proxy.
"""

import os

from tornado.options import options as _options


def _env_or(name: str, default: object) -> object:
    """What Flower parsed from FLOWER_<NAME> when that is set, else this file's default."""
    if f"FLOWER_{name.upper()}" in os.environ:
        return getattr(_options, name)
    return default


# History survives a restart: tasks and workers are saved to `db` (a shelve file; put it on a
# volume) every state_save_interval milliseconds and at shutdown. Each value below yields to
# its FLOWER_* variable (FLOWER_DB, FLOWER_MAX_TASKS...) and to the command line.
persistent = _env_or("persistent", True)
db = _env_or("db", "flower.db")
state_save_interval = _env_or("state_save_interval", 60_000)
# Bounded memory: the ledger is the record of every event; Flower only shows recent tasks.
max_tasks = _env_or("max_tasks", 10_000)
# A worker that comes back under a new hostname would otherwise be listed offline forever.
purge_offline_workers = _env_or("purge_offline_workers", 24 * 3600)
