"""What `dlq-replay demo` prints at its end, as text and as JSON, waiting or not (the demo
itself runs once, in tests/e2e/test_demo.py, with --json: its text is checked here)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from cli.demo_report import NextSteps, removal, report
from cli.output import Output

SUMMARY = {
    "replayed": 55, "failed": 1, "exhausted": 4, "rejected": 3, "duplicates_suppressed": 2,
    "genesys_calls": 20, "genesys_tokens": 1, "genesys_batch_verifications": 2,
    "genesys_lookups": 2, "genesys_patches": 15, "genesys_calls_per_event": 0.333,
    "genesys_429s": 0, "transformed_deliveries": 10, "api_destination_calls": 10,
    "events": 60, "consistent": True,
}  # fmt: skip
FLOWER = {"url": "http://127.0.0.1:5555", "user": "demo", "password": "pw-demo"}


def _steps(workdir: Path) -> NextSteps:
    env_file = workdir / "demo.env"
    return NextSteps(env_file, [f"source {env_file}", "/venv/bin/dlq-replay status"])


def pasted_block(lines: list[str], header: str) -> list[str]:
    """The indented lines that follow the line starting with `header`, unindented."""
    at = next(n for n, line in enumerate(lines) if line.startswith(header)) + 1
    block = []
    for line in lines[at:]:
        if not line.startswith("  "):
            break
        block.append(line.strip())
    return block


@pytest.mark.parametrize("keeps_running", [True, False])
def test_the_text_lists_the_commands_to_paste_and_says_whether_the_servers_stay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keeps_running: bool
) -> None:
    steps = _steps(tmp_path)
    report(Output(), SUMMARY, steps, tmp_path, FLOWER, keeps_running=keeps_running)
    lines = capsys.readouterr().out.splitlines()
    assert pasted_block(lines, "where to look next") == steps.commands
    header = next(line for line in lines if line.startswith("where to look next"))
    assert ("while the demo runs" in header) is keeps_running
    assert ("--no-wait" in header) is not keeps_running
    assert "summary consistent with the ledger: 63 ledger items" in lines
    assert f"logs       {tmp_path}/*.log" in lines
    assert "Genesys calls per event\t0.333" in lines


def test_an_inconsistent_summary_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report(
        Output(), {**SUMMARY, "consistent": False}, _steps(tmp_path), tmp_path, FLOWER,
        keeps_running=False,
    )  # fmt: skip
    assert "summary NOT all final: 63 ledger items" in capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("keeps_running", [True, False])
def test_the_json_names_the_files_the_commands_and_how_to_remove_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], keeps_running: bool
) -> None:
    workdir = tmp_path / "dlq replay demo"  # a space: the removal is quoted for a shell
    steps = _steps(workdir)
    report(Output(as_json=True), SUMMARY, steps, workdir, FLOWER, keeps_running=keeps_running)
    printed = json.loads(capsys.readouterr().out)
    assert {k: printed[k] for k in SUMMARY} == SUMMARY
    assert printed["commands"] == steps.commands
    assert printed["stack_keeps_running"] is keeps_running
    assert (printed["workdir"], printed["env_file"]) == (str(workdir), str(steps.env_file))
    assert shlex.split(printed["remove_with"]) == ["rm", "-rf", str(workdir)]
    assert shlex.split(removal(workdir).partition("remove them with")[2]) == shlex.split(
        printed["remove_with"]
    )
