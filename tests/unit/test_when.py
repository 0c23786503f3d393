"""The times an operator types (`--since`, `--until`, `--older-than`) and reads (`status`)."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import pytest
from click.testing import CliRunner

from cli.status import oldest_pending
from cli.when import FORMS, When, age, parse_when
from dlq.clock import FakeClock

NOW = 1_800_000_000.0


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@pytest.mark.parametrize(
    ("text", "back"),
    [("90s", 90), ("30m", 1800), ("15m", 900), ("1h", 3600), ("2d", 172800), ("1.5h", 5400),
     (" 2H ", 7200)],
)  # fmt: skip
def test_a_duration_is_that_long_before_now(text, back):
    assert parse_when(text, now=NOW) == NOW - back


def test_a_date_is_its_midnight_utc():
    assert parse_when("2026-12-01", now=NOW) == at("2026-12-01T00:00:00+00:00")


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00+00:00"),
        ("2026-12-01T10:00", "2026-12-01T10:00:00+00:00"),
        ("2026-12-01 10:00:00", "2026-12-01T10:00:00+00:00"),
        ("2026-12-01T10:00:00.250+00:00", "2026-12-01T10:00:00.250+00:00"),
        ("2026-12-01T11:00:00+01:00", "2026-12-01T10:00:00+00:00"),
    ],
)
def test_an_iso_time_is_utc_unless_it_gives_an_offset(text, meant):
    assert parse_when(text, now=NOW) == at(meant)


def test_the_ledgers_own_times_read_back_as_themselves():
    # An operator pastes `updated` from `inspect` into `--since`.
    assert parse_when("2026-12-06T10:00:00.000+00:00", now=NOW) == at("2026-12-06T10:00:00Z")


@pytest.mark.parametrize(
    "text", ["yesterday", "1 week", "-1h", "1y", "20261201", "2026-13-01", "2026-12-01T25:00", ""]
)
def test_anything_else_is_refused_naming_every_accepted_form(text):
    with pytest.raises(ValueError) as refused:
        parse_when(text, now=NOW)

    assert str(refused.value) == f"{text!r} is not a time: use {FORMS}"
    assert "30m, 1h, 2d" in FORMS and "2026-12-01" in FORMS and "2026-12-01T10:00:00Z" in FORMS


def test_an_option_of_this_type_reads_a_duration_on_its_clock_and_refuses_as_a_usage_error():
    seen: list[float] = []

    @click.command()
    @click.option("--since", type=When(FakeClock(NOW)))
    def command(since: float) -> None:
        seen.append(since)

    good = CliRunner().invoke(command, ["--since", "1h"])
    bad = CliRunner().invoke(command, ["--since", "last tuesday"])

    assert (good.exit_code, seen) == (0, [NOW - 3600])
    assert bad.exit_code == 2
    assert "Invalid value for '--since': 'last tuesday' is not a time: use a duration" in (
        bad.output
    )


@pytest.mark.parametrize(
    ("seconds", "said"),
    [(0, "0 s"), (45, "45 s"), (119, "119 s"), (120, "2 min"), (3 * 3600 + 5, "3 h"),
     (3 * 86400, "3 d"), (-5, "0 s")],
)  # fmt: skip
def test_an_age_is_said_in_the_largest_readable_unit(seconds, said):
    assert age(seconds) == said


def test_the_oldest_pending_line_is_a_sentence_when_first_then_which_then_where():
    received = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    oldest = {
        "event_id": "e-1",
        "status": "retry_scheduled",
        "received_at": "2026-12-06T10:00:00.000+00:00",
        "attempts": 2,
        "last_error": "503 from target",
    }

    line = oldest_pending(oldest, now=received.timestamp() + 3 * 3600)

    assert line == (
        "oldest pending: received 2026-12-06T10:00:00.000+00:00 (3 h ago), event e-1, "
        "now retry_scheduled after 2 attempts; last error: 503 from target"
    )


def test_the_oldest_pending_line_of_an_untried_item_names_no_error():
    oldest = {
        "event_id": "e-2",
        "status": "received",
        "received_at": "2026-12-06T10:00:00.000+00:00",
        "attempts": 0,
        "last_error": None,
    }

    line = oldest_pending(oldest, now=at("2026-12-06T10:00:30Z"))

    assert line == (
        "oldest pending: received 2026-12-06T10:00:00.000+00:00 (30 s ago), event e-2, "
        "now received, not tried yet"
    )
