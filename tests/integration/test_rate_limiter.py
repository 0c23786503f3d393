"""The cluster-wide rate limiter: one paced budget per OAuth client, shared through Redis."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
import uuid
from typing import Any

import pytest
import redis
from helpers import eventually

from devstack.sim_admin import GET_CONVERSATION, SimAdmin
from dlq.genesys.client import GenesysClient, build_genesys_client
from dlq.genesys.errors import GenesysRateLimited, RateLimitWait
from dlq.ratelimit import Priority, RateLimiter
from dlq.settings import Settings

CONVERSATIONS = [str(uuid.UUID(int=i + 1)) for i in range(20)]


def limiter(client: redis.Redis, **kw: Any) -> RateLimiter:
    return RateLimiter(client, "client-a", **{"per_minute": 60, "jitter": False, **kw})


def portable(settings: Settings, **changes: Any) -> dict[str, Any]:
    """Settings as plain values for a child process, the secret included on purpose."""
    fields = settings.model_dump(mode="json")
    fields["genesys_client_secret"] = settings.genesys_client_secret.get_secret_value()
    fields.update(changes)
    return fields


def _hammer(fields: dict[str, Any], barrier: Any, threads: int, seconds: float, out: Any) -> None:
    """One worker process: `threads` callers doing lookups as fast as the limiter allows."""
    settings = Settings(_env_file=None, **fields)
    client = build_genesys_client(settings, redis.Redis.from_url(settings.redis_url))
    counts = {"ok": 0, "waits": 0, "429": 0}
    lock = threading.Lock()

    def caller(index: int) -> None:
        deadline = time.monotonic() + seconds
        i = index
        while time.monotonic() < deadline:
            i += 1
            try:
                client.get_conversation(CONVERSATIONS[i % len(CONVERSATIONS)])
                outcome, pause = "ok", 0.0
            except RateLimitWait as wait:
                outcome, pause = "waits", wait.retry_after or 0.0
            except GenesysRateLimited as limited:
                outcome, pause = "429", limited.retry_after or 0.0
            with lock:
                counts[outcome] += 1
            time.sleep(min(pause, max(deadline - time.monotonic(), 0)))

    barrier.wait()
    workers = [threading.Thread(target=caller, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(counts)


def _acquire_in_child(redis_url: str, client_id: str, out: Any) -> None:
    """The wait a limiter in another process is told, and when it was told (epoch s)."""
    child = RateLimiter(redis.Redis.from_url(redis_url), client_id, per_minute=6000, jitter=False)
    wait = child.acquire(Priority.HIGH)
    out.put((wait, time.time()))


# --- pacing ---------------------------------------------------------------------------


def test_calls_are_paced_after_a_small_burst(redis_client: redis.Redis) -> None:
    paced = limiter(redis_client, per_minute=60, burst=2)
    assert paced.acquire() == 0.0
    assert paced.acquire() == 0.0
    wait = paced.acquire()
    assert 0 < wait <= 1.0


def test_every_instance_shares_one_budget(redis_client: redis.Redis, redis_url: str) -> None:
    first = limiter(redis_client, burst=1)
    second = limiter(redis.Redis.from_url(redis_url), burst=1)
    assert first.acquire() == 0.0
    assert 0 < second.acquire() <= 1.0


def test_budgets_of_two_oauth_clients_are_separate(redis_client: redis.Redis) -> None:
    assert limiter(redis_client, burst=1).acquire() == 0.0
    assert RateLimiter(redis_client, "client-b", per_minute=60, burst=1).acquire() == 0.0


def test_a_refusal_takes_no_slot(redis_client: redis.Redis) -> None:
    paced = limiter(redis_client, burst=1)
    paced.acquire()
    first, second = paced.acquire(), paced.acquire()
    assert 0 < second <= first <= 1.0


def test_refused_callers_are_spread_over_one_interval(redis_client: redis.Redis) -> None:
    spread = RateLimiter(redis_client, "client-c", per_minute=60, burst=1)
    spread.acquire()
    waits = {round(spread.acquire(), 3) for _ in range(10)}
    assert len(waits) > 1
    assert all(0 < w <= 2.0 for w in waits)


def test_impossible_budgets_are_refused(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError):
        limiter(redis_client, reserve=1.0)
    with pytest.raises(ValueError):
        limiter(redis_client, burst=0)


# --- priorities ----------------------------------------------------------------------


def test_low_priority_passes_while_the_budget_is_above_the_reserve(
    redis_client: redis.Redis,
) -> None:
    assert limiter(redis_client).acquire(Priority.LOW) == 0.0


def test_low_priority_is_refused_below_the_reserve_while_high_passes(
    redis_client: redis.Redis,
) -> None:
    # 20 calls per 2 s window, 25 % reserved for HIGH: LOW stops after 15; a burst of 20
    # lets the test spend the budget without waiting for the pacer.
    budget = limiter(redis_client, per_minute=600, window=2.0, reserve=0.25, burst=20)
    for _ in range(15):
        assert budget.acquire(Priority.HIGH) == 0.0
    low_wait = budget.acquire(Priority.LOW)
    assert 1.5 < low_wait <= 2.0
    assert budget.acquire(Priority.HIGH) == 0.0
    assert budget.acquire(Priority.LOW) > 0


def test_a_low_only_load_may_use_the_whole_window(redis_client: redis.Redis) -> None:
    # 20 calls per 2 s window; with no HIGH caller about, the 25 % reserve does not apply:
    # the burst of 20 lets LOW take all of them without waiting for the pacer.
    budget = limiter(redis_client, per_minute=600, window=2.0, reserve=0.25, burst=20)
    granted = sum(budget.acquire(Priority.LOW) == 0.0 for _ in range(25))
    assert granted == 20


def test_a_high_request_holds_low_to_the_reserve(redis_client: redis.Redis) -> None:
    budget = limiter(redis_client, per_minute=600, window=2.0, reserve=0.25, burst=20)
    assert budget.acquire(Priority.HIGH) == 0.0
    granted = sum(budget.acquire(Priority.LOW) == 0.0 for _ in range(20))
    # 15 of the window's 20 calls, the HIGH one included: 5 stay free for redeliveries.
    assert granted == 14
    assert budget.acquire(Priority.HIGH) == 0.0


def test_high_preempts_a_low_backlog_from_its_first_request(redis_client: redis.Redis) -> None:
    budget = limiter(redis_client, per_minute=600, window=2.0, reserve=0.25, burst=20)
    assert all(budget.acquire(Priority.LOW) == 0.0 for _ in range(16))  # above the reserve
    assert budget.acquire(Priority.HIGH) == 0.0
    assert budget.acquire(Priority.LOW) > 0


def test_refused_low_callers_are_given_turns_one_slot_apart(redis_client: redis.Redis) -> None:
    budget = limiter(redis_client, per_minute=60, burst=1)  # one slot a second
    assert budget.acquire(Priority.LOW) == 0.0
    turns = [budget.acquire(Priority.LOW) for _ in range(5)]
    # A backlog comes back one caller per slot, not every caller at the next slot.
    gaps = [later - earlier for earlier, later in itertools.pairwise(turns)]
    assert 0 < turns[0] <= 1.0
    assert all(0.95 <= gap <= 1.0 for gap in gaps), turns


def test_a_turn_books_nothing_high_callers_still_go_first(redis_client: redis.Redis) -> None:
    budget = limiter(redis_client, per_minute=60, burst=1)
    assert budget.acquire(Priority.LOW) == 0.0
    for _ in range(10):
        budget.acquire(Priority.LOW)  # ten turns given, up to ten seconds ahead
    assert 0 < budget.acquire(Priority.HIGH) <= 1.0  # the next slot, not the eleventh


def test_low_turns_stay_one_slot_apart_while_high_is_about(redis_client: redis.Redis) -> None:
    # Turns spread for the reserve would leave slots idle once HIGH has gone; the reserve
    # is kept by refusing a LOW caller at its turn instead.
    budget = limiter(redis_client, per_minute=60, burst=1, reserve=0.5)
    assert budget.acquire(Priority.HIGH) == 0.0
    turns = [budget.acquire(Priority.LOW) for _ in range(3)]
    assert all(0.95 <= later - earlier <= 1.0 for earlier, later in itertools.pairwise(turns))


def test_low_gets_the_whole_rate_back_once_high_has_gone(redis_client: redis.Redis) -> None:
    # 20 calls a minute, 15 of them for LOW while HIGH is about; the log would hold LOW
    # back for a whole minute, the HIGH caller's mark only for `high_hold`.
    budget = limiter(redis_client, per_minute=20, burst=20, high_hold=0.3)
    assert budget.acquire(Priority.HIGH) == 0.0
    assert sum(budget.acquire(Priority.LOW) == 0.0 for _ in range(14)) == 14
    wait = budget.acquire(Priority.LOW)
    assert 0 < wait <= 0.3
    eventually(
        lambda: budget.acquire(Priority.LOW) == 0.0,
        timeout=10,
        what="LOW is granted the 16th call of the window once HIGH's mark lapses",
    )


# --- following the server's allowance ----------------------------------------------------


def test_a_lower_server_allowance_sets_the_pace(redis_client: redis.Redis) -> None:
    budget = limiter(redis_client, per_minute=600, burst=1)
    budget.note_server_allowance(12)
    assert budget.acquire() == 0.0
    # 12 a minute less a margin of burst + 1: 10 a minute, one call every 6 s, not 0.1 s.
    assert budget.effective_per_minute == 10.0
    assert 3.0 < budget.acquire() <= 6.0


def test_the_margin_is_three_percent_of_a_real_sized_allowance(redis_client: redis.Redis) -> None:
    budget = limiter(redis_client, per_minute=290)
    budget.note_server_allowance(120)
    budget.acquire()
    assert budget.effective_per_minute == 116.0  # 120 less ceil(3.6)


def test_a_higher_server_allowance_is_ignored(redis_client: redis.Redis) -> None:
    budget = limiter(redis_client, per_minute=60, burst=1)
    budget.note_server_allowance(6000)
    assert budget.acquire() == 0.0
    assert budget.effective_per_minute == 60.0
    assert 0 < budget.acquire() <= 1.0


def test_missing_or_meaningless_allowances_are_ignored(redis_client: redis.Redis) -> None:
    budget = limiter(redis_client, per_minute=60)
    for allowed in (None, 0, -5):
        budget.note_server_allowance(allowed)
        budget.acquire()
        assert budget.effective_per_minute == 60.0


def test_one_report_paces_the_whole_fleet_of_that_oauth_client(
    redis_client: redis.Redis, redis_url: str
) -> None:
    reporter = limiter(redis_client, per_minute=600)
    reporter.note_server_allowance(12)
    reporter.acquire()
    other = limiter(redis.Redis.from_url(redis_url), per_minute=600)
    other.acquire()
    assert other.effective_per_minute == 9.0  # 12 less burst + 1
    stranger = RateLimiter(redis_client, "client-b", per_minute=600)
    stranger.acquire()
    assert stranger.effective_per_minute == 600.0


def test_the_configured_rate_returns_when_reports_stop(redis_client: redis.Redis) -> None:
    budget = limiter(redis_client, per_minute=6000, allowance_ttl=0.3)
    budget.note_server_allowance(12)
    budget.acquire()
    assert budget.effective_per_minute == 9.0

    def back_to_configured() -> bool:
        budget.acquire()
        return budget.effective_per_minute == 6000.0

    eventually(back_to_configured, timeout=10, what="the allowance lapses without reports")


def test_a_change_of_pace_is_logged_once(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    budget = limiter(redis_client, per_minute=600)
    with caplog.at_level("INFO", logger="dlq.ratelimit"):
        for _ in range(3):
            budget.note_server_allowance(12)
            budget.acquire()
        budget.note_server_allowance(6000)
        budget.acquire()
        budget.acquire()
    messages = [r.getMessage() for r in caplog.records if r.name == "dlq.ratelimit.limiter"]
    assert len(messages) == 2
    assert "pacing at 9.0 calls/min, below the configured 600" in messages[0]
    assert "back to the configured 600" in messages[1]


# --- back-off after a 429 ---------------------------------------------------------------


def test_penalise_holds_every_caller_until_it_ends(
    redis_client: redis.Redis, redis_url: str
) -> None:
    # A 2 s hold, so a loaded machine's stall between the calls (CI once took over 0.5 s
    # for these seven) cannot outlast it.
    budget = limiter(redis_client, per_minute=6000)
    assert budget.penalise(2) == pytest.approx(2, abs=0.05)
    others = [limiter(redis.Redis.from_url(redis_url), per_minute=6000) for _ in range(3)]
    high = [o.acquire(Priority.HIGH) for o in others]
    assert all(0 < w <= 2 for w in high)
    # LOW callers come back after the hold too, each at its turn, one slot (10 ms) apart.
    low = [o.acquire(Priority.LOW) for o in others]
    assert all(1 < w <= 2 + 3 * 0.01 for w in low)
    time.sleep(max(high + low))
    assert budget.acquire(Priority.LOW) == 0.0


def test_a_shorter_penalty_never_shortens_a_longer_one(redis_client: redis.Redis) -> None:
    budget = limiter(redis_client)
    budget.penalise(10)
    assert budget.penalise(1) > 9


def test_a_429_storm_holds_the_whole_fleet_back_until_the_reset(
    genesys_settings: Settings, redis_client: redis.Redis, redis_url: str, sim_admin: SimAdmin
) -> None:
    sim_admin.seed(CONVERSATIONS[0])
    sim_admin.script(CONVERSATIONS[0], [{"status": 429, "retry_after": 2}] * 3)
    client = build_genesys_client(genesys_settings, redis_client)
    asked_at = time.time()
    with pytest.raises(GenesysRateLimited) as caught:
        client.get_conversation(CONVERSATIONS[0])
    assert caught.value.retry_after == 2
    earliest_reset = asked_at + 2

    client_id = genesys_settings.genesys_client_id
    fleet = [
        RateLimiter(redis.Redis.from_url(redis_url), client_id, per_minute=6000, jitter=False)
        for _ in range(8)
    ]
    in_threads: list[float] = []
    threads = [threading.Thread(target=lambda f=f: in_threads.append(f.acquire())) for f in fleet]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(0 < w <= 2 for w in in_threads)
    with pytest.raises(RateLimitWait):
        client.get_conversation(CONVERSATIONS[0])
    assert sim_admin.stats().status(429) == 1
    # Another process, which may take a while to start on a busy machine: whenever it
    # asks, it is told to wait until the reset, never let through before it.
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_acquire_in_child, args=(redis_url, client_id, out))
    child.start()
    in_process, told_at = out.get(timeout=30)
    child.join(timeout=10)
    assert 0 <= in_process <= 2
    assert told_at + in_process >= earliest_reset - 0.05

    time.sleep(fleet[0].acquire() + 0.01)
    assert fleet[1].acquire() == 0.0


# --- the fleet against the simulator ------------------------------------------------------


def test_a_fleet_of_processes_and_threads_stays_within_the_budget(
    genesys_settings: Settings, sim_admin: SimAdmin
) -> None:
    """Simulator: 60 calls per 3 s window; limiter: 55 per 3 s; ~2.5 windows of hammering."""
    sim_admin.configure(rate_limit=60, rate_window=3, auto_create=True)
    per_minute, seconds, processes, threads = 1100, 7.5, 3, 4
    # The simulator's allowance (60 per 3 s, less the margin) is above the budget: ignored.
    fields = portable(
        genesys_settings,
        genesys_rate_limit_per_minute=per_minute,
        genesys_rate_limit_window_seconds=3,
    )
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(target=_hammer, args=(fields, barrier, threads, seconds, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=90) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)

    stats = sim_admin.stats()
    ok = sum(r["ok"] for r in results)
    assert sum(r["429"] for r in results) == 0
    assert stats.status(429) == 0
    assert stats.count(GET_CONVERSATION, 200) == ok
    budget = per_minute / 60 * seconds
    # At most the budget plus the burst of 2, with a second of slack for start-up skew.
    assert ok <= budget + 2 + per_minute / 60
    # The fleet did press on the limit: it was refused, and got most of the budget.
    assert sum(r["waits"] for r in results) > 0
    assert ok >= 0.6 * budget


def test_a_burst_follows_the_lower_allowance_of_the_server(
    genesys_settings: Settings, redis_client: redis.Redis, sim_admin: SimAdmin
) -> None:
    """A server allowing 120 calls a minute, a client configured for 290, time run 25x fast.

    Simulator: 120 calls per 2.4 s window; client: 7,250 calls a minute, which would spend
    the window in a second. The allowance in the headers (120 less a margin of 4) paces
    it at 116 per window instead: ~2 windows of 4 callers, no 429.
    """
    sim_admin.configure(rate_limit=120, rate_window=2.4, auto_create=True)
    settings = Settings(
        _env_file=None,
        **portable(
            genesys_settings,
            genesys_rate_limit_per_minute=7250,
            genesys_rate_limit_window_seconds=2.4,
        ),
    )
    client = build_genesys_client(settings, redis_client)
    # The fleet has heard the allowance once; the burst starts on a fresh token, whose
    # window the simulator opens at its first call.
    client.get_conversation(CONVERSATIONS[0])
    sim_admin.revoke_tokens()
    counts = {"ok": 0, "waits": 0, "429": 0}
    most_counted = 0
    lock = threading.Lock()

    def caller(index: int) -> None:
        nonlocal most_counted
        i = index
        while True:
            with lock:
                if counts["ok"] >= 250:
                    return
            i += 4
            pause = 0.0
            try:
                client.get_conversation(CONVERSATIONS[i % len(CONVERSATIONS)])
                outcome = "ok"
            except RateLimitWait as wait:
                outcome, pause = "waits", wait.retry_after or 0.0
            except GenesysRateLimited as limited:
                outcome, pause = "429", limited.retry_after or 0.0
            seen = client.last_rate_limit
            with lock:
                counts[outcome] += 1
                if seen is not None and seen.count is not None:
                    most_counted = max(most_counted, seen.count)
            time.sleep(pause)

    threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert counts["429"] == 0
    assert sim_admin.stats().status(429) == 0
    assert client_limiter(client).effective_per_minute == 2900.0  # 116 per 2.4 s
    assert counts["waits"] > 0
    # No window was overspent: at most the server's 120 (a loaded machine may land the
    # last calls of one of our windows in the server's next one, spending the headroom).
    assert most_counted <= 120


def client_limiter(client: GenesysClient) -> RateLimiter:
    assert client._limiter is not None
    return client._limiter
