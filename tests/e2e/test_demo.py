"""`dlq-replay demo` as a real process, as `make demo` runs it: the whole local stack,
workers included, on a small load; its summary, then the commands it prints to paste into
another shell while its stack runs, then Ctrl-C. One demo serves every check, since a demo
is a minute of two busy cores; the text it prints, and --no-wait's, are checked in
tests/unit/test_demo_report.py."""

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


@pytest.mark.slow
def test_the_demo_summary_is_consistent_and_its_pasted_commands_work_while_it_runs(tmp_path):
    """The CI check that `make demo` works: the summary agrees with the ledger and the
    simulator; the demo keeps its stack up and prints shell lines (`source` its env file,
    then the venv's dlq-replay by path), which, pasted into a shell with no settings and no
    venv on PATH, each exit 0 and show this run's items; Ctrl-C stops the demo, which
    removes nothing but names its files and how to remove them, and that works too."""
    environment = {**demo_environment(), "TMPDIR": str(tmp_path)}
    demo = subprocess.Popen(
        [DLQ_CLI, "demo", "--events", "60", "--json", "--timeout", "240"],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        printed = read_until(demo, "press Ctrl-C")
        summary = last_json("\n".join(printed[:-1]))
        check_summary(summary)
        source, *commands = summary["commands"]
        env_file = Path(shlex.split(source)[1])
        workdir = env_file.parent
        assert env_file == Path(summary["env_file"]) and workdir == Path(summary["workdir"])
        assert source == f"source {env_file}" and workdir.parent == tmp_path
        check_env_file(env_file)
        ran = paste(commands, source, environment, tmp_path)
        check_pasted(ran)
        check_counted(source, environment)

        signals = signal_state(demo.pid)
        demo.send_signal(signal.SIGINT)
        assert stopped(demo, workdir, signals) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    # Stopped, the stack has left its files, and the command the summary named removes them.
    assert summary["stack_keeps_running"] is True
    assert workdir.is_dir()
    subprocess.run(["bash", "-c", summary["remove_with"]], check=True)
    assert list(tmp_path.iterdir()) == []  # nothing else left in TMPDIR


def signal_state(pid: int) -> str:
    """What the kernel says of a process's signals: pending, blocked, ignored, caught."""
    status = Path(f"/proc/{pid}/status")
    lines = status.read_text().splitlines() if status.exists() else []
    return " ".join(line.replace("\t", " ") for line in lines if line.startswith(("Sig", "Shd")))


def stopped(
    demo: subprocess.Popen[str], workdir: Path, signals: str, *, timeout: float = 120
) -> int:
    """The demo's exit status once it has stopped its stack after Ctrl-C; its output is read
    to the end meanwhile (a demo blocked on a full pipe would never exit). `signals`, the
    demo's signal state before Ctrl-C, is shown if it does not stop."""
    try:
        rest, _ = demo.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        signals += f"; still running: {signal_state(demo.pid)}"
        demo.kill()
        rest, _ = demo.communicate()
        raise AssertionError(
            f"the demo was still running {timeout:.0f} s after Ctrl-C; it printed:\n"
            f"{rest[-3000:]}\n(its processes' logs are in {workdir}; before Ctrl-C: {signals})"
        ) from None
    assert demo.returncode == 0, rest[-3000:]
    return demo.returncode


def check_summary(summary: dict[str, Any]) -> None:
    """The outcomes the demo's faults make, and every Genesys call the simulator counted."""
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


def check_env_file(env_file: Path) -> None:
    exported = env_file.read_text()
    for name in ("REDIS_URL", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "LEDGER_TABLE", "DLQ_QUEUE_URL",
                 "GENESYS_API_BASE_URL", "GENESYS_LOGIN_BASE_URL", "GENESYS_CLIENT_ID",
                 "GENESYS_CLIENT_SECRET"):  # fmt: skip
        assert f"\nexport {name}=" in exported, name
    assert "test credentials (not a real secret)" in exported


def paste(
    commands: list[str], source: str, environment: dict[str, str], cwd: Path
) -> dict[str, str]:
    """Each command pasted after `source` into a fresh shell: its arguments -> its output."""
    ran = {}
    for command in commands:
        program, _, arguments = command.partition(" ")
        assert Path(program).resolve() == Path(DLQ_CLI).resolve(), command
        shell = subprocess.run(
            ["bash", "-c", f"{source} && {command}"],
            env=environment,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert shell.returncode == 0, f"{command}\n{shell.stdout}{shell.stderr}"
        ran[arguments] = shell.stdout
    return ran


def check_pasted(ran: dict[str, str]) -> None:
    assert "status" in ran
    (listing,) = [cmd for cmd in ran if cmd.startswith("status --status ")]
    (inspected,) = [cmd for cmd in ran if cmd.startswith("inspect ") and "--genesys" not in cmd]
    (live,) = [cmd for cmd in ran if cmd.startswith("inspect --genesys ")]
    unhappy_id = inspected.split()[-1]
    assert unhappy_id in ran[listing]  # the listed status is that item's
    assert f"event {unhappy_id}" in ran[inspected]
    assert "live Genesys attributes" in ran[live] and "dlqReplay" in ran[live]


def check_counted(source: str, environment: dict[str, str]) -> None:
    """The JSON values a script would read survive the shell's quoting, and `status` counts
    what the demo's in-process ingest did, as `dlq-replay poll`'s is counted; the failing
    target has a label of its own, never a real target's."""
    sourced = subprocess.run(
        ["bash", "-c", f'{source} && printf %s "$REPLAY_HTTP_TARGETS"'],
        env=environment, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(sourced.stdout)
    counted = subprocess.run(
        ["bash", "-c", f"{source} && {DLQ_CLI} status --json"],
        env=environment, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(counted.stdout)
    assert report["by_outcome"]["ingested"] >= 60
    assert report["by_outcome"]["rejected"] == 3
    assert report["by_outcome"]["duplicate"] >= 1
    assert list(report["by_target"]["exhausted"]) == [
        "events:api-destination/dlq-replay-demo-failing"
    ]
