"""`dlq-replay demo` as a real process: the whole local stack, workers included, on a
small load. What it prints to paste into another shell while its stack runs is
test_demo_commands.py's (a file of its own, so the two demos run side by side)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DLQ_CLI = str(Path(sys.executable).with_name("dlq-replay"))


def last_json(stdout: str) -> Any:
    """The last JSON document of an output whose earlier lines may be plain text."""
    start = 0 if stdout.startswith(("{", "[")) else stdout.rindex("\n{") + 1
    return json.loads(stdout[start:])


def demo_environment() -> dict[str, str]:
    """A shell of someone who has not configured anything: no setting, no venv on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    return {
        **{
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AWS_", "REDIS_", "GENESYS_", "REPLAY_", "LEDGER_", "DLQ_"))
        },
        "PATH": os.pathsep.join(
            entry for entry in os.environ.get("PATH", os.defpath).split(os.pathsep)
            if entry != venv_bin
        ),
    }  # fmt: skip


def read_until(process: subprocess.Popen[str], marker: str) -> list[str]:
    """The lines `process` prints up to and including the first that contains `marker`."""
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or marker not in lines[-1]:
        line = process.stdout.readline()
        assert line, f"exited ({process.wait()}) before printing {marker!r}:\n" + "".join(lines)
        lines.append(line.rstrip("\n"))
    return lines


def pasted_block(lines: list[str], header: str) -> list[str]:
    """The indented lines that follow the line starting with `header`, unindented."""
    at = next(n for n, line in enumerate(lines) if line.startswith(header)) + 1
    block = []
    for line in lines[at:]:
        if not line.startswith("  "):
            break
        block.append(line.strip())
    return block


@pytest.mark.slow
def test_demo_ends_with_a_summary_consistent_with_the_ledger(tmp_path):
    """The CI check that `make demo` works: the whole stack, faults included, on a small load."""
    environment = {**demo_environment(), "TMPDIR": str(tmp_path)}
    process = subprocess.run(
        [DLQ_CLI, "demo", "--events", "60", "--no-wait", "--json", "--timeout", "240"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-2000:]
    summary = last_json(process.stdout)
    assert summary["consistent"] is True
    assert summary["replayed"] + summary["failed"] + summary["exhausted"] == summary["events"]
    assert summary["events"] >= 60
    assert summary["rejected"] == 3
    assert summary["failed"] >= 1  # the deleted conversation
    assert summary["exhausted"] >= 1  # the target that always fails
    assert summary["duplicates_suppressed"] >= 1
    assert summary["genesys_calls_per_event"] < 2
    # Every Genesys call, as the simulator counted them: batch verification included.
    assert summary["genesys_batch_verifications"] >= 1
    assert summary["genesys_calls"] == sum(
        summary[part]
        for part in ("genesys_tokens", "genesys_batch_verifications", "genesys_lookups",
                     "genesys_patches")
    )  # fmt: skip
    assert summary["genesys_calls_per_event"] == round(
        summary["genesys_calls"] / summary["events"], 3
    )
    # --no-wait: the stack is gone, and the JSON says so beside what it left behind.
    assert summary["stack_keeps_running"] is False
    assert Path(summary["workdir"]).parent == tmp_path
    assert Path(summary["env_file"]).parent == Path(summary["workdir"])
    assert Path(summary["env_file"]).is_file()
    subprocess.run(["bash", "-c", summary["remove_with"]], check=True)
    assert list(tmp_path.iterdir()) == []
