"""A Genesys Cloud simulator: the login, conversation and analytics endpoints over real HTTP.

It answers with the shapes, statuses and headers of the real API (as `dlq/genesys/`
documents them, with their sources; tests/fixtures/genesys-*.json): client-credentials
tokens with a lifetime, the analytics multi-get (`?id=a,b,...`: unknown ids left out,
400 beyond `analytics_max_ids`, a configurable lag), per-token rate limits with 429 +
Retry-After, Genesys error bodies, `inin-*` headers everywhere (`inin-ratelimit-allowed`
is the enforced limit per window, or `advertised_limit` when a test wants the two
apart), and faults on demand (latency, random 5xx, scripted statuses per conversation,
an outage switch, token revocation). `/__admin/...` (loopback only, no auth) seeds, scripts,
counts and resets; `devstack.sim_admin.SimAdmin` is its typed client.

In tests: `with GenesysSimulator(rate_limit=30, rate_window=6) as sim: sim.url`.
From a shell: `python -m devstack.genesys_sim --port 8089 --auto-create`.

This module starts and stops it (and is its command line); `sim_http` answers the
requests, `sim_admin_routes` the admin calls, `sim_state` holds what it knows.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from devstack.sim_admin import SimAdmin
from devstack.sim_conversations import generate_conversation
from devstack.sim_events import named_participants, read_events_file
from devstack.sim_http import SimServer
from devstack.sim_state import SimConfig, SimState


class GenesysSimulator:
    """The simulator in this process on a free loopback port, started and stopped as a context."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        """`config` takes `SimConfig` fields: rate_limit=30, rate_window=6, auto_create=True..."""
        self.config = SimConfig(**config)
        self.state = SimState(self.config)
        self._server = SimServer((host, port), self.state)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL serving both the login and the API routes."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def admin(self) -> SimAdmin:
        """A typed client of the admin endpoints."""
        return SimAdmin(self.url)

    def start(self) -> GenesysSimulator:
        # A short poll interval keeps `stop()` quick (shutdown waits for one poll).
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="genesys-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Serve in the calling thread until `KeyboardInterrupt` (the CLI's mode)."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def __enter__(self) -> GenesysSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ShowsDefaults(argparse.HelpFormatter):
    """Help that says each option's default, where it has one (not a flag's False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "%(default)" in help_text:
            return help_text
        return f"{help_text} (default: %(default)s)"


def _parser() -> argparse.ArgumentParser:
    defaults = SimConfig()
    # Every option says its default: a reader configures GENESYS_CLIENT_ID from `--help`.
    p = argparse.ArgumentParser(
        prog="genesys-sim",
        description=__doc__.splitlines()[0],
        formatter_class=_ShowsDefaults,
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (loopback)")
    p.add_argument("--port", type=int, default=8089, help="port of the login and API routes")
    p.add_argument(
        "--client-id",
        default=defaults.client_id,
        help="the OAuth client id it accepts (GENESYS_CLIENT_ID)",
    )
    p.add_argument(
        "--client-secret",
        default=defaults.client_secret,
        help="the client secret it accepts (GENESYS_CLIENT_SECRET; a test value, not a secret)",
    )
    p.add_argument(
        "--token-lifetime",
        type=float,
        default=defaults.token_lifetime,
        help="seconds a token lives",
    )
    p.add_argument("--rate-limit", type=int, default=defaults.rate_limit, help="calls per window")
    p.add_argument("--rate-window", type=float, default=defaults.rate_window, help="seconds")
    p.add_argument(
        "--advertised-limit",
        type=int,
        default=None,
        help="inin-ratelimit-allowed to send, when it should differ from --rate-limit",
    )
    p.add_argument("--auto-create", action="store_true", help="answer any UUID with a conversation")
    p.add_argument(
        "--events",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="events (JSON, or JSON lines: EventBridge events, DLQ messages, `aws sqs "
        "receive-message` output) whose conversations it knows with the participants they "
        "name, so replaying them annotates those participants (repeat)",
    )
    p.add_argument("--latency-ms", type=float, default=0.0, help="added to every API call")
    p.add_argument("--error-rate", type=float, default=0.0, help="fraction of random 5xx")
    p.add_argument("--seed", type=int, default=None, help="seed of the random 5xx")
    p.add_argument("--reject-all", action="store_true", help="answer every API call 503")
    p.add_argument(
        "--retry-after-http-date",
        action="store_true",
        help="send Retry-After as an HTTP date instead of seconds",
    )
    p.add_argument(
        "--analytics-max-ids",
        type=int,
        default=defaults.analytics_max_ids,
        help="ids per analytics multi-get beyond which it answers 400",
    )
    p.add_argument(
        "--analytics-lag-seconds",
        type=float,
        default=defaults.analytics_lag_seconds,
        help="how long after its creation a conversation shows in analytics",
    )
    p.add_argument("--conversation", action="append", default=[], help="seed this id (repeat)")
    p.add_argument(
        "--deny-permission",
        action="append",
        default=[],
        help="a permission the OAuth client lacks, e.g. conversation:communication:view (repeat)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator in the foreground until interrupted (SIGINT or SIGTERM)."""
    args = _parser().parse_args(argv)
    sim = GenesysSimulator(
        host=args.host,
        port=args.port,
        client_id=args.client_id,
        client_secret=args.client_secret,
        token_lifetime=args.token_lifetime,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        advertised_limit=args.advertised_limit,
        auto_create=args.auto_create,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        seed=args.seed,
        reject_all=args.reject_all,
        retry_after_http_date=args.retry_after_http_date,
        denied_permissions=args.deny_permission,
        analytics_max_ids=args.analytics_max_ids,
        analytics_lag_seconds=args.analytics_lag_seconds,
    )
    sim.state.seed([generate_conversation(i) for i in args.conversation])
    for path in args.events:
        learned = sim.state.learn(named_participants(read_events_file(path)))
        print(
            f"genesys-sim: {path}: {learned['created']} conversations with the participants its "
            f"events name, {learned['participants_added']} participants added",
            flush=True,
        )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(f"genesys-sim listening on {sim.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        sim.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
