"""Flower's settings for dlq-replay: authentication required, history kept across restarts.

`celery -A tasks flower` reads ./flowerconfig.py from the working directory, and silently
runs without it (and without the auth check below) when it is missing there. So give the path:
the compose file passes `--conf=/app/flowerconfig.py` and the image sets FLOWER_CONF to it;
an explicit path that is missing is an error, not a silent default.
Flower 2.x runs it with tornado's `parse_config_file`: first Flower applies its own `FLOWER_*`
environment variables and the command line, then it executes this file and takes every
top-level name that matches one of its options, then it applies the command line again (so
a command-line flag still wins). Helpers here start with an underscore: any other top-level
name could be taken for an option.

Security: the web UI and the API require HTTP basic auth, and Flower refuses to start without
it unless FLOWER_ALLOW_NO_AUTH=1, and with the .env.example placeholder password. `/metrics`
(Prometheus) and `/healthcheck` are NOT behind auth, by Flower's design, and basic auth
travels in clear text without TLS: keep Flower on a private network (the compose file
publishes it on 127.0.0.1 only) or behind a TLS proxy.
"""

import os

from tornado.options import options as _options

from dlq.settings import PLACEHOLDER_PREFIX as _PLACEHOLDER

_TRUE = {"1", "true", "yes"}
_HOW = (
    "set FLOWER_BASIC_AUTH=user:password[,user2:password2] "
    "(or FLOWER_ALLOW_NO_AUTH=1 on a trusted private network only)"
)


def _credentials() -> list[str]:
    """The `user:password` pairs Flower took from FLOWER_BASIC_AUTH or --basic-auth, checked."""
    given = [entry.strip() for entry in (_options.basic_auth or []) if entry.strip()]
    for entry in given:
        user, _, password = entry.partition(":")
        if not user or not password:
            raise SystemExit(
                f"flower: FLOWER_BASIC_AUTH has an entry that is not user:password; {_HOW}"
            )
        if password.startswith(_PLACEHOLDER):
            # The .env.example value, copied and never changed: published, so no auth at all.
            raise SystemExit(
                f"flower: FLOWER_BASIC_AUTH still has the .env.example placeholder password "
                f"for {user}: set FLOWER_BASIC_AUTH={user}:<a long random password> "
                "(e.g. openssl rand -hex 16)"
            )
    return given


def _env_or(name: str, default: object) -> object:
    """What Flower parsed from FLOWER_<NAME> when that is set, else this file's default."""
    if f"FLOWER_{name.upper()}" in os.environ:
        return getattr(_options, name)
    return default


_pairs = _credentials()
_no_auth_allowed = os.environ.get("FLOWER_ALLOW_NO_AUTH", "").strip().lower() in _TRUE
if _pairs:
    basic_auth = _pairs
elif not _options.auth and not _no_auth_allowed:  # Flower's OAuth (--auth) counts as auth too
    raise SystemExit(f"flower: refusing to start without authentication: {_HOW}")

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
