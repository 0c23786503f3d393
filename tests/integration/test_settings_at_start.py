"""A bad setting stops every process as it starts, with the same one line.

The CLI prints it as `error: <line>`; a Celery worker and beat (`celery -A tasks ...`)
log it as their one JSON line at ERROR and exit with the CLI's status for a
misconfiguration (2): no traceback, no broker connection retried in a loop. Real
processes, started as deployments start them, in a directory without a `.env`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DLQ_CLI = str(Path(sys.executable).with_name("dlq-replay"))
MISCONFIGURED = 2

TYPOS = [("AWS_REGION", "us-east1"), ("GENESYS_REGION", "us_east1")]


def environment(variable: str, value: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    # A broker nobody listens on: a process that got past its settings would retry it.
    return {**env, "REDIS_URL": "redis://127.0.0.1:9/0", variable: value}


def cli_line(env: dict[str, str], cwd: Path) -> str:
    """What the CLI prints for the same environment (without its `error: ` prefix)."""
    done = subprocess.run(
        [DLQ_CLI, "status"], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == MISCONFIGURED, done.stderr
    (line,) = done.stderr.strip().splitlines()
    return line.removeprefix("error: ")


def celery(program: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "celery", "-A", "tasks", program]
    if program == "worker":
        argv += ["--pool", "threads", "-Q", "replay", "--without-mingle", "--without-gossip"]
    else:
        argv += ["-s", str(cwd / "celerybeat-schedule")]
    return subprocess.run(
        argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("program", ["worker", "beat"])
@pytest.mark.parametrize(("variable", "value"), TYPOS)
def test_a_region_typo_stops_celery_with_the_cli_s_one_line_at_error(
    program, variable, value, tmp_path
):
    env = environment(variable, value)

    done = celery(program, env, tmp_path)

    assert done.returncode == MISCONFIGURED, done.stdout + done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    logged = json.loads(lines[0])
    assert logged["level"] == "error"
    assert logged["message"] == cli_line(env, tmp_path)
    assert logged["message"].startswith(f"{variable} is invalid: '{value}'")
