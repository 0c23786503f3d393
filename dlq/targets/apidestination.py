"""API destination targets: the HTTP call EventBridge makes, with the connection's auth.

An API destination (`arn:aws:events:<region>:<account>:api-destination/<name>/<id>`) is
an endpoint, a method and a rate limit (`DescribeApiDestination`) plus a connection
(`DescribeConnection`) whose credentials EventBridge keeps in a Secrets Manager secret
named `events!connection/<name>/...`. The call is rebuilt the way EventBridge makes it:
the destination's method and endpoint (`*` in the endpoint filled from the rule target's
`HttpParameters.PathParameterValues`), the target's and the connection's header and
query parameters, and the connection's authorization. The destination's
`InvocationRateLimitPerSecond` is honoured for the whole fleet through Redis.

EventBridge User Guide, "API destinations":
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-api-destinations.html
The layout of the connection's secret is not documented by AWS; it is read leniently (the
snake_case keys EventBridge and moto store, or the camel-case names of the API), and the
non-secret halves come from DescribeConnection.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from dlq.errors import BudgetWait, ConfigurationError
from dlq.memo import Memo
from dlq.targets.arn import Arn
from dlq.targets.delivery import Replay
from dlq.targets.errors import TargetForbidden, TargetUnavailable
from dlq.targets.http import call, replay_headers
from dlq.targets.kind import SendContext, TargetKind

#: How long a destination's and a connection's settings (and secret) are trusted.
REMEMBER_SECONDS = 300.0
#: An OAuth token is renewed this long before it expires.
TOKEN_MARGIN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Destination:
    """What DescribeApiDestination says (no secrets)."""

    arn: str
    endpoint: str
    method: str
    connection_arn: str
    rate_per_second: int | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    """A connection's authorization: headers and query values to add. Holds secrets, so
    its `repr` shows none of them."""

    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    expires_at: float = float("inf")

    def __repr__(self) -> str:
        names = sorted(self.headers) + sorted(self.query)
        return f"Credentials(<{len(names)} values redacted: {', '.join(names)}>)"


ClientFor = Callable[[str, str], Any]


class Connections:
    """Destinations and connection credentials, read once and kept for a few minutes.

    `client_for(service, region)` is a boto3 client (`events`, `secretsmanager`). One per
    worker process, shared by its threads.
    """

    def __init__(
        self, client_for: ClientFor, http: requests.Session, *, timeout: tuple[float, float]
    ) -> None:
        self._client_for = client_for
        self._http = http
        self._timeout = timeout
        self._destinations: Memo[str, Destination] = Memo(REMEMBER_SECONDS)
        self._credentials: Memo[str, Credentials] = Memo(
            None, fresh=lambda kept: time.monotonic() < kept.expires_at
        )

    def destination(self, arn: str) -> Destination:
        return self._destinations.get(arn, lambda: self._describe(arn))

    def credentials(self, connection_arn: str) -> Credentials:
        return self._credentials.get(connection_arn, lambda: self._read(connection_arn))

    def _describe(self, arn: str) -> Destination:
        parsed = Arn.parse(arn)
        assert parsed is not None  # routing accepted it
        name = parsed.resource.split("/")[1]
        described = self._client_for("events", parsed.region).describe_api_destination(Name=name)
        return Destination(
            arn=arn,
            endpoint=str(described["InvocationEndpoint"]),
            method=str(described.get("HttpMethod", "POST")).upper(),
            connection_arn=str(described["ConnectionArn"]),
            rate_per_second=described.get("InvocationRateLimitPerSecond"),
        )

    def forget(self, connection_arn: str) -> None:
        """Drop a connection's credentials (the endpoint refused them): read them again."""
        self._credentials.forget(connection_arn)

    def _read(self, connection_arn: str) -> Credentials:
        parsed = Arn.parse(connection_arn)
        assert parsed is not None
        name = parsed.resource.split("/")[1]
        events = self._client_for("events", parsed.region)
        described = events.describe_connection(Name=name)
        secret_arn = described.get("SecretArn")
        secret: dict[str, Any] = {}
        if secret_arn:
            secrets = self._client_for("secretsmanager", parsed.region)
            raw = secrets.get_secret_value(SecretId=secret_arn).get("SecretString") or "{}"
            secret = _snake(json.loads(raw))
        public = _snake(described.get("AuthParameters") or {})
        kind = str(described.get("AuthorizationType", ""))
        extra_headers, extra_query = _invocation_parameters(secret, public)
        refresh = time.monotonic() + REMEMBER_SECONDS
        if kind == "API_KEY":
            key = _pick(secret, public, "api_key_auth_parameters", "api_key_name")
            value = _pick(secret, public, "api_key_auth_parameters", "api_key_value")
            headers = {**extra_headers, key: value}
        elif kind == "BASIC":
            user = _pick(secret, public, "basic_auth_parameters", "username")
            password = _pick(secret, public, "basic_auth_parameters", "password")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers = {**extra_headers, "Authorization": f"Basic {token}"}
        elif kind == "OAUTH_CLIENT_CREDENTIALS":
            bearer, expires_in = self._oauth_token(secret, public, connection_arn)
            headers = {**extra_headers, "Authorization": f"Bearer {bearer}"}
            refresh = min(refresh, time.monotonic() + expires_in - TOKEN_MARGIN_SECONDS)
        else:
            raise ConfigurationError(
                f"connection {connection_arn} uses authorization {kind!r}, which this service "
                "cannot reproduce; route the destination with REPLAY_HTTP_TARGETS on the replay "
                "workers instead (restart them with it), then redrive"
            )
        return Credentials(headers=headers, query=extra_query, expires_at=refresh)

    def _oauth_token(
        self, secret: Mapping[str, Any], public: Mapping[str, Any], connection_arn: str
    ) -> tuple[str, float]:
        oauth = {**_section(public, "o_auth_parameters"), **_section(secret, "o_auth_parameters")}
        merged = {**public, **secret, **oauth}
        client = {**_section(merged, "client_parameters")}
        client_id = client.get("client_id") or merged.get("client_id")
        client_secret = client.get("client_secret") or merged.get("client_secret")
        endpoint = merged.get("authorization_endpoint")
        method = str(merged.get("http_method", "POST")).upper()
        if not (client_id and client_secret and endpoint):
            raise ConfigurationError(
                f"connection {connection_arn}: its OAuth client id, secret or token endpoint "
                "could not be read; re-create the connection's credentials"
            )
        parameters = _section(merged, "o_auth_http_parameters")
        body = {"grant_type": "client_credentials", **_pairs(parameters, "body_parameters")}
        basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        try:
            response = self._http.request(
                method,
                str(endpoint),
                data=body if method != "GET" else None,
                params={**_pairs(parameters, "query_string_parameters")}
                | (body if method == "GET" else {}),
                headers={
                    "Authorization": f"Basic {basic}",
                    **_pairs(parameters, "header_parameters"),
                },
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as error:
            raise TargetUnavailable(
                f"the OAuth token endpoint of {connection_arn} could not be reached "
                f"({type(error).__name__}); retrying later",
                target_arn=connection_arn,
                code="OAuthUnavailable",
            ) from None
        with response:
            if response.status_code >= 500:
                raise TargetUnavailable(
                    f"the OAuth token endpoint of {connection_arn} answered HTTP "
                    f"{response.status_code}; retrying later",
                    target_arn=connection_arn,
                    code=f"OAuthHTTP{response.status_code}",
                )
            if response.status_code >= 300:
                raise TargetForbidden(
                    f"the OAuth token endpoint of {connection_arn} refused the client "
                    f"(HTTP {response.status_code}); fix the connection's credentials, then "
                    "redrive",
                    target_arn=connection_arn,
                    code=f"OAuthHTTP{response.status_code}",
                )
            answer = response.json()
        return str(answer["access_token"]), float(answer.get("expires_in", 3600))


def send(context: SendContext, replay: Replay) -> str:
    """Call the destination as EventBridge would; wait for the fleet's rate first."""
    connections = context.connections
    destination = connections.destination(replay.delivered_to)
    if destination.rate_per_second:
        wait = context.rate_gate(destination.arn, per_second=destination.rate_per_second)
        if wait > 0:
            raise BudgetWait(
                f"{destination.arn} allows {destination.rate_per_second} calls a second "
                "across the fleet; waiting for a slot",
                retry_after=wait,
            )
    credentials = connections.credentials(destination.connection_arn)
    http = replay.target.http if replay.target is not None else None
    url = _endpoint(destination.endpoint, http.path_values if http else ())
    headers = {**replay_headers(replay), **(http.headers if http else {}), **credentials.headers}
    query = {**(http.query if http else {}), **credentials.query}
    try:
        return call(
            context.http,
            destination.method,
            url,
            replay,
            headers=headers,
            params=query or None,
            timeout=context.settings.send_timeouts,
            fix=f"fix the API destination {destination.arn}",
        )
    except TargetForbidden:
        connections.forget(destination.connection_arn)  # rotated credentials: read again
        raise


def _endpoint(endpoint: str, path_values: tuple[str, ...]) -> str:
    """The endpoint with each `*` replaced by the next path parameter value, in order."""
    parts = endpoint.split("*")
    filled = [parts[0]]
    for index, part in enumerate(parts[1:]):
        filled.append(path_values[index] if index < len(path_values) else "")
        filled.append(part)
    return "".join(filled)


def _snake(value: Any) -> Any:
    """Keys in snake_case, whatever case the secret or the API used."""
    if isinstance(value, Mapping):
        return {_snake_key(str(k)): _snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value


def _snake_key(key: str) -> str:
    if "_" in key or key.islower():
        return key
    out = [key[0].lower()]
    for char in key[1:]:
        out.append(f"_{char.lower()}" if char.isupper() else char)
    return "".join(out)


def _section(source: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = source.get(name)
    return dict(value) if isinstance(value, Mapping) else {}


def _pick(secret: Mapping[str, Any], public: Mapping[str, Any], section: str, name: str) -> str:
    for source in (secret, _section(secret, section), public, _section(public, section)):
        value = source.get(name)
        if isinstance(value, str) and value:
            return value
    raise ConfigurationError(
        f"the connection's {name} could not be read from its secret or DescribeConnection; "
        "check secretsmanager:GetSecretValue on events!connection/* for the workers"
    )


def _pairs(section: Mapping[str, Any], name: str) -> dict[str, str]:
    """`[{"key": k, "value": v}, ...]` parameters as a dict."""
    return {
        str(pair.get("key")): str(pair.get("value"))
        for pair in section.get(name) or []
        if isinstance(pair, Mapping) and pair.get("key") is not None
    }


def _invocation_parameters(
    secret: Mapping[str, Any], public: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """The connection's InvocationHttpParameters: headers and query values for every call."""
    section = {
        **_section(public, "invocation_http_parameters"),
        **_section(secret, "invocation_http_parameters"),
    }
    return _pairs(section, "header_parameters"), _pairs(section, "query_string_parameters")


KIND = TargetKind(
    name="api-destination",
    label="EventBridge API destinations",
    arn_service="events",
    resource_prefix="api-destination/",
    send=send,
)
