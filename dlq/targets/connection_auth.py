"""What a connection's settings and secret say a call must carry, from every layout.

An API destination (`DescribeApiDestination`) is an endpoint, a method and a rate limit
plus a connection (`DescribeConnection`) whose credentials EventBridge keeps in a Secrets
Manager secret named `events!connection/<name>/<uuid>`. `Connections` reads both and turns
them into the headers and query values of one call: an API key, Basic credentials or an
OAuth client-credentials bearer token, plus the connection's `InvocationHttpParameters`.

Where each value comes from:

- DescribeConnection is documented (botocore's `events` model,
  `ConnectionAuthResponseParameters`): `OAuthParameters{ClientParameters{ClientID},
  AuthorizationEndpoint, HttpMethod (GET|POST|PUT), OAuthHttpParameters{HeaderParameters,
  QueryStringParameters, BodyParameters: [{Key, Value, IsValueSecret}]}}`, and
  `InvocationHttpParameters` alike. It shows no client secret, password or API key value,
  nor the `Value` of a parameter marked secret.
- The secret's layout is not documented: the user guide ("Connections for HTTP endpoint
  targets") only says the authorization parameters are stored there. Three are read:
  EventBridge's own, as code reading real connection secrets has it
  (guardian/support-service-lambdas, handlers/salesforce-disaster-recovery/src/services/
  salesforce.ts): flat snake_case `client_id`, `client_secret`, `authorization_endpoint`,
  `oauth_http_parameters{body_parameters: [{key, value}]}`; moto's (5.x,
  `moto/events/models.py`, `Connection.__init__`): every section of the request merged into
  one and snake-cased, `client_parameters{client_id, client_secret}`,
  `authorization_endpoint`, `http_method`, `o_auth_http_parameters`,
  `invocation_http_parameters`, `api_key_name`/`api_key_value`, `username`/`password`; and
  the API's own shape (`OAuthParameters{ClientParameters{ClientID, ClientSecret}, ...}`).
  Names are compared folded (case and underscores ignored): `ClientID`, `client_id` and
  `client_i_d` are one name, so are `OAuthHttpParameters` and `o_auth_http_parameters`.
- The secret wins. DescribeConnection only fills what the secret lacks (the client id, the
  token endpoint, a parameter, the API key's name); secret values come from the secret only.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dlq.errors import ConfigurationError
from dlq.redact import REDACTED

#: The methods a connection may use at its token endpoint (`ConnectionOAuthHttpMethod`).
TOKEN_METHODS = frozenset({"GET", "POST", "PUT"})


@dataclass(frozen=True, slots=True)
class Credentials:
    """What one call adds: headers and query values. Holds secrets, so its `repr` shows none.

    `token` is the OAuth bearer token, if the connection uses one; `secrets` are the values
    no text may show (`redact` takes them out).
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    expires_at: float = float("inf")
    token: str | None = None
    secrets: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        names = sorted(self.headers) + sorted(self.query)
        return f"Credentials(<{len(names)} values redacted: {', '.join(names)}>)"

    def redact(self, text: str) -> str:
        """`text` without any of the secret values (an endpoint may echo them back)."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, REDACTED)
        return text


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """How to ask a connection's token endpoint for a client-credentials token."""

    endpoint: str
    method: str
    client_id: str
    client_secret: str = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    query: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: Parameter values marked `IsValueSecret`.
    marked_secret: frozenset[str] = field(default=frozenset(), repr=False)


@dataclass(frozen=True, slots=True)
class Authorization:
    """A connection's settings, read from DescribeConnection and its secret.

    `headers` and `query` go on every call (the API key or Basic credentials, the
    InvocationHttpParameters); `oauth`, if set, says how to get the bearer token.
    """

    kind: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    query: Mapping[str, str] = field(default_factory=dict, repr=False)
    oauth: OAuthClient | None = None
    secrets: frozenset[str] = field(default=frozenset(), repr=False)


def parse_authorization(
    described: Mapping[str, Any], secret: Mapping[str, Any], *, connection_arn: str
) -> Authorization:
    """A connection's settings from DescribeConnection and its secret (any known layout)."""
    kind = str(described.get("AuthorizationType", ""))
    public = _section(described, "AuthParameters")
    invocation = _parameters([secret], [public], "InvocationHttpParameters")
    headers, query, secrets = invocation.headers, invocation.query, invocation.secrets
    if kind == "API_KEY":
        scopes = _scopes(secret, public, "ApiKeyAuthParameters")
        name = _required(scopes.both, "ApiKeyName", connection_arn=connection_arn)
        value = _required(scopes.secret, "ApiKeyValue", connection_arn=connection_arn)
        return Authorization(kind, {**headers, name: value}, query, secrets=secrets | {value})
    if kind == "BASIC":
        scopes = _scopes(secret, public, "BasicAuthParameters")
        user = _required(scopes.both, "Username", connection_arn=connection_arn)
        password = _required(scopes.secret, "Password", connection_arn=connection_arn)
        basic = base64.b64encode(f"{user}:{password}".encode()).decode()
        return Authorization(
            kind,
            {**headers, "Authorization": f"Basic {basic}"},
            query,
            secrets=secrets | {password, basic},
        )
    if kind == "OAUTH_CLIENT_CREDENTIALS":
        client = oauth_client(secret, public, connection_arn=connection_arn)
        return Authorization(
            kind,
            headers,
            query,
            oauth=client,
            secrets=secrets | {client.client_secret} | client.marked_secret,
        )
    raise ConfigurationError(
        f"connection {connection_arn} uses authorization {kind!r}, which this service cannot "
        "reproduce; route the destination with REPLAY_HTTP_TARGETS on the replay workers "
        "instead (restart them with it), then redrive"
    )


def oauth_client(
    secret: Mapping[str, Any], public: Mapping[str, Any], *, connection_arn: str
) -> OAuthClient:
    """The token request of an OAuth connection: the secret's values, DescribeConnection's
    (`AuthParameters`) filling only what the secret lacks, never the client secret."""
    scopes = _scopes(secret, public, "OAuthParameters")
    client_id = _first(scopes.secret, ("ClientParameters", "ClientID"), ("ClientID",)) or _first(
        scopes.public, ("ClientParameters", "ClientID"), ("ClientID",)
    )
    client_secret = _first(scopes.secret, ("ClientParameters", "ClientSecret"), ("ClientSecret",))
    endpoint = _first(scopes.both, ("AuthorizationEndpoint",))
    missing = [
        what
        for what, value in (
            ("client id", client_id),
            ("client secret", client_secret),
            ("token endpoint (AuthorizationEndpoint)", endpoint),
        )
        if not value
    ]
    if missing or client_id is None or client_secret is None or endpoint is None:
        raise ConfigurationError(
            f"connection {connection_arn}: its OAuth {', '.join(missing)} could not be read "
            "from its secret or DescribeConnection; check secretsmanager:GetSecretValue on "
            "events!connection/* for the workers, or re-enter the connection's credentials "
            "(UpdateConnection), then redrive"
        )
    method = (_first(scopes.both, ("HttpMethod",)) or "POST").upper()
    if method not in TOKEN_METHODS:
        raise ConfigurationError(
            f"connection {connection_arn}: its OAuth HttpMethod {method!r} is not one of "
            f"{', '.join(sorted(TOKEN_METHODS))}; fix the connection, then redrive"
        )
    extra = _parameters(scopes.secret, scopes.public, "OAuthHttpParameters")
    return OAuthClient(
        endpoint=endpoint,
        method=method,
        client_id=client_id,
        client_secret=client_secret,
        headers=extra.headers,
        query=extra.query,
        body=extra.body,
        marked_secret=extra.secrets,
    )


@dataclass(frozen=True, slots=True)
class _Scopes:
    """Where to look for a section's values: in the secret, then in DescribeConnection."""

    secret: list[Mapping[str, Any]]
    public: list[Mapping[str, Any]]

    @property
    def both(self) -> list[Mapping[str, Any]]:
        return self.secret + self.public


def _scopes(secret: Mapping[str, Any], public: Mapping[str, Any], section: str) -> _Scopes:
    """The section (`OAuthParameters`...) first, then the top level, where moto and
    EventBridge's own secret put its values."""
    return _Scopes(
        secret=[_section(secret, section), secret], public=[_section(public, section), public]
    )


def _fold(name: str) -> str:
    return name.replace("_", "").lower()


def _get(source: Mapping[str, Any], name: str) -> Any:
    folded = _fold(name)
    for key, value in source.items():
        if _fold(str(key)) == folded:
            return value
    return None


def _section(source: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = _get(source, name)
    return value if isinstance(value, Mapping) else {}


def _first(scopes: Iterable[Mapping[str, Any]], *paths: tuple[str, ...]) -> str | None:
    """The first non-empty string at one of `paths`, scope by scope."""
    for scope in scopes:
        for path in paths:
            value: Any = scope
            for name in path:
                value = _get(value, name) if isinstance(value, Mapping) else None
            if isinstance(value, str) and value:
                return value
    return None


def _required(scopes: list[Mapping[str, Any]], name: str, *, connection_arn: str) -> str:
    value = _first(scopes, (name,))
    if value is None:
        raise ConfigurationError(
            f"connection {connection_arn}: its {name} could not be read from its secret or "
            "DescribeConnection; check secretsmanager:GetSecretValue on events!connection/* "
            "for the workers"
        )
    return value


def _entries(value: Any) -> list[tuple[str, str, bool]]:
    """`[{Key, Value, IsValueSecret}, ...]` (or a plain mapping) as (key, value, secret)."""
    if isinstance(value, Mapping):
        return [(str(k), str(v), False) for k, v in value.items() if v is not None]
    entries: list[tuple[str, str, bool]] = []
    for pair in value if isinstance(value, list) else []:
        if not isinstance(pair, Mapping):
            continue
        key, raw = _get(pair, "Key"), _get(pair, "Value")
        if key is None or raw is None:  # DescribeConnection omits a secret parameter's value
            continue
        flagged = _get(pair, "IsValueSecret")
        entries.append((str(key), str(raw), flagged is True or str(flagged).lower() == "true"))
    return entries


@dataclass(frozen=True, slots=True)
class _HttpParameters:
    """A `ConnectionHttpParameters` section, and the values in it marked secret."""

    headers: dict[str, str]
    query: dict[str, str]
    body: dict[str, str]
    secrets: frozenset[str]


def _parameters(
    secret_scopes: list[Mapping[str, Any]], public_scopes: list[Mapping[str, Any]], section: str
) -> _HttpParameters:
    """A `ConnectionHttpParameters` section's values merged by key, the secret's over
    DescribeConnection's (which omits the value of a parameter marked secret)."""
    merged: dict[str, dict[str, str]] = {
        "HeaderParameters": {},
        "QueryStringParameters": {},
        "BodyParameters": {},
    }
    secrets: set[str] = set()
    # Later scopes override earlier ones: DescribeConnection first, the secret last.
    for scope in [*reversed(public_scopes), *reversed(secret_scopes)]:
        parameters = _section(scope, section)
        for kind, values in merged.items():
            for key, value, flagged in _entries(_get(parameters, kind)):
                values[key] = value
                if flagged:
                    secrets.add(value)
    return _HttpParameters(
        headers=merged["HeaderParameters"],
        query=merged["QueryStringParameters"],
        body=merged["BodyParameters"],
        secrets=frozenset(secrets),
    )
