"""`dlq-replay demo`'s pasted commands: what it prints to paste into another shell while
its stack runs works, pasted as printed (test_demo.py runs the demo to its summary)."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from .test_demo import DLQ_CLI, demo_environment, pasted_block, read_until


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
