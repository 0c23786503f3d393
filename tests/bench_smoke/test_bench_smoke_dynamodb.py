"""Where the benchmarks' DynamoDB runs: dynalite when node and npm are there, else moto, aloud.

A run that silently measured moto instead of dynalite would report moto's throughput as
the project's; so the fallback must be printed and recorded. The ledger's own calls are
checked on dynalite by `bench.ledger_probe` (skipped, with the reason, without node).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

QUICK_EVENTS = 5 * 4 + 1

pytestmark = pytest.mark.slow


def _bench(argv: list[str], *, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path} if path is not None else None
    return subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


def _bin_with(tmp_path: Path, *, scripts: dict[str, str], links: tuple[str, ...] = ()) -> str:
    """A PATH of one folder: the given shell scripts, and links to the named real tools."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in scripts.items():
        script = folder / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    for tool in links:
        found = shutil.which(tool)
        assert found, f"{tool} is needed by this test"
        (folder / tool).symlink_to(found)
    return str(folder)


def test_a_benchmark_without_node_falls_back_to_moto_and_says_so(tmp_path: Path) -> None:
    output = tmp_path / "ingest.json"
    path = _bin_with(tmp_path, scripts={}, links=("redis-server",))
    argv = ["bench.ingest", "--quick", "--receivers", "1", "--output", str(output)]
    result = _bench(argv, path=path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "DynamoDB backend: moto (FALLBACK: dynalite unavailable: node and npm not found on PATH)"
        in result.stdout
    )
    figures = json.loads(output.read_text())
    assert figures["dynamodb_backend"]["fallback"] is True
    assert all(run["ledger_items"] == QUICK_EVENTS for run in figures["runs"])


def test_a_failed_npm_install_falls_back_to_moto_and_says_why(tmp_path: Path) -> None:
    output = tmp_path / "probe.json"
    path = _bin_with(
        tmp_path,
        scripts={"node": "exit 1", "npm": 'echo "npm error code E404" >&2; exit 1'},
    )
    argv = ["bench.ledger_probe", "--node-prefix", str(tmp_path / "node"), "--output", str(output)]
    result = _bench(argv, path=path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "DynamoDB backend: moto (FALLBACK: dynalite unavailable: "
        "npm install dynalite@4 failed: npm error code E404)" in result.stdout
    )
    figures = json.loads(output.read_text())
    assert figures["dynamodb_backend"]["fallback"] is True
    assert figures["findings"]["second_claim_refused"] is True


@pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node or npm is not installed: dynalite cannot run here (the benchmarks fall back "
    "to moto and say so)",
)
def test_the_ledger_runs_on_dynalite_without_ttl(tmp_path: Path) -> None:
    output = tmp_path / "probe.json"
    result = _bench(["bench.ledger_probe", "--dynamodb", "dynalite", "--output", str(output)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DynamoDB backend: dynalite 4." in result.stdout
    found = json.loads(output.read_text())["findings"]
    assert found["create_table"] == "table and indexes, then UnknownOperationException"
    assert found["indexes"] == ["by-conversation", "by-status"]
    assert found["put_received_new"] and found["put_received_again_refused"]
    assert found["claim"] == "in_progress"
    assert found["second_claim_refused"] and found["stale_finish_refused"]
    assert found["finish"] == "replayed"
    assert found["by-conversation_items"] == 1
    # dynalite 4 accepts the parameter and leaves the item out of the refusal.
    assert found["return_values_on_condition_check_failure"] == "ignored"
