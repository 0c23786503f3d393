"""Times the commands agree on: `status` writes ISO 8601, `--since`/`--until` read the same
forms in `status` and `redrive`, and `status --watch` piped writes a snapshot per interval.

Against the moto server and redis-server; commands in-process through click's runner,
except the piped watch, a real process whose stdout is a pipe.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from helpers import genesys_event, parsed

from cli.main import main
from dlq.aws import aws_client
from dlq.clock import SYSTEM_CLOCK, FakeClock
from dlq.ledger import Ledger, Status, create_table, marshal
from dlq.ledger.model import route_of
from dlq.metrics.counters import OutcomeCounters
from dlq.settings import load_settings

DLQ_CLI = str(Path(sys.executable).with_name("dlq-replay"))
CRM = "arn:aws:sqs:us-east-1:111122223333:crm-events"
#: A time as the ledger writes it: ISO 8601, UTC, milliseconds.
ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00"


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture()
def env(moto_server, redis_url, unique) -> dict[str, str]:
    return {
        "LEDGER_TABLE": f"ledger-{unique}",
        "DLQ_QUEUE_URL": "",
        "REDIS_URL": redis_url,
        "REPLAY_PARKING_QUEUE_URL": "",
    }


@pytest.fixture()
def ledger(env) -> Ledger:
    settings = load_settings(_env_file=None, **{k.lower(): v for k, v in env.items()})
    client = aws_client("dynamodb", settings)
    create_table(client, settings.ledger_table)
    return Ledger(client, settings.ledger_table)


def put(ledger: Ledger, status: Status, *, updated_at: str | None = None) -> str:
    """An item brought to `status` through the ledger's transitions; its event id."""
    event, message = parsed(genesys_event(), CRM)
    ledger.put_received(event, message)
    if status is not Status.RECEIVED:
        claimed = ledger.claim(event.key, lease_seconds=60)
        ledger.finish(claimed, status, outcome=status.value, error="503", error_code="HTTP503")
    if updated_at is not None:
        ledger._client.update_item(
            TableName=ledger.table,
            Key=marshal.key(event.key.event_id, route_of(event.key)),
            UpdateExpression="SET updated_at = :when",
            ExpressionAttributeValues={":when": {"S": updated_at}},
        )
    return event.key.event_id


def midnight_today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


# --- status prints ISO 8601 -----------------------------------------------------------------


def test_status_writes_its_window_and_the_oldest_pending_in_iso_8601(env, ledger):
    event_id = put(ledger, Status.RECEIVED)

    result = run(env, "status")

    assert result.exit_code == 0, result.output
    window = rf"^outcomes from {ISO} to {ISO} \(counted as they happened\)$"
    assert re.search(window, result.stdout, re.MULTILINE)
    assert re.search(
        rf"^oldest pending: received {ISO} \(\d+ s ago\), event {event_id}, "
        r"now received, not tried yet$",
        result.stdout,
        re.MULTILINE,
    )


def test_status_watch_once_writes_its_moment_in_iso_8601_piped_and_as_json(env, ledger):
    put(ledger, Status.RECEIVED)

    piped = run(env, "status", "--watch", "--once")
    data = json.loads(run(env, "status", "--watch", "--once", "--json").stdout)

    assert piped.exit_code == 0, piped.output
    assert re.match(rf"dlq-replay at {ISO}: backlog 1", piped.stdout)
    assert re.fullmatch(ISO, data["at"]) and re.fullmatch(ISO, data["since"])
    assert datetime.fromisoformat(data["at"]).timestamp() == pytest.approx(data["at_epoch"])
    assert data["at_epoch"] - data["since_epoch"] == pytest.approx(60.0)


# --- --since and --until: one set of forms ------------------------------------------------


@pytest.fixture()
def counted(env, redis_client) -> None:
    """One ingest counted an hour before today's midnight (UTC), one counted now."""
    before = midnight_today() - timedelta(hours=1)
    for clock in (FakeClock(before.timestamp()), SYSTEM_CLOCK):
        table = env["LEDGER_TABLE"]
        counters = OutcomeCounters(redis_client, table, clock=clock)
        counters.ingested("accepted", target_arn=CRM, dlq_error_code="THROTTLING")


def today(time_of_day: str = "") -> str:
    return midnight_today().strftime("%Y-%m-%d") + time_of_day


SINCE_TODAY = {
    "a duration": lambda: "30m",
    "a date": lambda: today(),
    "an ISO time in Z": lambda: today("T00:00:00Z"),
    "an ISO time with an offset": lambda: today("T01:00:00+01:00"),
    "an ISO time without a zone (UTC)": lambda: today("T00:00"),
}


@pytest.mark.parametrize("since", SINCE_TODAY.values(), ids=SINCE_TODAY.keys())
def test_status_since_takes_every_form(env, ledger, counted, since):
    everything = json.loads(run(env, "status", "--json").stdout)

    result = run(env, "status", "--json", "--since", since())

    assert result.exit_code == 0, result.output
    assert everything["by_outcome"]["ingested"] == 2
    assert json.loads(result.stdout)["by_outcome"]["ingested"] == 1


def test_status_until_ends_the_outcomes_window(env, ledger, counted):
    result = run(env, "status", "--json", "--until", today("T00:00:00Z"))

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["by_outcome"]["ingested"] == 1
    assert report["until"] == midnight_today().isoformat(timespec="milliseconds")


@pytest.fixture()
def aged(ledger) -> dict[str, str]:
    """Failed items last updated now, on 2021-06-15 and on 2020-01-01."""
    return {
        "now": put(ledger, Status.FAILED),
        "2021": put(ledger, Status.FAILED, updated_at="2021-06-15T12:00:00.000+00:00"),
        "2020": put(ledger, Status.EXHAUSTED, updated_at="2020-01-01T00:00:00.000+00:00"),
    }


REDRIVE_WINDOWS = {
    "a duration": (["--since", "1h"], {"now"}),
    "a date": (["--since", "2022-01-01"], {"now"}),
    "an ISO time in Z": (["--since", "2021-06-15T11:59:59Z"], {"now", "2021"}),
    "an ISO time with an offset": (["--since", "2021-06-15T13:00:01+01:00"], {"now"}),
    "until a date": (["--until", "2021-01-01"], {"2020"}),
    "between": (["--since", "2021-01-01T00:00:00Z", "--until", "30d"], {"2021"}),
}


@pytest.mark.parametrize(("args", "expected"), REDRIVE_WINDOWS.values(), ids=REDRIVE_WINDOWS.keys())
def test_redrive_since_and_until_take_the_forms_status_takes(env, aged, args, expected):
    result = run(env, "redrive", "--dry-run", "--json", *args)

    assert result.exit_code == 0, result.output
    listed = {item["event_id"] for item in json.loads(result.stdout)["items"]}
    assert listed == {aged[name] for name in expected}


@pytest.mark.parametrize("command", ["status", "redrive"])
@pytest.mark.parametrize("option", ["--since", "--until"])
def test_a_time_no_form_fits_is_refused_naming_the_forms(env, ledger, command, option):
    result = run(env, command, option, "last tuesday")

    assert result.exit_code == 2
    said = (
        f"Invalid value for '{option}': 'last tuesday' is not a time: use a duration back "
        "from now (30m, 1h, 2d), a date (2026-12-01, midnight UTC) or an ISO 8601 time "
        "(2026-12-01T10:00:00Z; UTC unless it gives an offset)"
    )
    assert said in result.output


@pytest.mark.parametrize("command", ["status", "redrive"])
def test_an_until_before_the_since_is_refused(env, ledger, command):
    result = run(env, command, "--since", "1h", "--until", "2h")

    assert result.exit_code == 2
    assert "Invalid value for --until: it must be later than --since" in result.output


# --- status --watch into a pipe -----------------------------------------------------------


def test_watch_piped_writes_one_plain_snapshot_per_interval(env, ledger):
    put(ledger, Status.RECEIVED)
    process = subprocess.Popen(
        [DLQ_CLI, "status", "--watch", "--interval", "1"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    written = b""
    deadline = time.monotonic() + 60
    try:
        assert process.stdout is not None
        while written.count(b"\n\n") < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:
                    break
                written += chunk
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=30)

    text = written.decode()
    snapshots = text.split("\n\n")[:2]
    assert len(snapshots) == 2, f"stdout: {text!r}; stderr: {errors.decode()!r}"
    assert "\x1b" not in text and "\r" not in text
    moments = []
    for snapshot in snapshots:
        lines = snapshot.splitlines()
        headline = re.match(rf"dlq-replay at ({ISO}): backlog 1", lines[0])
        assert headline, lines[0]
        moments.append(datetime.fromisoformat(headline.group(1)))
        at = lines.index("# backlog")
        assert lines[at + 1] == "where\titems"
        assert "ledger, received\t1" in lines
        assert "DLQ\tunknown: DLQ_QUEUE_URL is not set" in lines
    assert (moments[1] - moments[0]).total_seconds() >= 1.0
