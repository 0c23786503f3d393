"""A target's pace: REPLAY_TARGET_RATES, which rate applies, the gate's answers, a
redrive's temporary pace (against fakeredis's Lua; no server)."""

from __future__ import annotations

import fakeredis
import pytest
from windows import busiest_window

from dlq.errors import BudgetWait
from dlq.ledger import LedgerItem, Status
from dlq.ratelimit.pace import UNPACED_REUSE_SECONDS, Pace, Slots, most_in_a_second
from dlq.redrivepace import MARGIN_SECONDS, destinations, install, lifetime
from dlq.settings import Settings
from dlq.settings_paces import parse_rates
from dlq.targets.errors import TargetThrottled
from dlq.targets.pacing import OwnLimits, PaceGate, TargetRates, lowest

QUEUE = "arn:aws:sqs:us-east-1:111122223333:crm-events"
FUNCTION = "arn:aws:lambda:us-east-1:111122223333:function:crm-sync"


@pytest.fixture()
def pace() -> Pace:
    return Pace(fakeredis.FakeRedis())


def gate(pace: Pace, rates: dict[str, float] | None = None) -> PaceGate:
    return PaceGate(pace, Slots(pace._redis), TargetRates(rates or {}), lease_seconds=30.0)


# --- REPLAY_TARGET_RATES ----------------------------------------------------------------


def test_rates_read_as_a_json_object() -> None:
    assert parse_rates(f'{{"{QUEUE}": 5, "arn:aws:lambda:*": "2.5"}}') == {
        QUEUE: 5.0,
        "arn:aws:lambda:*": 2.5,
    }


def test_rates_read_as_a_comma_list_of_arn_equals_rate() -> None:
    assert parse_rates(f" {QUEUE}=5 , {FUNCTION}=0.5,") == {QUEUE: 5.0, FUNCTION: 0.5}


@pytest.mark.parametrize("bad", [f"{QUEUE}", f"{QUEUE}=0", f"{QUEUE}=-1", f"{QUEUE}=fast", "[1]"])
def test_a_rate_that_is_not_a_positive_number_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_rates(bad)


def test_the_setting_is_read_from_the_environment_variable(monkeypatch) -> None:
    monkeypatch.setenv("REPLAY_TARGET_RATES", f"{QUEUE}=3")
    assert Settings(_env_file=None).replay_target_rates == {QUEUE: 3.0}


def test_a_pattern_matches_with_stars_and_the_lowest_matching_rate_wins() -> None:
    rates = TargetRates({"arn:aws:sqs:*:crm-*": 8, QUEUE: 5, "arn:aws:sns:*": 1})
    assert rates.rate_for(QUEUE) == 5
    assert rates.rate_for("arn:aws:sqs:eu-west-1:1:crm-audit") == 8
    assert rates.rate_for(FUNCTION) is None


def test_a_rate_matching_the_items_own_target_applies_to_its_overridden_destination() -> None:
    assert TargetRates({QUEUE: 4}).rate_for(FUNCTION, QUEUE) == 4


def test_the_lower_of_the_configured_and_the_targets_own_rate_wins() -> None:
    assert lowest(5, 2) == 2
    assert lowest(None, 2) == 2
    assert lowest(None, None) is None


@pytest.mark.parametrize(("rate", "most"), [(5, 5), (2, 2), (2.5, 3), (0.5, 1), (1, 1)])
def test_no_sliding_second_holds_more_than_the_rate_rounded_up(rate: float, most: int) -> None:
    assert most_in_a_second(rate) == most


def test_the_busiest_window_counts_from_each_recorded_moment() -> None:
    assert busiest_window([0.0, 0.5, 0.99, 1.0, 1.4]) == 4  # [0.5, 1.5)
    assert busiest_window([0.0, 1.0, 2.0]) == 1
    assert busiest_window([]) == 0


# --- the gate -------------------------------------------------------------------------


def test_a_second_send_within_the_interval_waits_without_an_attempt(pace: Pace) -> None:
    paced = gate(pace, {QUEUE: 2})
    paced.take(QUEUE)
    with pytest.raises(BudgetWait) as waited:
        paced.take(QUEUE)
    assert 0 < (waited.value.retry_after or 0) <= 1.0  # the interval, and a spread of one


def test_a_target_without_a_rate_is_not_paced(pace: Pace) -> None:
    paced = gate(pace)
    for _ in range(5):
        paced.take(QUEUE)


def test_the_targets_own_rate_paces_it_without_a_configured_one(pace: Pace) -> None:
    paced = gate(pace)
    paced.take(QUEUE, own=1)
    with pytest.raises(BudgetWait):
        paced.take(QUEUE, own=1)


def test_a_grant_says_when_it_was_given_by_redis(pace: Pace) -> None:
    grant = pace.acquire(QUEUE, rate=1)
    assert grant.granted and grant.at is not None and grant.rate == 1


def test_a_429_with_retry_after_holds_every_send_to_the_target(pace: Pace) -> None:
    paced = gate(pace)
    throttled = TargetThrottled("429", target_arn=QUEUE, code="HTTP429", retry_after=30)
    with pytest.raises(TargetThrottled), paced.sending(QUEUE):
        raise throttled
    with pytest.raises(BudgetWait) as waited:
        paced.take(QUEUE)
    assert 29 < (waited.value.retry_after or 0) <= 30


def test_a_throttle_without_retry_after_holds_nobody_else(pace: Pace) -> None:
    paced = gate(pace)
    throttled = TargetThrottled("429", target_arn=QUEUE, code="HTTP429")
    with pytest.raises(TargetThrottled), paced.sending(QUEUE):
        raise throttled
    paced.take(QUEUE)


def test_an_unpaced_targets_finding_stands_for_its_sends_of_that_second(cache, clock) -> None:
    pace, elsewhere = Pace(cache, clock=clock), Pace(cache)
    assert pace.acquire(QUEUE, rate=None).granted
    elsewhere.hold(QUEUE, 30)  # another process hears a 429

    assert pace.acquire(QUEUE, rate=None).granted
    clock.advance(UNPACED_REUSE_SECONDS)
    assert 29 < pace.acquire(QUEUE, rate=None).wait <= 30


def test_a_429_this_process_hears_holds_its_next_send_at_once(cache, clock) -> None:
    paced = gate(Pace(cache, clock=clock))
    paced.take(QUEUE)
    throttled = TargetThrottled("429", target_arn=QUEUE, code="HTTP429", retry_after=30)
    with pytest.raises(TargetThrottled), paced.sending(QUEUE):
        raise throttled

    with pytest.raises(BudgetWait):
        paced.take(QUEUE)


def test_a_redrive_pace_installed_through_this_process_applies_at_once(cache, clock) -> None:
    pace = Pace(cache, clock=clock)
    assert pace.acquire(QUEUE, rate=None).rate is None

    install(pace, [item()], rate=1)

    assert pace.acquire(QUEUE, rate=None).rate == 1


def test_sends_in_flight_are_capped_by_the_targets_concurrency(pace: Pace) -> None:
    paced = gate(pace)
    capped = OwnLimits(concurrency=1)
    with (
        paced.sending(FUNCTION, limits=capped),
        pytest.raises(BudgetWait),
        paced.sending(FUNCTION, limits=capped),
    ):
        pass
    with paced.sending(FUNCTION, limits=capped):
        pass  # the first send's slot is back


def test_a_function_reserved_at_zero_waits_long(pace: Pace) -> None:
    with (
        pytest.raises(BudgetWait) as waited,
        gate(pace).sending(FUNCTION, limits=OwnLimits(concurrency=0)),
    ):
        pass
    assert (waited.value.retry_after or 0) >= 30


# --- a redrive's temporary pace ---------------------------------------------------------


def item(target: str = QUEUE, override: str | None = None) -> LedgerItem:
    return LedgerItem(
        event_id="e1",
        target_arn=target,
        status=Status.FAILED,
        attempts=1,
        body="{}",
        received_at="2024-01-01T00:00:00Z",
        updated_at="2024-01-01T00:00:00Z",
        target_override=override,
    )


def test_a_redrive_pace_lasts_twice_the_drain_plus_a_margin() -> None:
    assert lifetime(30, 3) == 20 + MARGIN_SECONDS


def test_a_redrive_paces_the_target_and_where_an_override_routes_it() -> None:
    assert destinations(item(), target_override=FUNCTION, overrides={}) == {QUEUE, FUNCTION}
    assert destinations(item(), target_override=None, overrides={QUEUE: FUNCTION}) == {
        QUEUE,
        FUNCTION,
    }
    assert destinations(item(), target_override=None, overrides={}) == {QUEUE}


def test_a_redrive_pace_lowers_a_targets_pace_and_never_raises_it(pace: Pace) -> None:
    install(pace, [item(), item()], rate=1)
    assert pace.temporary(QUEUE) == 1
    assert pace.acquire(QUEUE, rate=10).rate == 1
    assert pace.acquire(FUNCTION, rate=0.5).rate == 0.5  # no redrive pace of its own
