"""docker-compose.yml's `local` profile, run without Docker: the same commands, on loopback.

Docker is not available on the build machines. What a container adds is a filesystem (the
image: this checkout's venv instead, its WORKDIR /app the repository, /tmp and /data
directories of the test) and a network (service host names and ports: loopback and free
ports; Flower is also bound to loopback). Everything else is taken from the compose file
as compose takes it: each service's `command`, its `env_file` (.env: .env.example with
the two passwords set, as the README says) under its `environment`, the image's `ENV`,
and compose's `${VAR}` interpolation from .env, started in the order `depends_on` gives.
moto's image is stood in for by the same moto the other tests run (devstack.moto_server).
The redelivery worker runs as `docker compose up --scale worker=2` runs it on two cores
(the README's layout: one thread-pool process per core): two replicas, each a container
of its own (its host name, which `%h` names the Celery node after, and its /tmp).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import yaml
from helpers import REPO

from devstack.moto_server import MotoServer
from devstack.process import ChildServer, die_with_parent, free_port, wait_for_port
from devstack.sim_admin import PATCH_ATTRIBUTES, SimAdmin
from dlq.aws import aws_client
from dlq.ledger import FINAL_STATUSES, Ledger
from dlq.settings import load_settings

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
#: The container port of each service another one reaches by name.
SERVICE_PORTS = {"redis": 6379, "moto": 5000, "genesys-sim": 8080}
#: Services that listen: each gets a free loopback port for its `--port`.
LISTENING = (*SERVICE_PORTS, "flower")
#: The long-running app services of the local profile, and the one-shots before them.
LONG_RUNNING = ("worker", "tracker", "beat", "flower", "poller")
#: Replicas of the redelivery worker (`docker compose up --scale worker=2`).
WORKER_REPLICAS = 2
#: What the test writes into .env, as the README's sed line does.
REDIS_PASSWORD = secrets.token_hex(16)
FLOWER_AUTH = f"admin:{secrets.token_hex(8)}"

_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


class MissingVariable(Exception):
    """`${VAR:?message}` with VAR unset or empty: compose stops with the message."""


def interpolate(value: Any, variables: dict[str, str]) -> Any:
    """Compose's interpolation of `value` (strings, lists and mappings, recursively)."""
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        current = variables.get(name)
        unset = current is None or (
            operator is not None and operator.startswith(":") and not current
        )
        if operator is not None and operator.endswith("?") and unset:
            raise MissingVariable(f"required variable {name} is missing a value: {argument}")
        if operator is not None and operator.endswith("-") and unset:
            return argument
        return current or ""

    return _INTERPOLATION.sub(one, value)


def read_env_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines of an env file; comments and blank lines skipped."""
    values = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def image_environment() -> dict[str, str]:
    """The Dockerfile's ENV, as every built service's container starts with it."""
    joined = re.sub(r"\\\n", " ", (REPO / "Dockerfile").read_text())
    env = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def dotenv(**changes: str) -> dict[str, str]:
    """.env as an operator makes it: .env.example, with these variables set."""
    values = read_env_file((REPO / ".env.example").read_text())
    assert set(changes) <= set(values), "the README tells operators to set these in .env"
    return {**values, **changes}


@dataclass
class Loopback:
    """The compose project's network and filesystem, translated to this machine."""

    root: Path
    ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ports = {name: free_port() for name in LISTENING}
        self.paths = {"/app": REPO, "/tmp": self.root / "tmp", "/data": self.root / "data"}
        for path in self.paths.values():
            path.mkdir(parents=True, exist_ok=True)

    def tmp(self, service: str) -> Path:
        """`service`'s own /tmp."""
        path = self.paths["/tmp"] / service
        path.mkdir(parents=True, exist_ok=True)
        return path

    def value(self, text: str) -> str:
        for name, port in SERVICE_PORTS.items():
            text = text.replace(f"{name}:{port}", f"127.0.0.1:{self.ports[name]}")
        # One pass, so that a replaced path (a checkout under /tmp) is not replaced again.
        inside = "|".join(re.escape(path) for path in self.paths)
        return re.sub(rf"(?<![\w/.])({inside})(?=/|$)", lambda m: str(self.paths[m.group(1)]), text)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"


@dataclass
class Project:
    """docker-compose.yml with a .env, each service's command and environment resolved."""

    env: dict[str, str]
    net: Loopback

    def __post_init__(self) -> None:
        raw = yaml.safe_load((REPO / "docker-compose.yml").read_text())
        self.services: dict[str, dict[str, Any]] = interpolate(raw["services"], self.env)

    def argv(self, name: str, replica: int | None = None) -> list[str]:
        """The service's command; its listening port and address made loopback ones.

        A replica's `%h` (Celery's host name) is its container's: `<service>-<n>` here.
        """
        command = [self.net.value(arg) for arg in self.services[name]["command"]]
        if replica is not None:
            command = [arg.replace("%h", f"{name}-{replica}") for arg in command]
        if command[0] in {"dlq-replay", "celery"}:
            command[0] = str(BIN / command[0])
        for n, arg in enumerate(command):
            if arg == "--port":
                command[n + 1] = str(self.net.ports[name])
            elif arg.startswith("--port="):
                command[n] = f"--port={self.net.ports[name]}"
            elif arg == "--host":
                command[n + 1] = "127.0.0.1"
        if name == "flower":  # Flower binds every interface unless told
            command.append("--address=127.0.0.1")
        return command

    def environment(self, name: str, replica: int | None = None) -> dict[str, str]:
        service = self.services[name]
        env: dict[str, str] = {}
        if "build" in service:
            env.update(image_environment())
        if service.get("env_file") == ".env":
            env.update(self.env)
        env.update({key: str(value) for key, value in (service.get("environment") or {}).items()})
        # The container's paths and host names, as this host has them; then this host's
        # own paths, never mapped again (a checkout or pytest's tmp_path under /tmp would
        # be: a TMPDIR that does not exist sends tempfile to the machine's /tmp, shared).
        return {
            **{key: self.net.value(value) for key, value in env.items()},
            "PATH": f"{BIN}{os.pathsep}{os.defpath}",
            "PYTHONPATH": str(REPO),
            "HOME": str(self.net.root),
            # Each container has a /tmp of its own (the worker's and the tracker's heartbeat
            # files are both `worker.alive`, one per container).
            "TMPDIR": str(self.net.tmp(container(name, replica))),
            # Ports inside a container are its own; here they must not collide.
            "REPLAY_METRICS_PORT": str(free_port()),
            "POLLER_METRICS_PORT": str(free_port()),
        }

    def run(self, name: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A one-shot service (setup, seed), to its end."""
        return subprocess.run(
            self.argv(name),
            env=self.environment(name),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, name: str, replica: int | None = None) -> subprocess.Popen[bytes]:
        """A long-running service (or one replica), its output in `<root>/<container>.log`."""
        log = (self.net.root / f"{container(name, replica)}.log").open("ab")
        return subprocess.Popen(
            self.argv(name, replica),
            env=self.environment(name, replica),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )

    def log(self, name: str, *, tail: int | None = 3000) -> str:
        """A container's output (its last `tail` characters)."""
        path = self.net.root / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return text[-tail:] if tail else text


def container(service: str, replica: int | None) -> str:
    """A container's name: the service's, or `<service>-<n>` for a replica of a scaled one."""
    return service if replica is None else f"{service}-{replica}"


def healthy(project: Project, service: str, env: dict[str, str]) -> bool:
    """The service's compose healthcheck, run here (`redis-cli` against the loopback port)."""
    test = project.services[service]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    port = project.net.ports[service]
    command = test[1].replace("redis-cli", f"redis-cli -p {port}")
    return subprocess.run(["sh", "-c", command], env=env, check=False).returncode == 0


def app_healthy(
    project: Project, service: str, replica: int | None = None
) -> subprocess.CompletedProcess[str]:
    """An app service's compose healthcheck (`dlq-replay health`), in its (replica's)
    environment."""
    test = project.services[service]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "dlq-replay"], test
    return subprocess.run(
        [str(BIN / "dlq-replay"), *test[2:]],
        env=project.environment(service, replica),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- what compose itself refuses --------------------------------------------------------


def test_compose_will_not_start_without_a_redis_password(tmp_path: Path) -> None:
    env = {k: v for k, v in dotenv().items() if k != "REDIS_PASSWORD"}
    with pytest.raises(MissingVariable, match=r"REDIS_PASSWORD .*set REDIS_PASSWORD in \.env"):
        Project(env, Loopback(tmp_path))


@pytest.mark.parametrize("service", ["worker", "tracker", "beat", "poller", "setup", "seed"])
def test_the_placeholder_redis_password_stops_each_process_with_one_line(
    tmp_path: Path, service: str
) -> None:
    # .env copied from .env.example and never edited: no Redis needed, the refusal is first.
    project = Project(dotenv(), Loopback(tmp_path))
    result = project.run(service, timeout=120)

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "REDIS_PASSWORD" in line]
    assert len(lines) == 1, output
    assert "REDIS_URL is invalid: its password is the .env.example placeholder" in lines[0]


def test_flower_refuses_the_placeholder_password_with_one_line(tmp_path: Path) -> None:
    project = Project(dotenv(REDIS_PASSWORD=REDIS_PASSWORD), Loopback(tmp_path))
    result = subprocess.run(
        project.argv("flower"),
        env=project.environment("flower"),
        cwd=tmp_path,  # the explicit --conf finds the file, not the working directory
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if "FLOWER_BASIC_AUTH" in line]
    assert len(lines) == 1, output
    assert "placeholder password for admin: set FLOWER_BASIC_AUTH=admin:" in lines[0]


# --- the local profile, end to end --------------------------------------------------------


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """The local profile's stand-ins up and healthy: redis, moto, genesys-sim; this process
    pointed at moto as the services are, to read the ledger and the target queue."""
    env = dotenv(REDIS_PASSWORD=REDIS_PASSWORD, FLOWER_BASIC_AUTH=FLOWER_AUTH)
    project = Project(env, Loopback(tmp_path))
    net = project.net
    # redis:7's image: the compose command, its /data volume, the port on loopback.
    redis_server = ChildServer(
        [
            *project.services["redis"]["command"],
            "--port", str(net.ports["redis"]), "--bind", "127.0.0.1",
            "--dir", str(net.paths["/data"]),
        ],
        net.ports["redis"],
        log=tmp_path / "redis.log",
    )  # fmt: skip
    moto = MotoServer(tmp_path / "moto", port=net.ports["moto"])
    sim: subprocess.Popen[bytes] | None = None
    try:
        redis_server.start()
        moto.start()
        sim = project.start("genesys-sim")
        wait_for_port(net.ports["genesys-sim"], process=sim)
        for name, value in project.environment("worker").items():
            if name.startswith("AWS_"):
                monkeypatch.setenv(name, value)
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        yield project
    finally:
        if sim is not None:
            sim.terminate()
            sim.wait(timeout=30)
        moto.stop()
        redis_server.stop()


def test_the_healthchecks_pass_on_the_local_stand_ins(project: Project) -> None:
    redis_env = {**os.environ, **project.services["redis"]["environment"]}
    assert healthy(project, "redis", redis_env)
    # redis-cli exits 0 on NOAUTH: the check must still fail without the right password.
    assert not healthy(project, "redis", {**redis_env, "REDISCLI_AUTH": "wrong"})
    (url,) = re.findall(r"'(http[^']+)'", project.services["moto"]["healthcheck"]["test"][-1])
    inside = f"127.0.0.1:{SERVICE_PORTS['moto']}"  # moto's own port in its container
    assert requests.get(
        url.replace(inside, f"127.0.0.1:{project.net.ports['moto']}"), timeout=10
    ).ok


def test_the_local_profile_drains_the_seeded_events_to_the_target(project: Project) -> None:
    net = project.net
    # Redis answers only with the password compose gave it.
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=net.ports["redis"]).ping()

    setup = project.run("setup")
    assert setup.returncode == 0, setup.stdout + setup.stderr

    running = {name: project.start(name) for name in LONG_RUNNING if name != "worker"}
    for replica in range(1, WORKER_REPLICAS + 1):
        running[container("worker", replica)] = project.start("worker", replica)
    try:
        seed = project.run("seed")
        assert seed.returncode == 0, seed.stdout + seed.stderr
        seeded = re.search(r": (\d+) events over .* (\d+) malformed", seed.stdout)
        assert seeded, seed.stdout
        events, malformed = int(seeded.group(1)), int(seeded.group(2))

        env = project.environment("worker")
        config = load_settings(
            _env_file=None,
            redis_url=env["REDIS_URL"],
            ledger_table=env["LEDGER_TABLE"],
            dlq_queue_url=env["DLQ_QUEUE_URL"],
        )
        ledger = Ledger(aws_client("dynamodb", config), config.ledger_table)
        items = _wait_final(ledger, events + malformed, project)
        statuses = Counter(item.status.value for item in items)
        errors = {i.last_error for i in items if i.status.value not in ("replayed", "rejected")}
        assert statuses == {"replayed": events, "rejected": malformed}, errors

        # Each event reached the rule's target queue on moto, once, however many replicas
        # redelivered; both took a share.
        delivered = _drain_ids(config, _target_queue_url(seed.stdout, config))
        assert sorted(delivered) == sorted(
            i.event_id for i in items if i.status.value == "replayed"
        )
        # Tracking wrote attributes on the simulator's conversations.
        admin = SimAdmin(net.url("genesys-sim"))
        assert _eventually(lambda: admin.stats().count(PATCH_ATTRIBUTES) > 0)
        # Flower is up behind the .env's basic auth, and every service is still running.
        flower = net.url("flower")
        wait_for_port(net.ports["flower"], process=running["flower"], timeout=60)
        assert requests.get(flower, timeout=10).status_code == 401
        user, _, password = FLOWER_AUTH.partition(":")
        assert requests.get(flower, auth=(user, password), timeout=10).status_code == 200
        for name, process in running.items():
            assert process.poll() is None, f"{name} exited:\n{project.log(name)}"
        replicas: list[tuple[str, int | None]] = [
            ("worker", n) for n in range(1, WORKER_REPLICAS + 1)
        ]
        for service, number in replicas:
            log = project.log(container(service, number), tail=None)
            assert '"outcome": "replayed"' in log, f"{service}-{number} redelivered nothing"
        # Each app service's healthcheck (each replica's) finds its proof of work.
        for service, number in [*replicas, ("tracker", None), ("beat", None), ("poller", None)]:
            check = app_healthy(project, service, number)
            assert check.returncode == 0, f"{container(service, number)}: {check.stderr}"
    finally:
        for process in running.values():
            process.send_signal(signal.SIGTERM)
        for process in running.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert running["poller"].returncode == 0, project.log("poller")


def _wait_final(ledger: Ledger, count: int, project: Project) -> list[Any]:
    deadline = time.monotonic() + 150
    items: list[Any] = []
    while time.monotonic() < deadline:
        items = list(ledger.scan())
        if len(items) >= count and all(i.status in FINAL_STATUSES for i in items):
            return items
        time.sleep(0.5)
    open_items = [(i.event_id, i.status.value, i.last_error) for i in items]
    names = [container("worker", n) for n in range(1, WORKER_REPLICAS + 1)]
    logs = "\n".join(f"--- {n}\n{project.log(n)}" for n in (*names, "poller"))
    raise AssertionError(f"{len(items)}/{count} items, not all final: {open_items}\n{logs}")


def _target_queue_url(seed_output: str, config: Any) -> str:
    """The queue seed --local made the rule's target (its ARN is on seed's first line)."""
    arn = re.search(r"targets: (arn:aws:sqs:\S+)", seed_output)
    assert arn, seed_output
    account, name = arn.group(1).split(":")[4:6]
    sqs = aws_client("sqs", config)
    return str(sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"])


def _drain_ids(config: Any, queue_url: str) -> list[str]:
    sqs = aws_client("sqs", config)
    ids: list[str] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return ids
        for message in messages:
            ids.append(json.loads(message["Body"])["id"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _eventually(check: Any, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False
