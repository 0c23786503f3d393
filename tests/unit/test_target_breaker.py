"""The target breaker's decisions (dlq.holds.breaker): a state fed failures and time."""

from __future__ import annotations

from dlq.holds.breaker import (
    Breaker,
    BreakerRule,
    BreakerState,
    admit,
    failed,
    released,
    succeeded,
)

RULE = BreakerRule(failures=3, window=60.0, cooldown=30.0, probe_seconds=10.0)


def opened_at(t: float) -> Breaker:
    breaker = Breaker()
    for moment in (t - 2, t - 1, t):
        breaker = failed(RULE, breaker, now=moment)
    return breaker


def test_the_configured_failures_within_the_window_open_it() -> None:
    breaker = failed(RULE, failed(RULE, Breaker(), now=100.0), now=101.0)
    assert breaker.state is BreakerState.CLOSED
    breaker = failed(RULE, breaker, now=102.0)
    assert (breaker.state, breaker.since) == (BreakerState.OPEN, 102.0)


def test_failures_spread_wider_than_the_window_never_open_it() -> None:
    breaker = Breaker()
    for moment in range(0, 600, 40):
        breaker = failed(RULE, breaker, now=float(moment))
    assert breaker.state is BreakerState.CLOSED
    assert len(breaker.failures) <= RULE.failures - 1


def test_a_success_breaks_the_run_of_failures() -> None:
    breaker = succeeded(failed(RULE, failed(RULE, Breaker(), now=1.0), now=2.0))
    assert failed(RULE, breaker, now=3.0).state is BreakerState.CLOSED


def test_while_open_every_caller_waits_until_the_cool_down_ends() -> None:
    breaker = opened_at(100.0)
    admission, after = admit(RULE, breaker, now=110.0, caller="a")
    assert not admission.allowed
    assert admission.retry_after == 20.0
    assert after == breaker


def test_after_the_cool_down_exactly_one_caller_gets_the_probe() -> None:
    first, probing = admit(RULE, opened_at(100.0), now=131.0, caller="a")
    assert first.allowed and first.probe
    assert probing.state is BreakerState.HALF_OPEN
    second, unchanged = admit(RULE, probing, now=131.5, caller="b")
    assert not second.allowed
    assert unchanged == probing
    # The one held back looks again soon: the probe's answer should free it promptly.
    assert second.retry_after <= RULE.recheck


def test_the_probes_success_closes_it() -> None:
    _, probing = admit(RULE, opened_at(100.0), now=131.0, caller="a")
    closed = succeeded(probing)
    assert closed == Breaker()
    assert admit(RULE, closed, now=132.0, caller="b")[0].allowed


def test_the_probes_failure_opens_it_for_a_new_cool_down() -> None:
    _, probing = admit(RULE, opened_at(100.0), now=131.0, caller="a")
    reopened = failed(RULE, probing, now=132.0)
    assert (reopened.state, reopened.since) == (BreakerState.OPEN, 132.0)
    assert not admit(RULE, reopened, now=150.0, caller="b")[0].allowed


def test_a_probe_that_never_reports_lets_another_caller_probe_after_its_lease() -> None:
    _, probing = admit(RULE, opened_at(100.0), now=131.0, caller="a")
    admission, taken = admit(RULE, probing, now=131.0 + RULE.probe_seconds + 1, caller="b")
    assert admission.probe
    assert taken.probe == "b"


def test_a_probe_released_unsent_goes_to_the_next_caller_at_once() -> None:
    _, probing = admit(RULE, opened_at(100.0), now=131.0, caller="a")
    assert released(probing, caller="b") == probing  # only its holder releases it
    admission, _ = admit(RULE, released(probing, caller="a"), now=131.1, caller="b")
    assert admission.probe


def test_a_send_that_fails_while_it_is_open_does_not_extend_the_cool_down() -> None:
    breaker = opened_at(100.0)
    assert failed(RULE, breaker, now=120.0) == breaker


def test_zero_failures_turns_it_off() -> None:
    off = BreakerRule(failures=0)
    breaker = Breaker()
    for moment in range(100):
        breaker = failed(off, breaker, now=float(moment))
    assert breaker.state is BreakerState.CLOSED
    assert admit(off, breaker, now=100.0, caller="a")[0].allowed


def test_one_failure_is_enough_when_the_rule_says_one() -> None:
    assert failed(BreakerRule(failures=1), Breaker(), now=1.0).state is BreakerState.OPEN
