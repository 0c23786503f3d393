"""Secrets by reference: what a reference says, when a secret is read again, and who asks.

A store stands in for Secrets Manager and SSM here (the real ones, on moto, are in
tests/integration/test_secret_store.py): each test counts its reads.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

import pytest
from kombu.utils.imports import symbol_by_name
from redis.exceptions import AuthenticationError

from celeryconfig import BROKER_CREDENTIALS, broker_url_of
from dlq.clock import FakeClock
from dlq.errors import ConfigurationError
from dlq.genesys.auth import fetch_token
from dlq.genesys.credentials import GenesysCredentials
from dlq.genesys.errors import GenesysCredentialsError
from dlq.genesys.transport import MockTransport, Request, Response
from dlq.redact import scrub
from dlq.secretref import SecretReference
from dlq.secrets.redis_auth import RedisCredentials, without_userinfo
from dlq.secrets.store import SecretStore
from dlq.secrets.value import REREAD_QUIET_SECONDS, SecretValue
from dlq.settings import Settings, load_settings

SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dlq-replay/genesys-AbCdEf"
PARAMETER_ARN = "arn:aws:ssm:eu-west-2:123456789012:parameter/dlq-replay/redis"


class FakeStore(SecretStore):
    """Answers what `values` holds now for each reference's name; counts the reads."""

    def __init__(self, **values: str) -> None:
        super().__init__(lambda service, region: None)
        self.values = dict(values)
        self.reads: list[str] = []

    def read(self, reference: SecretReference, *, setting: str, secret: bool = True) -> str:
        self.reads.append(str(reference))
        return self.values[reference.field or reference.name]


def referenced(store: FakeStore, name: str, clock: FakeClock | None = None) -> SecretValue:
    return SecretValue(
        "SOME_SECRET_ARN",
        reference=SecretReference.parse(f"ssm:{name}"),
        store=lambda: store,
        clock=(clock or FakeClock()).now,
    )


# --- references --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (SECRET_ARN, SecretReference("secretsmanager", SECRET_ARN, "eu-west-1")),
        (
            f"{SECRET_ARN}#client_secret",
            SecretReference("secretsmanager", SECRET_ARN, "eu-west-1", "client_secret"),
        ),
        ("secretsmanager:dlq/genesys", SecretReference("secretsmanager", "dlq/genesys")),
        (PARAMETER_ARN, SecretReference("ssm", PARAMETER_ARN, "eu-west-2")),
        ("ssm:/dlq-replay/redis", SecretReference("ssm", "/dlq-replay/redis")),
        ("ssm:/dlq/redis#password", SecretReference("ssm", "/dlq/redis", None, "password")),
        (f"ssm:{PARAMETER_ARN}", SecretReference("ssm", PARAMETER_ARN, "eu-west-2")),
    ],
)  # fmt: skip
def test_a_reference_names_its_store_its_secret_its_region_and_field(
    written: str, expected: SecretReference
) -> None:
    assert SecretReference.parse(written) == expected


@pytest.mark.parametrize(
    "written",
    [
        "hunter2",
        "ssm:",
        "vault:/x",
        "arn:aws:s3:::bucket/key",
        f"ssm:{SECRET_ARN}",
        "ssm:/x#not a field",
    ],
)
def test_anything_else_is_refused_saying_what_a_reference_looks_like(written: str) -> None:
    with pytest.raises(ValueError, match=r"reference|field|ARN"):
        SecretReference.parse(written)


def test_a_bad_reference_is_a_configuration_error_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="GENESYS_CLIENT_SECRET_ARN is invalid"):
        load_settings(_env_file=None, genesys_client_secret_arn="hunter2")


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (
            {"genesys_client_secret": "plain-5f1e", "genesys_client_secret_arn": SECRET_ARN},
            "GENESYS_CLIENT_SECRET and its reference (GENESYS_CLIENT_SECRET_ARN)",
        ),
        (
            {"genesys_client_id": "client", "genesys_client_id_arn": SECRET_ARN + "#client_id"},
            "GENESYS_CLIENT_ID and its reference (GENESYS_CLIENT_ID_ARN)",
        ),
        (
            {"redis_url": "redis://:pw-5f1e@cache/0", "redis_password_secret_arn": PARAMETER_ARN},
            "the password in REDIS_URL and its reference (REDIS_PASSWORD_SECRET_ARN)",
        ),
    ],
)  # fmt: skip
def test_a_secret_given_both_plainly_and_by_reference_is_refused(
    values: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(named)):
        load_settings(_env_file=None, **values)


def test_the_settings_register_their_plain_secrets_with_the_scrubber() -> None:
    Settings(
        _env_file=None,
        genesys_client_secret="plain-secret-5f1e2d3c",
        redis_url="redis://:redis-pw-5f1e2d3c@cache:6379/0",
    )

    assert scrub("plain-secret-5f1e2d3c and redis-pw-5f1e2d3c") == "[redacted] and [redacted]"


# --- a value, read again when refused ----------------------------------------------------


def test_a_referenced_value_is_read_once_until_refused() -> None:
    store = FakeStore(**{"/pw": "one"})
    value = referenced(store, "/pw")

    assert [value.get(), value.get()] == ["one", "one"]
    assert store.reads == ["/pw"]


def test_a_refused_value_is_read_again_and_the_new_one_used() -> None:
    store = FakeStore(**{"/pw": "one"})
    value = referenced(store, "/pw")
    value.get()
    store.values["/pw"] = "two"

    assert value.refresh("one") is True
    assert value.get() == "two"
    assert len(store.reads) == 2


def test_a_refusal_of_the_value_the_store_still_holds_is_no_rotation() -> None:
    clock = FakeClock()
    store = FakeStore(**{"/pw": "one"})
    value = referenced(store, "/pw", clock)
    value.get()

    assert value.refresh("one") is False
    assert value.refresh("one") is False  # within the quiet interval: no read
    clock.advance(REREAD_QUIET_SECONDS + 1)
    assert value.refresh("one") is False
    assert len(store.reads) == 3


def test_a_refusal_already_answered_by_another_thread_reads_nothing() -> None:
    store = FakeStore(**{"/pw": "one"})
    value = referenced(store, "/pw")
    value.get()
    store.values["/pw"] = "two"
    value.refresh("one")

    assert value.refresh("one") is True  # a caller that still held "one"
    assert len(store.reads) == 2


def test_a_value_older_than_asked_for_is_read_again() -> None:
    clock = FakeClock()
    store = FakeStore(**{"/pw": "one"})
    value = referenced(store, "/pw", clock)
    value.get(max_age=60)
    store.values["/pw"] = "two"
    clock.advance(30)
    assert value.get(max_age=60) == "one"
    clock.advance(31)
    assert value.get(max_age=60) == "two"


def test_a_plain_value_is_never_read_nor_refreshed() -> None:
    value = SecretValue("GENESYS_CLIENT_SECRET", plain="plain")

    assert (value.get(), value.refresh("plain"), value.configured) == ("plain", False, True)


# --- Genesys: a refused login tries the credentials just read ------------------------------


def genesys(store: FakeStore) -> tuple[Settings, GenesysCredentials]:
    settings = Settings(
        _env_file=None,
        genesys_login_base_url="https://login.example.test",
        genesys_client_id_arn=f"{SECRET_ARN}#client_id",
        genesys_client_secret_arn=f"{SECRET_ARN}#client_secret",
    )
    return settings, GenesysCredentials.from_settings(settings, store=store)


def login_accepting(client_id: str, secret: str) -> Callable[[Request], Response]:
    accepted = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()

    def answer(request: Request) -> Response:
        if request.headers.get("Authorization") == accepted:
            return Response.of(200, {"access_token": "token-5f1e2d3c", "expires_in": 3600})
        return Response.of(401, {"error": "invalid_client", "error_description": "refused"})

    return answer


def test_a_login_refused_after_a_rotation_succeeds_with_the_secret_read_again() -> None:
    store = FakeStore(client_id="client", client_secret="old-secret")
    settings, credentials = genesys(store)
    credentials.pair()  # read at start
    store.values["client_secret"] = "new-secret"
    transport = MockTransport(login_accepting("client", "new-secret"))

    issued = fetch_token(settings, transport, credentials)

    assert issued.access_token.get_secret_value() == "token-5f1e2d3c"
    assert len(transport.requests) == 2
    assert store.reads.count(f"{SECRET_ARN}#client_secret") == 2


def test_a_login_refused_without_a_rotation_is_not_tried_again() -> None:
    store = FakeStore(client_id="client", client_secret="wrong-secret")
    settings, credentials = genesys(store)
    transport = MockTransport(login_accepting("client", "right-secret"))

    with pytest.raises(GenesysCredentialsError) as refused:
        fetch_token(settings, transport, credentials)

    assert len(transport.requests) == 1
    assert "GENESYS_CLIENT_ID_ARN / GENESYS_CLIENT_SECRET_ARN" in str(refused.value)
    assert "wrong-secret" not in str(refused.value)


def test_credentials_neither_plain_nor_referenced_name_both_variables() -> None:
    credentials = GenesysCredentials.from_settings(Settings(_env_file=None, genesys_client_id="c"))

    with pytest.raises(ConfigurationError, match=r"GENESYS_CLIENT_SECRET is not set \(nor "):
        credentials.require(purpose="the Genesys client")


# --- Redis: the provider, its handshake, the broker's URL ----------------------------------


class Handshake:
    """A redis-py connection's `on_connect`, refusing passwords other than `accepted`."""

    def __init__(self, credentials: RedisCredentials, accepted: str) -> None:
        self.credentials = credentials
        self.accepted = accepted
        self.sent: list[Any] = []

    def on_connect(self) -> None:
        sent = self.credentials.get_credentials()
        self.sent.append(sent)
        if sent[-1] != self.accepted:
            raise AuthenticationError("WRONGPASS invalid username-password pair")


def redis_credentials(store: FakeStore) -> RedisCredentials:
    settings = Settings(
        _env_file=None,
        redis_url="rediss://replayer@cache:6379/0",
        redis_password_secret_arn="ssm:/pw",
    )
    credentials = RedisCredentials.from_settings(settings, store=store)
    assert credentials is not None
    return credentials


def test_redis_gets_the_user_of_the_url_and_the_password_of_the_store() -> None:
    credentials = redis_credentials(FakeStore(**{"/pw": "pw-one"}))

    assert credentials.get_credentials() == ("replayer", "pw-one")
    assert credentials.url == "rediss://cache:6379/0"


def test_a_refused_handshake_is_made_again_with_the_password_read_again() -> None:
    store = FakeStore(**{"/pw": "pw-one"})
    credentials = redis_credentials(store)
    credentials.read()
    store.values["/pw"] = "pw-two"
    connection = Handshake(credentials, accepted="pw-two")

    credentials.authenticate(connection)

    assert connection.sent == [("replayer", "pw-one"), ("replayer", "pw-two")]


def test_a_refused_handshake_without_a_rotation_stays_refused() -> None:
    store = FakeStore(**{"/pw": "pw-one"})
    credentials = redis_credentials(store)
    connection = Handshake(credentials, accepted="something-else")

    with pytest.raises(AuthenticationError):
        credentials.authenticate(connection)
    assert len(connection.sent) == 1


def test_no_reference_no_provider() -> None:
    assert RedisCredentials.from_settings(Settings(_env_file=None)) is None


def test_the_broker_url_carries_no_password_but_names_the_provider() -> None:
    settings = Settings(
        _env_file=None,
        redis_url="rediss://replayer@cache:6379/0?ssl_cert_reqs=required",
        redis_password_secret_arn="ssm:/pw",
    )

    url = broker_url_of(settings)

    assert url == (
        "rediss://cache:6379/0?ssl_cert_reqs=required"
        "&credential_provider=tasks.config.broker_credentials"
    )
    from tasks.config import broker_credentials

    assert symbol_by_name(BROKER_CREDENTIALS) is broker_credentials


def test_without_a_reference_the_broker_url_is_redis_url() -> None:
    settings = Settings(_env_file=None, redis_url="redis://:pw@cache:6379/0")

    assert broker_url_of(settings) == "redis://:pw@cache:6379/0"


def test_user_information_is_taken_out_of_a_url() -> None:
    assert without_userinfo("redis://u:p@h:1/0?x=1") == "redis://h:1/0?x=1"
