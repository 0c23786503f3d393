"""`RetryPolicy` and `cap_countdown`: backoff with full jitter, attempts and age budgets."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from dlq.retry import RetryPolicy, cap_countdown
from dlq.settings import MAX_COUNTDOWN_SECONDS, Settings

NOW = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("retries", "ceiling"), [(0, 2), (1, 4), (2, 8), (5, 64), (8, 512), (9, 600), (30, 600)]
)
def test_backoff_draws_uniformly_up_to_base_times_two_to_the_retries_within_the_max(
    monkeypatch, retries, ceiling
):
    drawn: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        drawn.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", uniform)

    assert RetryPolicy(backoff_base=2, backoff_max=600).backoff(retries) == ceiling
    assert drawn == [(0, ceiling)]


@pytest.mark.parametrize("retries", range(12))
def test_backoff_samples_stay_within_zero_and_the_ceiling(retries):
    policy = RetryPolicy(backoff_base=3, backoff_max=900)
    ceiling = min(900, 3 * 2**retries)
    rng_state = random.getstate()
    random.seed(retries)
    try:
        samples = [policy.backoff(retries) for _ in range(300)]
    finally:
        random.setstate(rng_state)

    assert all(0 <= s <= ceiling for s in samples)
    # Full jitter: the draws spread over the whole range, not just near the ceiling.
    assert min(samples) < ceiling * 0.1 and max(samples) > ceiling * 0.9


def test_backoff_never_exceeds_the_brokers_bound(monkeypatch):
    monkeypatch.setattr(random, "uniform", lambda low, high: high)

    assert RetryPolicy(backoff_max=10 * MAX_COUNTDOWN_SECONDS).backoff(30) == MAX_COUNTDOWN_SECONDS


@pytest.mark.parametrize(
    ("seconds", "capped"),
    [(-5, 0.0), (0, 0.0), (12.5, 12.5), (MAX_COUNTDOWN_SECONDS, MAX_COUNTDOWN_SECONDS)],
)
def test_cap_countdown_keeps_waits_between_zero_and_the_brokers_bound(seconds, capped):
    assert cap_countdown(seconds) == capped


def test_cap_countdown_cuts_a_longer_wait_to_the_brokers_bound():
    assert cap_countdown(MAX_COUNTDOWN_SECONDS + 0.1) == MAX_COUNTDOWN_SECONDS


def test_cap_countdown_answers_a_float():
    assert isinstance(cap_countdown(7), float)


@pytest.mark.parametrize(("attempts", "left"), [(0, True), (1, True), (2, True), (3, False)])
def test_attempts_are_left_while_fewer_than_max_attempts_were_made(attempts, left):
    assert RetryPolicy(max_attempts=3).attempts_left(attempts) is left


def test_an_event_without_a_time_is_never_too_old():
    assert RetryPolicy(max_age_seconds=1).too_old(None, NOW) is False


@pytest.mark.parametrize(
    ("age", "too_old"), [(0, False), (3599, False), (3600, False), (3600.001, True), (86400, True)]
)
def test_an_event_is_too_old_only_past_max_age(age, too_old):
    event_time = NOW - timedelta(seconds=age)

    assert RetryPolicy(max_age_seconds=3600).too_old(event_time, NOW) is too_old


def test_the_policy_is_read_from_the_settings():
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        replay_max_attempts=4,
        replay_backoff_base=3,
        replay_backoff_max=120,
        replay_max_event_age_seconds=600,
    )

    assert RetryPolicy.from_settings(settings) == RetryPolicy(
        max_attempts=4, backoff_base=3, backoff_max=120, max_age_seconds=600
    )
