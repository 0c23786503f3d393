"""`dlq-replay demo` as a real process: the whole local stack, workers included, on a
small load; then what it prints to paste into another shell while its stack runs."""

from __future__ import annotations

import json
import os
import shlex
import signal
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


@pytest.mark.slow
def test_demo_prints_commands_that_work_when_pasted_while_its_stack_runs(tmp_path):
    """After the summary, the demo keeps its stack up and prints shell lines: `source` its
    env file, then the venv's dlq-replay by path. Pasted as printed into a shell with no
    settings and no venv on PATH, each exits 0 and shows this run's items; Ctrl-C stops the
    demo, which then says where its files are and how to remove them, and that works too."""
    environment = {**demo_environment(), "TMPDIR": str(tmp_path)}
    demo = subprocess.Popen(
        [DLQ_CLI, "demo", "--events", "40", "--timeout", "150"],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        printed = read_until(demo, "press Ctrl-C")
        source, *commands = pasted_block(printed, "where to look next")
        env_file = Path(shlex.split(source)[1])
        workdir = env_file.parent
        assert source == f"source {env_file}" and workdir.parent == tmp_path
        exported = env_file.read_text()
        for name in ("REDIS_URL", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID",
                     "AWS_SECRET_ACCESS_KEY", "LEDGER_TABLE", "DLQ_QUEUE_URL",
                     "GENESYS_API_BASE_URL", "GENESYS_LOGIN_BASE_URL", "GENESYS_CLIENT_ID",
                     "GENESYS_CLIENT_SECRET"):  # fmt: skip
            assert f"\nexport {name}=" in exported, name
        assert "test credentials (not a real secret)" in exported

        ran = {}
        for command in commands:
            program, _, arguments = command.partition(" ")
            assert Path(program).resolve() == Path(DLQ_CLI).resolve(), command
            shell = subprocess.run(
                ["bash", "-c", f"{source} && {command}"],
                env=environment,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert shell.returncode == 0, f"{command}\n{shell.stdout}{shell.stderr}"
            ran[arguments] = shell.stdout

        assert "status" in ran
        (listing,) = [cmd for cmd in ran if cmd.startswith("status --status ")]
        (inspected,) = [cmd for cmd in ran if cmd.startswith("inspect ") and "--genesys" not in cmd]
        (live,) = [cmd for cmd in ran if cmd.startswith("inspect --genesys ")]
        unhappy_id = inspected.split()[-1]
        assert unhappy_id in ran[listing]  # the listed status is that item's
        assert f"event {unhappy_id}" in ran[inspected]
        assert "live Genesys attributes" in ran[live] and "dlqReplay" in ran[live]
        # The JSON values a script would read survive the shell's quoting.
        sourced = subprocess.run(
            ["bash", "-c", f'{source} && printf %s "$REPLAY_HTTP_TARGETS"'],
            env=environment, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert json.loads(sourced.stdout)
        # `status` counts what the demo's in-process ingest did, as `dlq-replay poll`'s is
        # counted; the failing target has a label of its own, never a real target's.
        counted = subprocess.run(
            ["bash", "-c", f"{source} && {DLQ_CLI} status --json"],
            env=environment, capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        report = json.loads(counted.stdout)
        assert report["by_outcome"]["ingested"] >= 40
        assert report["by_outcome"]["rejected"] == 3
        assert report["by_outcome"]["duplicate"] >= 1
        assert list(report["by_target"]["exhausted"]) == [
            "events:api-destination/dlq-replay-demo-failing"
        ]

        demo.send_signal(signal.SIGINT)
        rest = read_until(demo, "the demo's files stay in")
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    removal = rest[-1].partition("remove them with")[2].strip()
    assert removal == f"rm -rf {workdir}"
    subprocess.run(["bash", "-c", removal], check=True)
    assert not workdir.exists()
    assert list(tmp_path.iterdir()) == []  # nothing else left in TMPDIR
