"""`parse_retry_after`: one reading of `Retry-After` for Genesys and for targets.

Delta-seconds or an HTTP-date (RFC 9110 §10.2.3); None for what says nothing usable
(the caller's own backoff decides); capped at `MAX_RETRY_AFTER_SECONDS`.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from dlq.genesys.headers import parse_retry_after as genesys_parse_retry_after
from dlq.retryafter import MAX_RETRY_AFTER_SECONDS, parse_retry_after
from dlq.targets.errors import retry_after_seconds

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


def test_delta_seconds_are_read_as_seconds() -> None:
    assert parse_retry_after("120") == 120.0


def test_surrounding_spaces_are_ignored() -> None:
    assert parse_retry_after(" 7 ") == 7.0


def test_zero_means_now() -> None:
    assert parse_retry_after("0") == 0.0


def test_an_http_date_in_the_future_is_the_seconds_until_it() -> None:
    assert parse_retry_after(http_date(NOW + timedelta(seconds=30)), now=NOW) == 30.0


def test_an_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after(http_date(NOW - timedelta(seconds=30)), now=NOW) == 0.0


def test_the_obsolete_asctime_date_format_is_read() -> None:
    assert parse_retry_after("Sun Mar  1 12:01:00 2026", now=NOW) == 60.0


@pytest.mark.parametrize("value", ["-3", "-0.5", "inf", "-inf", "nan", "Infinity"])
def test_a_negative_or_non_finite_number_is_rejected(value: str) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize("value", [None, "", "   "])
def test_an_absent_or_empty_value_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize(
    "value", ["soon", "12 34", "+5", "1e3", "Mon, 32 Oct 2015 07:28:00 GMT", "\u0661\u0662"]
)
def test_garbage_is_rejected(value: str) -> None:
    assert parse_retry_after(value) is None


def test_an_absurd_delay_is_capped() -> None:
    assert parse_retry_after("99999999999") == MAX_RETRY_AFTER_SECONDS


def test_a_date_years_ahead_is_capped() -> None:
    assert parse_retry_after(http_date(NOW + timedelta(days=3650)), now=NOW) == (
        MAX_RETRY_AFTER_SECONDS
    )


def test_genesys_and_targets_use_the_same_parser() -> None:
    assert genesys_parse_retry_after is parse_retry_after
    assert retry_after_seconds is parse_retry_after


def test_the_parser_imports_nothing_else_of_the_project() -> None:
    probe = (
        "import sys, dlq.retryafter; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dlq'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert (done.returncode, done.stdout.strip()) == (0, "['dlq', 'dlq.retryafter']")
