"""Secrets read from moto's Secrets Manager and SSM, and rotated without a restart.

The Genesys client secret is rotated in the simulator and in the store: the next call the
client makes is refused (401), the login refuses the old secret, the store is read again
and the call goes through. The Redis password is rotated on a redis-server of the test's
own (`CONFIG SET requirepass`) and in the store: a new connection, of our client or of
Celery's broker (kombu), gets in with the new one.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import SIM_CLIENT_ID, SIM_CLIENT_SECRET
from kombu.connection import Connection
from redis.exceptions import AuthenticationError

from celeryconfig import broker_url_of
from devstack.redis_server import RedisServer
from dlq.aws import aws_client
from dlq.errors import ConfigurationError
from dlq.genesys.client import build_genesys_client
from dlq.genesys.credentials import GenesysCredentials
from dlq.redact import scrub
from dlq.redisclient import redis_client
from dlq.secretref import SecretReference
from dlq.secrets.redis_auth import RedisCredentials
from dlq.secrets.store import SecretStore
from dlq.settings import Settings


@pytest.fixture()
def aws(moto_server: Any, make_settings: Callable[..., Settings]) -> Settings:
    """Settings whose AWS clients reach the moto server (AWS_ENDPOINT_URL is set)."""
    return make_settings()


def new_secret(settings: Settings, value: str) -> str:
    """A Secrets Manager secret holding `value`; its ARN."""
    name = f"dlq-replay/{uuid.uuid4().hex[:8]}"
    created = aws_client("secretsmanager", settings).create_secret(Name=name, SecretString=value)
    return str(created["ARN"])


def new_parameter(settings: Settings, value: str) -> str:
    """An SSM SecureString parameter holding `value`; its name."""
    name = f"/dlq-replay/{uuid.uuid4().hex[:8]}/redis-password"
    aws_client("ssm", settings).put_parameter(Name=name, Value=value, Type="SecureString")
    return name


def rotate_parameter(settings: Settings, name: str, value: str) -> None:
    ssm = aws_client("ssm", settings)
    ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


# --- reading -----------------------------------------------------------------------------


def test_a_json_field_of_a_secrets_manager_secret_is_read_and_scrubbed_from_then_on(aws):
    arn = new_secret(aws, json.dumps({"client_id": "crm", "client_secret": "cs-4e5f6a7b8c"}))

    value = SecretStore.for_settings(aws).read(
        SecretReference.parse(f"{arn}#client_secret"), setting="GENESYS_CLIENT_SECRET_ARN"
    )

    assert value == "cs-4e5f6a7b8c"
    assert scrub("it was cs-4e5f6a7b8c") == "it was [redacted]"


def test_an_ssm_secure_string_is_read_decrypted_by_name_and_by_arn(aws):
    name = new_parameter(aws, "pw-4e5f6a7b8c")
    arn = f"arn:aws:ssm:{aws.aws_region}:123456789012:parameter{name}"
    store = SecretStore.for_settings(aws)

    by_name = store.read(SecretReference.parse(f"ssm:{name}"), setting="REDIS_PASSWORD_SECRET_ARN")
    by_arn = store.read(SecretReference.parse(arn), setting="REDIS_PASSWORD_SECRET_ARN")

    assert by_name == by_arn == "pw-4e5f6a7b8c"


@pytest.mark.parametrize(
    ("written", "grant"),
    [
        ("secretsmanager:dlq-replay/no-such-secret", "secretsmanager:GetSecretValue"),
        ("ssm:/dlq-replay/no-such-parameter", "ssm:GetParameter"),
    ],
)
def test_a_missing_secret_is_a_configuration_error_naming_the_variable_and_the_grant(
    aws, written, grant
):
    with pytest.raises(ConfigurationError) as missing:
        SecretStore.for_settings(aws).read(
            SecretReference.parse(written), setting="GENESYS_CLIENT_SECRET_ARN"
        )

    assert f"GENESYS_CLIENT_SECRET_ARN ({written.partition(':')[2]})" in str(missing.value)
    assert grant in str(missing.value)


def test_a_json_secret_without_the_field_says_so(aws):
    arn = new_secret(aws, json.dumps({"password": "pw"}))

    with pytest.raises(ConfigurationError, match="string field 'client_secret'"):
        SecretStore.for_settings(aws).read(
            SecretReference.parse(f"{arn}#client_secret"), setting="GENESYS_CLIENT_SECRET_ARN"
        )


# --- Genesys: a rotated client secret, picked up after a 401 ------------------------------


def test_a_genesys_secret_rotated_in_the_store_is_used_after_a_401_without_a_restart(
    aws, genesys_sim, sim_admin, redis_client, make_settings
):
    arn = new_secret(
        aws, json.dumps({"client_id": SIM_CLIENT_ID, "client_secret": SIM_CLIENT_SECRET})
    )
    settings = make_settings(
        genesys_api_base_url=genesys_sim.url,
        genesys_login_base_url=genesys_sim.url,
        genesys_client_id_arn=f"{arn}#client_id",
        genesys_client_secret_arn=f"{arn}#client_secret",
        genesys_rate_limit_per_minute=6000,
    )
    conversation = str(uuid.uuid4())
    sim_admin.seed(conversation)
    client = build_genesys_client(settings, redis_client)
    client.get_conversation(conversation)

    rotated = f"rotated-{uuid.uuid4().hex}"
    sim_admin.configure(client_secret=rotated)  # the OAuth client's secret changed...
    sim_admin.revoke_tokens()  # ...and the tokens issued with the old one revoked
    value = json.dumps({"client_id": SIM_CLIENT_ID, "client_secret": rotated})
    aws_client("secretsmanager", aws).put_secret_value(SecretId=arn, SecretString=value)

    assert client.get_conversation(conversation).id == conversation
    stats = sim_admin.stats()
    assert stats.count("POST /oauth/token", 401) == 1  # the old secret, refused once
    assert stats.count("POST /oauth/token", 200) == 2  # at start, then with the new one
    # The rotated secret is a secret the process holds now (other tests may register
    # other words, so only what happens to this one is asserted).
    scrubbed = scrub(f"rotated to {rotated}")
    assert rotated not in scrubbed and "[redacted]" in scrubbed


def test_a_genesys_secret_wrong_in_the_store_too_is_reported_once(
    aws, genesys_sim, sim_admin, redis_client, make_settings
):
    arn = new_secret(aws, "not-the-simulators-secret")
    settings = make_settings(
        genesys_api_base_url=genesys_sim.url,
        genesys_login_base_url=genesys_sim.url,
        genesys_client_id=SIM_CLIENT_ID,
        genesys_client_secret_arn=arn,
    )
    credentials = GenesysCredentials.from_settings(settings)
    client = build_genesys_client(settings, redis_client, credentials=credentials)

    with pytest.raises(ConfigurationError, match="GENESYS_CLIENT_SECRET_ARN"):
        client.get_conversation(str(uuid.uuid4()))
    assert sim_admin.stats().count("POST /oauth/token", 401) == 1


# --- Redis: a rotated password, picked up by a new connection -----------------------------


@pytest.fixture()
def guarded_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, requiring a password."""
    with RedisServer(tmp_path / "redis", password="pw-first-4e5f6a") as server:
        yield server


def rotate(server: RedisServer, aws: Settings, parameter: str, password: str) -> None:
    """A new password on the server (existing connections stay in) and in the store."""
    admin = redis.Redis.from_url(server.url, password=server.password)
    admin.config_set("requirepass", password)
    admin.close()
    server.password = password
    rotate_parameter(aws, parameter, password)


def test_a_redis_password_rotated_in_the_store_is_used_by_new_connections(
    aws, guarded_redis, make_settings, caplog
):
    parameter = new_parameter(aws, "pw-first-4e5f6a")
    settings = make_settings(
        redis_url=guarded_redis.url, redis_password_secret_arn=f"ssm:{parameter}"
    )
    credentials = RedisCredentials.from_settings(settings)
    client = redis_client(settings, credentials)
    client.set("before", "1")

    rotate(guarded_redis, aws, parameter, "pw-second-7b8c9d")
    client.connection_pool.disconnect()  # as after a network blip or a failover
    with caplog.at_level(logging.WARNING, logger="dlq"):
        assert client.get("before") == b"1"
    other = redis_client(settings, credentials)
    assert other.ping() is True

    assert "REDIS_PASSWORD_SECRET_ARN: refused" in caplog.text
    assert "pw-second-7b8c9d" not in caplog.text and "pw-first-4e5f6a" not in caplog.text
    with pytest.raises(AuthenticationError):  # the server really changed its password
        redis.Redis.from_url(guarded_redis.url, password="pw-first-4e5f6a").ping()


def round_trip(url: str, n: int) -> Any:
    """One message through the broker at `url`, on a new connection."""
    with Connection(url) as broker:
        queue = broker.SimpleQueue("secret-store-test")
        queue.put({"n": n})
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    return message.payload


def test_celerys_broker_gets_the_password_of_the_process_provider_rotated_or_not(
    aws, guarded_redis, make_settings
):
    from tasks.config import forget, redis_credentials

    parameter = new_parameter(aws, "pw-first-4e5f6a")
    env = {"REDIS_URL": guarded_redis.url, "REDIS_PASSWORD_SECRET_ARN": f"ssm:{parameter}"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        forget()
        try:
            settings = make_settings(**{k.lower(): v for k, v in env.items()})
            url = broker_url_of(settings)
            assert "pw-" not in url
            assert round_trip(url, 1) == {"n": 1}

            rotate(guarded_redis, aws, parameter, "pw-second-7b8c9d")
            # The worker's own client meets the refusal first and re-reads the store...
            assert redis_client(settings, redis_credentials()).ping() is True
            # ...and the broker, reconnecting, gets the new password from the same provider.
            assert round_trip(url, 2) == {"n": 2}
        finally:
            forget()
