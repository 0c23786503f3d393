"""The Genesys client against the simulator over HTTP, with the shared token and limiter."""

from __future__ import annotations

import json
import logging
import math
import pickle
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import redis
from helpers import FIXTURES
from pydantic import SecretStr

from devstack.genesys_sim import GenesysSimulator
from devstack.process import free_port
from devstack.sim_admin import GET_CONVERSATION, TOKEN, SimAdmin
from dlq.errors import ConfigurationError, GiveUp, RetryLater
from dlq.genesys.checks import clean_attributes
from dlq.genesys.client import GenesysClient, build_genesys_client
from dlq.genesys.errors import (
    GenesysBadRequest,
    GenesysClientError,
    GenesysConnectionError,
    GenesysCredentialsError,
    GenesysError,
    GenesysForbidden,
    GenesysNotFound,
    GenesysRateLimited,
    GenesysServerError,
    GenesysTimeout,
    GenesysUnauthorized,
    InvalidRequest,
    RateLimitWait,
)
from dlq.genesys.headers import parse_retry_after
from dlq.genesys.transport import MockTransport, Request, Response
from dlq.ratelimit import Priority, RateLimiter
from dlq.settings import Settings

CONVERSATION = json.loads((FIXTURES / "genesys-get-conversation.json").read_text())
CONV_ID = CONVERSATION["id"]
CUSTOMER = CONVERSATION["participants"][0]["id"]
AGENT = CONVERSATION["participants"][2]["id"]


@pytest.fixture()
def settings(genesys_settings: Settings) -> Settings:
    """The simulator's settings with a budget so large that only chosen tests meet it."""
    return with_settings(genesys_settings, genesys_rate_limit_per_minute=600_000)


@pytest.fixture()
def client(settings: Settings, redis_client: redis.Redis, sim_admin: SimAdmin) -> GenesysClient:
    sim_admin.seed_bodies([CONVERSATION])
    return build_genesys_client(settings, redis_client)


def with_settings(settings: Settings, **changes: object) -> Settings:
    """A copy of `settings` with some fields changed (validated again)."""
    values = {
        **settings.model_dump(exclude={"genesys_client_secret"}),
        "genesys_client_secret": settings.genesys_client_secret,
        **changes,
    }
    return Settings(_env_file=None, **values)


# --- the happy paths --------------------------------------------------------------------


def test_get_conversation_returns_the_model_with_extras_kept(client: GenesysClient) -> None:
    conversation = client.get_conversation(CONV_ID)
    assert conversation.id == CONV_ID
    assert conversation.start_time == datetime(2026, 11, 20, 14, 3, 11, 512000, tzinfo=UTC)
    assert conversation.ended
    assert conversation.customer_participant_id() == CUSTOMER
    customer = conversation.participant(CUSTOMER)
    assert customer is not None and customer.attributes == {"crmId": "12345"}
    assert conversation.participant(AGENT) is not None
    assert conversation.model_extra is not None and "divisions" in conversation.model_extra


def test_one_token_serves_many_calls(client: GenesysClient, sim_admin: SimAdmin) -> None:
    # Five calls at once: above the 300/min the simulator allows, the limiter follows it.
    sim_admin.configure(rate_limit=100_000)
    for _ in range(5):
        client.get_conversation(CONV_ID)
    stats = sim_admin.stats()
    assert stats.count(TOKEN, 200) == 1
    assert stats.count(GET_CONVERSATION, 200) == 5


def test_patch_merges_attributes_converting_numbers_and_booleans(
    client: GenesysClient, sim_admin: SimAdmin
) -> None:
    client.patch_participant_attributes(CONV_ID, CUSTOMER, {"status": "replayed", "count": 3})
    client.patch_participant_attributes(CONV_ID, CUSTOMER, {"ok": True, "ratio": 0.5})
    assert sim_admin.attributes(CONV_ID, CUSTOMER) == {
        "crmId": "12345",
        "status": "replayed",
        "count": "3",
        "ok": "true",
        "ratio": "0.5",
    }
    assert len(sim_admin.attribute_history(CONV_ID)) == 2


def test_last_rate_limit_exposes_the_inin_headers(client: GenesysClient) -> None:
    assert client.last_rate_limit is None
    client.get_conversation(CONV_ID)
    info = client.last_rate_limit
    assert info is not None
    assert (info.allowed, info.count, info.remaining) == (300, 1, 299)
    assert info.reset is not None and 0 < info.reset <= 60


def test_the_client_paces_at_what_genesys_allows(
    client: GenesysClient, sim_admin: SimAdmin
) -> None:
    sim_admin.configure(advertised_limit=60)  # it still enforces 300 a minute
    assert client._limiter is not None
    client.get_conversation(CONV_ID)
    with pytest.raises(RateLimitWait):
        for _ in range(5):
            client.get_conversation(CONV_ID)
    assert client._limiter.effective_per_minute == 57.0  # 60 less burst + 1
    assert sim_admin.stats().status(429) == 0


class _OneToken:
    def get(self) -> SecretStr:
        return SecretStr("unit-token")

    def invalidate(self, token: SecretStr) -> None:
        pass


@pytest.mark.parametrize("allowed", ["lots", "-3", "", "nan", None])
def test_a_missing_or_garbled_allowance_header_leaves_the_pace_alone(
    settings: Settings, redis_client: redis.Redis, allowed: str | None
) -> None:
    headers = {} if allowed is None else {"inin-ratelimit-allowed": allowed}

    def answer(request: Request) -> Response:
        return Response.of(200, CONVERSATION, {**headers, "inin-ratelimit-count": "1"})

    limiter = RateLimiter(redis_client, settings.genesys_client_id, per_minute=600_000)
    client = GenesysClient(
        settings, tokens=_OneToken(), limiter=limiter, transport=MockTransport(answer)
    )
    for _ in range(3):
        client.get_conversation(CONV_ID)
    assert limiter.effective_per_minute == 600_000.0


# --- refused before any network I/O -------------------------------------------------------

BAD_IDS = [
    "../../users",
    "x/y",
    "%2e%2e",
    "not-a-uuid",
    f"{CONV_ID}?expand=all",
    f"{CONV_ID}#x",
    f"{CONV_ID}/../../users",
    f"{CONV_ID}\n",
    "",
    CONV_ID.replace("-", ""),
]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_unsafe_conversation_ids_are_refused_before_any_request(
    client: GenesysClient, sim_admin: SimAdmin, bad: str
) -> None:
    with pytest.raises(InvalidRequest):
        client.get_conversation(bad)
    with pytest.raises(InvalidRequest):
        client.patch_participant_attributes(bad, CUSTOMER, {"a": "b"})
    assert sim_admin.stats().requests == 0


@pytest.mark.parametrize("bad", BAD_IDS)
def test_unsafe_participant_ids_are_refused_before_any_request(
    client: GenesysClient, sim_admin: SimAdmin, bad: str
) -> None:
    with pytest.raises(InvalidRequest):
        client.patch_participant_attributes(CONV_ID, bad, {"a": "b"})
    assert sim_admin.stats().requests == 0


@pytest.mark.parametrize("value", [{"nested": "x"}, ["a"], None, math.nan, b"bytes", object()])
def test_non_string_attribute_values_are_refused_before_any_request(
    client: GenesysClient, sim_admin: SimAdmin, value: object
) -> None:
    with pytest.raises(InvalidRequest, match="attribute 'k'"):
        client.patch_participant_attributes(CONV_ID, CUSTOMER, {"k": value})
    assert sim_admin.stats().requests == 0


def test_empty_attribute_updates_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        clean_attributes({})


def test_invalid_request_is_a_give_up_and_a_value_error() -> None:
    assert issubclass(InvalidRequest, GiveUp)
    assert issubclass(InvalidRequest, ValueError)


# --- every status to its error class --------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error", "family", "code"),
    [
        (400, GenesysBadRequest, GiveUp, "bad.request"),
        (403, GenesysForbidden, GiveUp, "missing.any.permissions"),
        (404, GenesysNotFound, GiveUp, "not.found"),
        (409, GenesysClientError, GiveUp, "error"),
        (500, GenesysServerError, RetryLater, "internal.server.error"),
        (503, GenesysServerError, RetryLater, "service.unavailable"),
    ],
)
def test_error_statuses_raise_their_class_with_context(
    client: GenesysClient,
    sim_admin: SimAdmin,
    status: int,
    error: type[GenesysError],
    family: type[Exception],
    code: str,
) -> None:
    sim_admin.script(CONV_ID, [status])
    with pytest.raises(error) as caught:
        client.get_conversation(CONV_ID)
    exc = caught.value
    assert isinstance(exc, family)
    assert (exc.status, exc.code) == (status, code)
    assert exc.correlation_id and exc.correlation_id in str(exc)
    assert str(status) in str(exc)


def test_unknown_conversation_is_not_found(client: GenesysClient) -> None:
    with pytest.raises(GenesysNotFound, match="do not retry"):
        client.get_conversation(str(uuid.uuid4()))


def test_deleted_conversation_patch_is_not_found(
    client: GenesysClient, sim_admin: SimAdmin
) -> None:
    sim_admin.delete(CONV_ID)
    with pytest.raises(GenesysNotFound):
        client.patch_participant_attributes(CONV_ID, CUSTOMER, {"a": "b"})


def test_401_twice_is_unauthorized_after_exactly_one_fresh_token(
    client: GenesysClient, sim_admin: SimAdmin
) -> None:
    sim_admin.script(CONV_ID, [401, 401])
    with pytest.raises(GenesysUnauthorized) as caught:
        client.get_conversation(CONV_ID)
    assert isinstance(caught.value, RetryLater)
    assert caught.value.status == 401 and caught.value.correlation_id
    stats = sim_admin.stats()
    assert stats.count(GET_CONVERSATION, 401) == 2
    assert stats.tokens_issued == 2


def test_a_single_401_is_healed_with_one_fresh_token(
    client: GenesysClient, sim_admin: SimAdmin
) -> None:
    client.get_conversation(CONV_ID)
    sim_admin.revoke_tokens()
    assert client.get_conversation(CONV_ID).id == CONV_ID
    assert sim_admin.stats().tokens_issued == 2


def test_429_with_seconds_carries_the_wait_and_holds_the_fleet(
    client: GenesysClient, sim_admin: SimAdmin, settings: Settings, redis_client: redis.Redis
) -> None:
    sim_admin.script(CONV_ID, [{"status": 429, "retry_after": 7}])
    with pytest.raises(GenesysRateLimited) as caught:
        client.get_conversation(CONV_ID)
    exc = caught.value
    assert exc.retry_after == 7
    assert (exc.status, exc.code) == (429, "too.many.requests.retry.after")
    assert exc.correlation_id
    other_worker = build_genesys_client(settings, redis_client)
    with pytest.raises(RateLimitWait) as waited:
        other_worker.get_conversation(CONV_ID)
    assert waited.value.retry_after is not None and 5 < waited.value.retry_after <= 7


def test_429_with_an_http_date_carries_the_wait(client: GenesysClient, sim_admin: SimAdmin) -> None:
    sim_admin.configure(retry_after_http_date=True)
    sim_admin.script(CONV_ID, [{"status": 429, "retry_after": 7}])
    with pytest.raises(GenesysRateLimited) as caught:
        client.get_conversation(CONV_ID)
    assert caught.value.retry_after is not None and 5 <= caught.value.retry_after <= 7


def test_read_timeout_is_retryable(
    settings: Settings, redis_client: redis.Redis, sim_admin: SimAdmin
) -> None:
    sim_admin.seed_bodies([CONVERSATION])
    client = build_genesys_client(with_settings(settings, genesys_read_timeout=0.3), redis_client)
    client.get_conversation(CONV_ID)  # the token first, so the API call is what times out
    sim_admin.configure(latency_ms=1000)
    with pytest.raises(GenesysTimeout, match=r"read 0\.3 s") as caught:
        client.get_conversation(CONV_ID)
    assert isinstance(caught.value, RetryLater)


def test_connection_refused_is_retryable(settings: Settings, redis_client: redis.Redis) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    moved = with_settings(settings, genesys_api_base_url=nowhere, genesys_login_base_url=nowhere)
    with pytest.raises(GenesysConnectionError) as caught:
        build_genesys_client(moved, redis_client).get_conversation(CONV_ID)
    assert isinstance(caught.value, RetryLater)


def test_wrong_credentials_are_a_configuration_error_without_the_secret(
    settings: Settings, redis_client: redis.Redis
) -> None:
    wrong = with_settings(settings, genesys_client_secret="wrong-secret-123")
    with pytest.raises(GenesysCredentialsError) as caught:
        build_genesys_client(wrong, redis_client).get_conversation(CONV_ID)
    exc = caught.value
    assert isinstance(exc, ConfigurationError)
    assert (exc.status, exc.code) == (401, "invalid_client")
    assert "GENESYS_CLIENT_SECRET" in str(exc)
    assert "wrong-secret-123" not in str(exc)


def test_outage_is_retryable(client: GenesysClient, sim_admin: SimAdmin) -> None:
    sim_admin.configure(reject_all=True)
    with pytest.raises(GenesysServerError):
        client.get_conversation(CONV_ID)


# --- the limiter in the client ----------------------------------------------------------


def test_limiter_wait_raises_without_a_request(
    settings: Settings, redis_client: redis.Redis, sim_admin: SimAdmin
) -> None:
    client = build_genesys_client(settings, redis_client)
    assert client._limiter is not None
    client._limiter.penalise(30)
    with pytest.raises(RateLimitWait) as caught:
        client.get_conversation(CONV_ID)
    assert not isinstance(caught.value, GenesysRateLimited)
    assert caught.value.retry_after is not None and 25 < caught.value.retry_after <= 30
    assert sim_admin.stats().requests == 0


def test_a_spent_server_window_holds_the_fleet_before_any_429(
    client: GenesysClient, sim_admin: SimAdmin
) -> None:
    sim_admin.configure(rate_limit=2, rate_window=30)
    client.get_conversation(CONV_ID)
    client.get_conversation(CONV_ID)  # count 2 of 2: the window is spent
    with pytest.raises(RateLimitWait):
        client.get_conversation(CONV_ID, priority=Priority.HIGH)
    assert sim_admin.stats().status(429) == 0


def test_a_401_mid_run_recovers_with_exactly_one_new_token(
    settings: Settings, redis_client: redis.Redis, sim_admin: SimAdmin
) -> None:
    sim_admin.seed_bodies([CONVERSATION])
    clients = [build_genesys_client(settings, redis_client) for _ in range(8)]
    done = threading.Event()
    calls: list[int] = []
    errors: list[Exception] = []

    def worker(client: GenesysClient) -> None:
        while not done.is_set():
            try:
                client.get_conversation(CONV_ID)
                calls.append(1)
            except RateLimitWait as wait:
                time.sleep(wait.retry_after or 0.01)
            except Exception as exc:
                errors.append(exc)
                return

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 20
        while len(calls) < n and time.monotonic() < deadline and not errors:
            time.sleep(0.01)

    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    wait_for(40)
    sim_admin.revoke_tokens()
    wait_for(len(calls) + 80)
    done.set()
    for thread in threads:
        thread.join()
    assert errors == []
    stats = sim_admin.stats()
    assert stats.count(GET_CONVERSATION, 401) >= 1
    assert stats.tokens_issued == 2


# --- secrets and errors as data ----------------------------------------------------------


def test_secrets_never_reach_logs_reprs_or_messages(
    client: GenesysClient,
    settings: Settings,
    redis_client: redis.Redis,
    sim_admin: SimAdmin,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client.get_conversation(CONV_ID)
    token = client._tokens.get().get_secret_value()
    secret = settings.genesys_client_secret.get_secret_value()
    sim_admin.script(CONV_ID, [401, 401])
    with pytest.raises(GenesysUnauthorized) as unauthorized:
        client.get_conversation(CONV_ID)
    texts = [
        caplog.text,
        repr(client),
        repr(client._tokens),
        repr(settings),
        str(unauthorized.value),
        repr(unauthorized.value),
    ]
    for text in texts:
        assert token not in text
        assert secret not in text


def test_errors_survive_pickling_with_their_context() -> None:
    exc = GenesysRateLimited("slow down", status=429, code="c", correlation_id="x", retry_after=3)
    copy = pickle.loads(pickle.dumps(exc))  # noqa: S301 (our own bytes)
    assert type(copy) is GenesysRateLimited
    assert (copy.status, copy.code, copy.correlation_id, copy.retry_after) == (429, "c", "x", 3)
    assert str(copy) == "slow down"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 20, 14, 0, 0, tzinfo=UTC)
    assert parse_retry_after("17") == 17
    assert (
        parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now) == 30
    )
    assert (
        parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now) == 0
    )
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") is None


def test_simulator_fixture_uses_its_own_credentials(genesys_sim: GenesysSimulator) -> None:
    assert genesys_sim.config.client_id != "sim-client-id"
