"""Flower as deployed: `celery -A tasks flower` with ./flowerconfig.py, against a real Redis.

Flower itself serves `/healthcheck` and `/metrics` without authentication (by design); the
tests pin that down so nobody mistakes them for protected pages: keep Flower private.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from helpers import REPO

from devstack.process import free_port, wait_for_port
from devstack.redis_server import RedisServer

CREDENTIALS = ("user", "pass")


def flower_environment(redis_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without any FLOWER_* variable, plus the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


def flower_argv(port: int) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "tasks", "flower",
        f"--port={port}", "--address=127.0.0.1",
    ]  # fmt: skip


@pytest.fixture()
def flower(redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    """A running Flower with basic auth user:pass and its state in tmp_path; its base URL."""
    port = free_port()
    env = flower_environment(
        redis_server.url,
        FLOWER_BASIC_AUTH=":".join(CREDENTIALS),
        FLOWER_DB=str(tmp_path / "flower.db"),
    )
    with (tmp_path / "flower.log").open("wb") as log:
        process = subprocess.Popen(
            flower_argv(port), cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(port, process=process, timeout=60)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.kill()
            process.wait(timeout=30)


def test_pages_require_basic_auth(flower: str) -> None:
    assert requests.get(f"{flower}/", timeout=10).status_code == 401
    wrong = requests.get(f"{flower}/", auth=("user", "wrong"), timeout=10)
    assert wrong.status_code == 401


def test_pages_open_with_the_configured_credentials(flower: str) -> None:
    assert requests.get(f"{flower}/", auth=CREDENTIALS, timeout=10).status_code == 200


def test_healthcheck_is_served_without_credentials(flower: str) -> None:
    # Flower's design, not ours: /healthcheck (and /metrics) are not behind auth.
    response = requests.get(f"{flower}/healthcheck", timeout=10)
    assert response.status_code == 200


def test_state_is_persisted_to_flower_db(flower: str, tmp_path: Path) -> None:
    # Persistent mode opens the shelve file (dbm may add a suffix) before Flower listens.
    assert list(tmp_path.glob("flower.db*"))


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "refusing to start without authentication: set FLOWER_BASIC_AUTH="),
        ({"FLOWER_BASIC_AUTH": "nocolon"}, "FLOWER_BASIC_AUTH has an entry that is not"),
    ],
    ids=["missing", "malformed"],
)
def test_refuses_to_start_without_usable_auth(
    tmp_path: Path, extra: dict[str, str], expected: str
) -> None:
    # No Redis needed: the refusal comes before Flower connects anywhere.
    env = flower_environment(
        "redis://127.0.0.1:1/0", FLOWER_DB=str(tmp_path / "flower.db"), **extra
    )
    process = subprocess.Popen(
        flower_argv(free_port()),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode != 0
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if "FLOWER_BASIC_AUTH" in line]
    assert len(lines) == 1
    assert expected in lines[0]
    assert "FLOWER_ALLOW_NO_AUTH=1" in lines[0]


def test_starts_without_auth_only_when_explicitly_allowed(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    port = free_port()
    env = flower_environment(
        redis_server.url, FLOWER_ALLOW_NO_AUTH="1", FLOWER_DB=str(tmp_path / "flower.db")
    )
    process = subprocess.Popen(
        flower_argv(port), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, process=process, timeout=60)
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    finally:
        process.kill()
        process.wait(timeout=30)
