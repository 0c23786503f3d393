"""Flower started as the README says, from any directory: never served without authentication.

`celery -A tasks flower --port=5555` run outside the repository root does not read
./flowerconfig.py; the check lives in the Celery app, which every start loads. The app is
found through PYTHONPATH (as an installed package would be), the working directory is an
empty temporary one.
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

CELERY = Path(sys.executable).parent / "celery"
CREDENTIALS = ("operator", "a-long-random-password-7f3a")


def readme_command(port: int, *extra: str) -> list[str]:
    """The README's `celery -A tasks flower --port=5555`, on another port."""
    return [str(CELERY), "-A", "tasks", "flower", f"--port={port}", *extra]


def environment(redis_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without any FLOWER_* variable, the app on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["REDIS_URL"] = redis_url
    env.update(extra)
    return env


@pytest.fixture()
def elsewhere(tmp_path: Path) -> Path:
    """An empty working directory: no flowerconfig.py, no .env."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    return directory


def refusal(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run a Flower that should not start; its exit status and stderr."""
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait(timeout=30)
    return process.returncode, stderr


@pytest.fixture()
def served(redis_server: RedisServer, elsewhere: Path) -> Iterator[str]:
    """Flower with basic auth, started with the README's command from `elsewhere`."""
    port = free_port()
    env = environment(redis_server.url, FLOWER_BASIC_AUTH=":".join(CREDENTIALS))
    with (elsewhere / "flower.log").open("wb") as log:
        process = subprocess.Popen(
            readme_command(port, "--address=127.0.0.1"),
            cwd=elsewhere,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, process=process, timeout=60)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.kill()
            process.wait(timeout=30)


def test_flower_from_another_directory_without_auth_refuses_to_start_with_one_line(
    elsewhere: Path,
) -> None:
    # No Redis needed: the refusal comes before Flower listens or connects anywhere.
    assert not (elsewhere / "flowerconfig.py").exists()
    status, stderr = refusal(
        readme_command(free_port()), elsewhere, environment("redis://127.0.0.1:1/0")
    )
    assert status != 0
    assert "Traceback" not in stderr
    (line,) = [line for line in stderr.splitlines() if line.strip()]
    assert line.startswith("flower: refusing to start without authentication")
    assert "FLOWER_BASIC_AUTH=" in line and "FLOWER_ALLOW_NO_AUTH=1" in line


def test_flower_with_a_config_file_of_its_own_still_refuses_without_auth(
    elsewhere: Path,
) -> None:
    conf = elsewhere / "myflower.py"
    conf.write_text("max_tasks = 100\n")
    status, stderr = refusal(
        readme_command(free_port(), f"--conf={conf}"),
        elsewhere,
        environment("redis://127.0.0.1:1/0"),
    )
    assert status != 0
    assert "refusing to start without authentication" in stderr


def test_flower_from_another_directory_with_auth_asks_for_it(served: str) -> None:
    assert requests.get(f"{served}/", timeout=10).status_code == 401
    assert requests.get(f"{served}/", auth=CREDENTIALS, timeout=10).status_code == 200


def test_flower_from_another_directory_goes_without_auth_only_when_told_to(
    redis_server: RedisServer, elsewhere: Path
) -> None:
    port = free_port()
    env = environment(redis_server.url, FLOWER_ALLOW_NO_AUTH="1")
    process = subprocess.Popen(
        readme_command(port, "--address=127.0.0.1"),
        cwd=elsewhere,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=process, timeout=60)
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).status_code == 200
    finally:
        process.kill()
        process.wait(timeout=30)
