"""How a connection's settings are read from DescribeConnection and its secret.

Three layouts of the secret (see `dlq.targets.connections`): EventBridge's own (flat
snake_case), moto's (the request's sections merged, `client_parameters`,
`o_auth_http_parameters`) and the API's shape. DescribeConnection below is the documented
response (botocore `events` model): no client secret, no value of a secret parameter.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from dlq.errors import ConfigurationError
from dlq.targets.connection_auth import (
    Credentials,
    OAuthClient,
    oauth_client,
    parse_authorization,
)
from dlq.targets.connections import token_answer

CONNECTION = "arn:aws:events:us-east-1:123456789012:connection/crm/5e8a1c3d"
ENDPOINT = "https://auth.example.com/oauth2/token"
CLIENT_ID = "crm-sync-client"
CLIENT_SECRET = "s3cr3t-0f-the-client"
ASSERTION = "secret-assertion-value"
SECRET_ARN = (
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    "events!connection/crm/5e8a1c3d/auth-AbCdEf"
)


def described(oauth: dict[str, Any] | None = None) -> dict[str, Any]:
    """DescribeConnection of an OAuth connection, as EventBridge documents it."""
    parameters = {
        "ClientParameters": {"ClientID": CLIENT_ID},
        "AuthorizationEndpoint": ENDPOINT,
        "HttpMethod": "POST",
        "OAuthHttpParameters": {
            "BodyParameters": [
                {"Key": "audience", "Value": "crm-api", "IsValueSecret": False},
                {"Key": "assertion", "IsValueSecret": True},  # value withheld
            ],
            "HeaderParameters": [{"Key": "X-Tenant", "Value": "acme", "IsValueSecret": False}],
            "QueryStringParameters": [{"Key": "realm", "Value": "genesys", "IsValueSecret": False}],
        },
    }
    if oauth is not None:
        parameters = oauth
    return {
        "ConnectionArn": CONNECTION,
        "AuthorizationType": "OAUTH_CLIENT_CREDENTIALS",
        "SecretArn": SECRET_ARN,
        "AuthParameters": {"OAuthParameters": parameters},
    }


#: The secret as EventBridge stores it (flat snake_case), as code reading real connection
#: secrets has it (guardian/support-service-lambdas, salesforce-disaster-recovery).
EVENTBRIDGE_SECRET = {
    "client_id": CLIENT_ID,
    "client_secret": CLIENT_SECRET,
    "authorization_endpoint": ENDPOINT,
    "http_method": "POST",
    "oauth_http_parameters": {
        "body_parameters": [
            {"key": "audience", "value": "crm-api", "is_value_secret": False},
            {"key": "assertion", "value": ASSERTION, "is_value_secret": True},
        ],
        "header_parameters": [{"key": "X-Tenant", "value": "acme"}],
        "query_string_parameters": [{"key": "realm", "value": "genesys"}],
    },
}

#: The secret as moto 5 stores it (moto/events/models.py, Connection.__init__).
MOTO_SECRET = {
    "client_parameters": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    "authorization_endpoint": ENDPOINT,
    "http_method": "POST",
    "o_auth_http_parameters": {
        "body_parameters": [
            {"key": "audience", "value": "crm-api", "is_value_secret": False},
            {"key": "assertion", "value": ASSERTION, "is_value_secret": True},
        ],
        "header_parameters": [{"key": "X-Tenant", "value": "acme", "is_value_secret": False}],
        "query_string_parameters": [{"key": "realm", "value": "genesys", "is_value_secret": False}],
    },
}

#: A secret in the API's own shape (CreateConnection's AuthParameters).
API_SHAPED_SECRET = {
    "OAuthParameters": {
        "ClientParameters": {"ClientID": CLIENT_ID, "ClientSecret": CLIENT_SECRET},
        "AuthorizationEndpoint": ENDPOINT,
        "HttpMethod": "POST",
        "OAuthHttpParameters": {
            "BodyParameters": [
                {"Key": "audience", "Value": "crm-api"},
                {"Key": "assertion", "Value": ASSERTION, "IsValueSecret": True},
            ],
            "HeaderParameters": [{"Key": "X-Tenant", "Value": "acme"}],
            "QueryStringParameters": [{"Key": "realm", "Value": "genesys"}],
        },
    }
}

EXPECTED = OAuthClient(
    endpoint=ENDPOINT,
    method="POST",
    client_id=CLIENT_ID,
    client_secret=CLIENT_SECRET,
    headers={"X-Tenant": "acme"},
    query={"realm": "genesys"},
    body={"audience": "crm-api", "assertion": ASSERTION},
    marked_secret=frozenset({ASSERTION}),
)


@pytest.mark.parametrize(
    "secret",
    [EVENTBRIDGE_SECRET, MOTO_SECRET, API_SHAPED_SECRET],
    ids=["eventbridge", "moto", "api-shaped"],
)
def test_every_known_secret_layout_gives_the_same_token_request(secret):
    authorization = parse_authorization(described(), secret, connection_arn=CONNECTION)

    assert authorization.oauth == EXPECTED


def test_the_public_client_id_never_overrides_the_secrets():
    public = described()["AuthParameters"]
    public["OAuthParameters"]["ClientParameters"] = {"ClientID": "a-stale-public-id"}

    client = oauth_client(EVENTBRIDGE_SECRET, public, connection_arn=CONNECTION)

    assert (client.client_id, client.client_secret) == (CLIENT_ID, CLIENT_SECRET)


def test_a_public_client_id_snake_cased_letter_by_letter_does_not_hide_the_secrets():
    # The old reader turned ClientID into `client_i_d` and let it replace the secret's.
    public = {"o_auth_parameters": {"client_parameters": {"client_i_d": "a-stale-public-id"}}}

    client = oauth_client(MOTO_SECRET, public, connection_arn=CONNECTION)

    assert (client.client_id, client.client_secret) == (CLIENT_ID, CLIENT_SECRET)


def test_the_public_client_id_fills_a_secret_without_one():
    secret = {k: v for k, v in EVENTBRIDGE_SECRET.items() if k != "client_id"}

    client = oauth_client(secret, described()["AuthParameters"], connection_arn=CONNECTION)

    assert (client.client_id, client.client_secret) == (CLIENT_ID, CLIENT_SECRET)


def test_the_client_secret_is_never_taken_from_describe_connection():
    # moto's DescribeConnection echoes ClientSecret; EventBridge's never does.
    public = described()["AuthParameters"]
    public["OAuthParameters"]["ClientParameters"]["ClientSecret"] = CLIENT_SECRET
    secret = {k: v for k, v in EVENTBRIDGE_SECRET.items() if k != "client_secret"}

    with pytest.raises(ConfigurationError, match="client secret could not be read") as caught:
        oauth_client(secret, public, connection_arn=CONNECTION)

    assert CLIENT_SECRET not in str(caught.value)


def test_describe_connection_fills_the_endpoint_method_and_parameters_the_secret_lacks():
    secret = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    public = described(
        {
            "AuthorizationEndpoint": ENDPOINT,
            "HttpMethod": "put",
            "OAuthHttpParameters": {
                "BodyParameters": [{"Key": "audience", "Value": "crm-api"}],
                "HeaderParameters": [{"Key": "X-Secret", "IsValueSecret": True}],
            },
        }
    )["AuthParameters"]

    client = oauth_client(secret, public, connection_arn=CONNECTION)

    assert (client.endpoint, client.method) == (ENDPOINT, "PUT")
    assert (client.body, client.headers) == ({"audience": "crm-api"}, {})


def test_a_secrets_parameter_overrides_describe_connections_of_the_same_key():
    secret = {
        **EVENTBRIDGE_SECRET,
        "oauth_http_parameters": {"body_parameters": [{"key": "audience", "value": "new"}]},
    }

    client = oauth_client(secret, described()["AuthParameters"], connection_arn=CONNECTION)

    assert client.body == {"audience": "new"}
    assert client.headers == {"X-Tenant": "acme"}


def test_an_oauth_connection_without_a_token_endpoint_is_a_configuration_error():
    secret = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}

    with pytest.raises(ConfigurationError, match="token endpoint"):
        oauth_client(secret, {}, connection_arn=CONNECTION)


def test_a_token_method_other_than_get_post_or_put_is_a_configuration_error():
    secret = {**EVENTBRIDGE_SECRET, "http_method": "DELETE"}

    with pytest.raises(ConfigurationError, match="HttpMethod 'DELETE'"):
        oauth_client(secret, {}, connection_arn=CONNECTION)


def test_invocation_parameters_of_an_oauth_connection_go_on_every_call():
    secret = {
        **MOTO_SECRET,
        "invocation_http_parameters": {
            "header_parameters": [{"key": "X-Source", "value": "dlq-replay"}],
            "query_string_parameters": [
                {"key": "sig", "value": "invocation-secret", "is_value_secret": True}
            ],
        },
    }

    authorization = parse_authorization(described(), secret, connection_arn=CONNECTION)

    assert (authorization.headers, authorization.query) == (
        {"X-Source": "dlq-replay"},
        {"sig": "invocation-secret"},
    )
    assert {CLIENT_SECRET, ASSERTION, "invocation-secret"} <= authorization.secrets


def test_an_api_key_connection_takes_its_name_publicly_and_its_value_from_the_secret():
    public = {
        "ConnectionArn": CONNECTION,
        "AuthorizationType": "API_KEY",
        "AuthParameters": {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key"}},
    }

    authorization = parse_authorization(
        public, {"api_key_value": "the-key-value"}, connection_arn=CONNECTION
    )

    assert authorization.headers == {"x-api-key": "the-key-value"}
    assert "the-key-value" in authorization.secrets


def test_a_basic_connection_reads_the_moto_layout():
    public = {"ConnectionArn": CONNECTION, "AuthorizationType": "BASIC", "AuthParameters": {}}

    authorization = parse_authorization(
        public, {"username": "crm", "password": "pw-value"}, connection_arn=CONNECTION
    )

    assert authorization.headers == {
        "Authorization": "Basic " + base64.b64encode(b"crm:pw-value").decode()
    }


def test_an_unknown_authorization_type_is_a_configuration_error():
    public = {"ConnectionArn": CONNECTION, "AuthorizationType": "DIGEST"}

    with pytest.raises(ConfigurationError, match="REPLAY_HTTP_TARGETS"):
        parse_authorization(public, {}, connection_arn=CONNECTION)


def test_no_repr_of_a_connections_settings_shows_a_secret():
    authorization = parse_authorization(described(), EVENTBRIDGE_SECRET, connection_arn=CONNECTION)
    credentials = Credentials(
        headers={"Authorization": "Bearer the-token-value"},
        token="the-token-value",
        secrets=authorization.secrets | {"the-token-value"},
    )

    shown = repr(authorization) + repr(authorization.oauth) + repr(credentials)

    for secret in (CLIENT_SECRET, ASSERTION, "the-token-value"):
        assert secret not in shown
    assert CLIENT_ID in shown  # the client id is not a secret, and helps an operator


def test_credentials_redact_every_secret_an_endpoint_echoes():
    credentials = Credentials(secrets=frozenset({"the-token-value", "abc"}))

    text = credentials.redact("invalid token the-token-value (abc)")

    assert text == "invalid token [redacted] (abc)"  # values under 4 characters stay


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"access_token": "t-1", "token_type": "Bearer", "expires_in": 3600}', ("t-1", 3600.0)),
        (b'{"access_token": "t-1", "expires_in": "120"}', ("t-1", 120.0)),
        (b'{"access_token": "t-1"}', ("t-1", None)),
        (b'{"access_token": "t-1", "expires_in": 0}', ("t-1", None)),
        (b"access_token=t-1&expires_in=60&token_type=bearer", ("t-1", 60.0)),
        (b'{"token_type": "Bearer"}', None),
        (b'{"access_token": ""}', None),
        (b"[]", None),
        (b"<html>gateway</html>", None),
    ],
)
def test_a_token_answer_gives_the_token_and_its_lifetime(content, expected):
    assert token_answer(content) == expected
