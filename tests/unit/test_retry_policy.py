"""`RetryPolicy`: countdowns (full jitter, Retry-After, the broker's cap), attempts, age."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from dlq.retry import TRACKING_POLICY, RetryPolicy, cap_countdown
from dlq.settings import MAX_COUNTDOWN_SECONDS, Settings

NOW = datetime(2027, 1, 15, 8, 0, tzinfo=UTC)


class Top(random.Random):
    """A generator whose every draw is the top of its range, recording the ranges."""

    def __init__(self) -> None:
        super().__init__(0)
        self.drawn: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.drawn.append((a, b))
        return b


@pytest.mark.parametrize(
    ("retries", "ceiling"), [(0, 2), (1, 4), (2, 8), (5, 64), (8, 512), (9, 600), (30, 600)]
)
def test_a_countdown_draws_uniformly_up_to_base_times_two_to_the_retries_within_the_max(
    retries, ceiling
):
    top = Top()

    assert RetryPolicy(backoff_base=2, backoff_max=600).countdown(retries, rng=top) == ceiling
    assert top.drawn == [(0, ceiling)]


@pytest.mark.parametrize("retries", range(12))
def test_countdown_samples_stay_within_zero_and_the_ceiling(retries):
    policy = RetryPolicy(backoff_base=3, backoff_max=900)
    ceiling = min(900, 3 * 2**retries)
    rng = random.Random(retries)

    samples = [policy.countdown(retries, rng=rng) for _ in range(300)]

    assert all(0 <= s <= ceiling for s in samples)
    # Full jitter: the draws spread over the whole range, not just near the ceiling.
    assert min(samples) < ceiling * 0.1 and max(samples) > ceiling * 0.9


def test_without_jitter_the_countdown_is_the_ceiling_itself():
    assert RetryPolicy(backoff_base=5, backoff_max=900, jitter=False).countdown(3) == 40


def test_a_countdown_stretches_to_a_longer_retry_after():
    policy = RetryPolicy(backoff_base=2, backoff_max=600)

    assert policy.countdown(0, retry_after=45, rng=Top()) == 45


def test_a_shorter_retry_after_leaves_the_backoff_as_drawn():
    policy = RetryPolicy(backoff_base=2, backoff_max=600)

    assert policy.countdown(4, retry_after=3, rng=Top()) == 32


def test_a_retry_after_beyond_the_brokers_bound_is_capped():
    policy = RetryPolicy()

    assert policy.countdown(0, retry_after=10 * MAX_COUNTDOWN_SECONDS) == MAX_COUNTDOWN_SECONDS


def test_a_countdown_never_exceeds_the_brokers_bound():
    policy = RetryPolicy(backoff_max=10 * MAX_COUNTDOWN_SECONDS)

    assert policy.countdown(30, rng=Top()) == MAX_COUNTDOWN_SECONDS


def test_a_huge_retry_count_does_not_overflow():
    assert RetryPolicy(jitter=False).countdown(10_000) == 600


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

    policy = RetryPolicy.from_settings(settings)

    assert (policy.max_attempts, policy.backoff_base, policy.backoff_max) == (4, 3, 120)
    assert policy.max_age_seconds == 600


def test_every_policy_bounds_its_tasks_retries_beyond_its_attempts():
    # Infrastructure waits (Redis, the ledger) retry the task without spending an
    # attempt; the bound keeps that loop finite, and the reconciler resumes the item.
    settings = Settings(_env_file=None, replay_max_attempts=4)  # type: ignore[call-arg]

    for policy in (RetryPolicy.from_settings(settings), TRACKING_POLICY):
        assert policy.max_attempts <= policy.task_retries < 1000


def test_tracking_has_no_age_budget():
    assert TRACKING_POLICY.too_old(NOW - timedelta(days=365), NOW) is False
