"""The whole local stack as child processes: for the demo, benchmarks and fault tests.

`DevStack` starts a `redis-server`, moto's server (as AWS) and the Genesys simulator,
provisions the DLQ, a target queue and the ledger table, and starts Celery workers,
beat and pollers as real processes with the environment that points them at it all.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.moto_server import MotoServer, aws_environment
from devstack.process import ChildServer, die_with_parent, free_port
from devstack.redis_server import RedisServer
from devstack.rules import BUS
from devstack.sim_admin import SimAdmin
from devstack.synthetic import DEFAULT_ORG
from tasks.names import REPLAY_QUEUE, TRACK_QUEUE, VERIFY_QUEUE

SIM_CLIENT_ID = "dlq-replay-local-client"
SIM_CLIENT_SECRET = "local-simulator-secret"  # the simulator's own, not a real credential
#: How long the stack's processes have, together, to stop once told; then they are killed.
STOP_SECONDS = 15.0

#: `write_env_file`'s sections: a title saying what the values are, and their names.
_ENV_FILE_GROUPS = (
    (
        "AWS: moto's server on loopback, with moto's dummy credentials (not real keys).",
        ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
         "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
    ),
    (
        "The ledger and the queues, on moto.",
        ("LEDGER_TABLE", "DLQ_QUEUE_URL", "REPLAY_PARKING_QUEUE_URL"),
    ),
    ("Redis: the broker, locks, the Genesys budget.", ("REDIS_URL",)),
    ("The ingest: the poller drains the DLQ (no Lambda).", ("INGEST_FRONT_DOOR",)),
    (
        "Health checks: the processes' heartbeat files (`dlq-replay health --service ...`).",
        ("REPLAY_HEALTH_DIR",),
    ),
    (
        "The trust boundary: the demo's rule is on a custom bus, allowed for this org's events.",
        ("REPLAY_ALLOWED_BUSES", "GENESYS_ORG_ID"),
    ),
    (
        "Genesys Cloud: the local simulator and its test credentials (not a real secret).",
        ("GENESYS_API_BASE_URL", "GENESYS_LOGIN_BASE_URL", "GENESYS_CLIENT_ID",
         "GENESYS_CLIENT_SECRET"),
    ),
)  # fmt: skip


@dataclass
class SimOptions:
    """How the simulator behaves (see `dlq-replay genesys-sim --help`)."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit: int = 300
    rate_window: float = 60.0
    #: `inin-ratelimit-allowed` when it should differ from `rate_limit`.
    advertised_limit: int | None = None
    auto_create: bool = True
    seed: int | None = 7

    def argv(self) -> list[str]:
        args = [
            "--latency-ms", str(self.latency_ms),
            "--error-rate", str(self.error_rate),
            "--rate-limit", str(self.rate_limit),
            "--rate-window", str(self.rate_window),
        ]  # fmt: skip
        if self.advertised_limit is not None:
            args += ["--advertised-limit", str(self.advertised_limit)]
        if self.auto_create:
            args.append("--auto-create")
        if self.seed is not None:
            args += ["--seed", str(self.seed)]
        return args


@dataclass
class DevStack:
    """Redis, moto and the Genesys simulator on loopback, and the project's processes."""

    workdir: Path
    sim_options: SimOptions = field(default_factory=SimOptions)
    ledger_table: str = "dlq-replay-ledger"
    dlq_name: str = "genesys-eventbridge-dlq"
    target_name: str = "crm-events"
    children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> DevStack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.workdir / "redis").start()
        self.moto = MotoServer(self.workdir / "moto").start()
        port = free_port()
        self.sim = ChildServer(
            [
                sys.executable, "-m", "devstack.genesys_sim", "--port", str(port),
                "--client-id", SIM_CLIENT_ID, "--client-secret", SIM_CLIENT_SECRET,
                *self.sim_options.argv(),
            ],
            port,
            log=self.workdir / "genesys-sim.log",
        ).start()  # fmt: skip
        self.sim_url = f"http://127.0.0.1:{port}"
        return self

    @property
    def admin(self) -> SimAdmin:
        return SimAdmin(self.sim_url)

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of a process of the project pointed at this stack."""
        return {**os.environ, **self.own_env(**overrides)}

    def own_env(self, **overrides: str) -> dict[str, str]:
        """Only the variables that point a process at this stack (and `overrides`)."""
        env = {
            **aws_environment(self.moto.url),
            "REDIS_URL": self.redis.url,
            "GENESYS_API_BASE_URL": self.sim_url,
            "GENESYS_LOGIN_BASE_URL": self.sim_url,
            "GENESYS_CLIENT_ID": SIM_CLIENT_ID,
            "GENESYS_CLIENT_SECRET": SIM_CLIENT_SECRET,
            "LEDGER_TABLE": self.ledger_table,
            "DLQ_QUEUE_URL": f"{self.moto.url}/123456789012/{self.dlq_name}",
            # The demo's rule is on a custom bus (devstack.rules.BUS), as for Genesys
            # events forwarded from the partner bus: the trust boundary must allow it.
            "REPLAY_ALLOWED_BUSES": BUS,
            "GENESYS_ORG_ID": DEFAULT_ORG,
            # The demo drains the DLQ with the poller; no Lambda is triggered by it.
            "INGEST_FRONT_DOOR": "poller",
            # The processes' heartbeat files stay with the stack's other files.
            "REPLAY_HEALTH_DIR": str(self.workdir / "health"),
        }
        env.update(overrides)
        return env

    def write_env_file(self, path: Path, **overrides: str) -> Path:
        """`export` lines (shell-quoted) of `own_env(**overrides)`, for an operator to `source`.

        Grouped and commented, so a reader knows which values are stand-ins: moto's dummy
        AWS keys and the simulator's client are test credentials, not secrets.
        """
        env = self.own_env(**overrides)
        lines = [
            f"# The dlq-replay dev stack started in {self.workdir}: `source` this file to point",
            "# dlq-replay commands at it. Its servers run only while the process that started",
            "# them does (the demo: until Ctrl-C).",
        ]
        for title, names in _ENV_FILE_GROUPS:
            present = [name for name in names if name in env]
            if present:
                lines += ["", f"# {title}"]
                lines += [f"export {name}={shlex.quote(env.pop(name))}" for name in present]
        if env:
            lines += ["", "# What the stack's processes run with besides."]
            lines += [f"export {name}={shlex.quote(env[name])}" for name in sorted(env)]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)  # stand-in credentials only, but a file of exports stays private
        return path

    def apply_env(self, **overrides: str) -> None:
        """Point this process at the stack too (the demo's poller and reports run here)."""
        os.environ.update(self.env(**overrides))

    def spawn(self, argv: list[str], name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a child with its output in `<workdir>/<name>.log`."""
        log = (self.workdir / f"{name}.log").open("ab")
        child = subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
        self.children.append(child)
        return child

    def start_worker(
        self,
        *,
        concurrency: int = 16,
        queues: str = "replay,verify,track",
        name: str = "worker",
        env: dict[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """`celery -A tasks worker` with a thread pool, as the README documents it.

        Deployments run `-Q replay,verify` and `-Q track` apart (see `start_workers`); one worker
        on both queues is the smallest setup, for tests.
        """
        argv = [
            sys.executable, "-m", "celery", "-A", "tasks", "worker",
            "--pool", "threads", "--concurrency", str(concurrency), "-Q", queues,
            "--hostname", f"{name}@%h", "--without-mingle", "--without-gossip",
            "--loglevel", "INFO",
        ]  # fmt: skip
        # The metric files in the workdir with everything else, not a temp dir left behind;
        # one directory per worker, as each empties its own at start.
        env = {"PROMETHEUS_MULTIPROC_DIR": str(self.workdir / f"metrics-{name}"),
               **(env or self.env())}  # fmt: skip
        return self.spawn(argv, name, env)

    def start_workers(
        self, *, concurrency: int = 16, env: dict[str, str] | None = None
    ) -> list[subprocess.Popen[bytes]]:
        """A redelivery worker and a small tracking worker, as deployed."""
        return [
            self.start_worker(
                concurrency=concurrency,
                queues=f"{REPLAY_QUEUE},{VERIFY_QUEUE}",
                name="worker",
                env=env,
            ),
            self.start_worker(concurrency=2, queues=TRACK_QUEUE, name="tracker", env=env),
        ]

    def start_beat(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        schedule = self.workdir / "celerybeat-schedule"
        argv = [sys.executable, "-m", "celery", "-A", "tasks", "beat", "-s", str(schedule)]
        return self.spawn(argv, "beat", env or self.env())

    def stop(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        # One deadline for them all: told together, they stop together (a Celery worker's
        # warm shutdown), and Ctrl-C never waits 15 s a child.
        deadline = time.monotonic() + STOP_SECONDS
        for child in self.children:
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.children.clear()
        for server in ("sim", "moto", "redis"):
            if hasattr(self, server):
                getattr(self, server).stop()

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
