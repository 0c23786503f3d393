"""Terminal tables never cut an id, however narrow the terminal."""

from __future__ import annotations

import io

from rich.console import Console

from cli.output import Output

EVENT_ID = "rejected:3f0c8a52-1b7e-4c9d-a2f4-6e8b1d0c9a77"
MESSAGE_ID = "0b5e7d3c-9f21-4a8e-b6d4-2c1f0e9a8b7d"
ARN = "arn:aws:events:us-east-1:111122223333:api-destination/crm-webhook/always-503"
REASON = "body is not JSON: Expecting value: line 1 column 1 (char 0), kept with its raw body"


def terminal(width: int) -> tuple[Output, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=True, color_system=None)
    return Output(console=console), buffer


def test_a_table_too_wide_for_80_columns_prints_every_id_whole_on_its_line() -> None:
    out, buffer = terminal(80)

    out.table("rejected", ["event", "message", "target", "reason"],
              [(EVENT_ID, MESSAGE_ID, ARN, REASON)])  # fmt: skip

    lines = buffer.getvalue().splitlines()
    for value in (EVENT_ID, MESSAGE_ID, ARN, REASON):
        assert any(value in line for line in lines), value
    assert "…" not in buffer.getvalue()


def test_a_table_that_fits_keeps_ids_whole_and_wraps_only_prose() -> None:
    out, buffer = terminal(120)

    out.table("rejected", ["event", "reason"], [(EVENT_ID, REASON)])

    text = buffer.getvalue()
    assert "┃ event" in text  # still a table
    assert EVENT_ID in text
    assert "…" not in text


def test_a_title_naming_an_id_is_printed_whole() -> None:
    out, buffer = terminal(40)

    out.table(f"event {EVENT_ID} -> {ARN}", ["field", "value"], [("status", "failed")])

    assert f"event {EVENT_ID} -> {ARN}" in buffer.getvalue()


def test_a_line_naming_a_command_is_never_broken() -> None:
    out, buffer = terminal(40)
    command = f"/opt/app/.venv/bin/dlq-replay inspect {EVENT_ID}"

    out.line(command)

    assert command in buffer.getvalue()
