"""API destinations and their connections: what a call must carry for the endpoint to take it.

An API destination (`DescribeApiDestination`) is an endpoint, a method and a rate limit
plus a connection (`DescribeConnection`) whose credentials EventBridge keeps in a Secrets
Manager secret named `events!connection/<name>/<uuid>`. `Connections` reads both (what
the secret's layouts mean is `connection_auth`'s) and turns them into the headers and
query values of one call: an API key, Basic credentials or an OAuth client-credentials
bearer token, plus the connection's `InvocationHttpParameters`. Both are kept as facts of
their ARNs (`TargetFacts`), so an operator's redrive reads them again.

The OAuth token is kept per connection until it expires (less a margin), and fetched again
when the connection's settings change or the endpoint refuses it: EventBridge "refreshes
OAuth tokens when a 401 or 407 response is returned" (user guide, "Authorization methods
for connections"). No secret reaches a log, an error message or a `repr`: every value
read from a connection's secret, and every token, joins the process's scrubber
(`dlq.redact`), which the logs and the targets' error texts go through.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import requests

from dlq.errors import ConfigurationError
from dlq.redact import remember
from dlq.retryafter import parse_retry_after
from dlq.targets.arn import Arn
from dlq.targets.connection_auth import (
    Authorization,
    Credentials,
    OAuthClient,
    parse_authorization,
)
from dlq.targets.errors import TargetForbidden, TargetThrottled, TargetUnavailable
from dlq.targets.facts import FACTS_TTL_SECONDS, TargetFacts

log = logging.getLogger(__name__)

#: An OAuth token is renewed this long before it expires (at most a tenth of its life).
TOKEN_MARGIN_SECONDS = 60.0
#: How long a token is kept when its endpoint does not say (`expires_in` is optional).
UNSTATED_TOKEN_SECONDS = FACTS_TTL_SECONDS

ClientFor = Callable[[str, str], Any]


@dataclass(frozen=True, slots=True)
class Destination:
    """What DescribeApiDestination says (no secrets)."""

    arn: str
    endpoint: str
    method: str
    connection_arn: str
    rate_per_second: int | None = None


@dataclass(frozen=True, slots=True)
class _Token:
    client: OAuthClient
    value: str = field(repr=False)
    expires_at: float


class Connections:
    """Destinations, connections and OAuth tokens, read once and kept for a while.

    `client_for(service, region)` is a boto3 client (`events`, `secretsmanager`). One per
    worker process, shared by its threads; a connection's token is fetched by one thread
    at a time.
    """

    def __init__(
        self,
        client_for: ClientFor,
        http: requests.Session,
        *,
        timeout: tuple[float, float],
        facts: TargetFacts | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_for = client_for
        self._http = http
        self._timeout = timeout
        self._clock = clock
        self._facts = facts if facts is not None else TargetFacts(clock=clock)
        self._tokens: dict[str, _Token] = {}
        self._token_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def destination(self, arn: str) -> Destination:
        return self._facts.get(arn, "api-destination", lambda: self._describe(arn))

    def credentials(self, connection_arn: str) -> Credentials:
        """What a call through the connection carries now (a token fetched if due)."""
        authorization = self._authorization(connection_arn)
        if authorization.oauth is None:
            return Credentials(
                headers=authorization.headers,
                query=authorization.query,
                secrets=authorization.secrets,
            )
        token = self._token(connection_arn, authorization.oauth)
        return Credentials(
            headers={**authorization.headers, "Authorization": f"Bearer {token.value}"},
            query=authorization.query,
            expires_at=token.expires_at,
            token=token.value,
            secrets=authorization.secrets | {token.value},
        )

    def refresh(self, connection_arn: str, refused: Credentials) -> Credentials:
        """Credentials with a new token, after the endpoint refused `refused`'s token."""
        with self._token_lock(connection_arn):
            kept = self._tokens.get(connection_arn)
            if kept is not None and kept.value == refused.token:  # not renewed by another thread
                del self._tokens[connection_arn]
        log.warning(
            "the endpoint refused the OAuth token of %s; fetching a new one", connection_arn
        )
        return self.credentials(connection_arn)

    def forget_target(self, arn: str) -> None:
        """Drop what is kept of an API destination and its connection (after a redrive)."""
        destination = self._facts.get(arn, "api-destination", lambda: None)
        if destination is not None:
            self.forget(destination.connection_arn)

    def forget(self, connection_arn: str) -> None:
        """Drop a connection's settings and token (refused): read them again next time."""
        self._facts.forget(connection_arn)
        with self._token_lock(connection_arn):
            self._tokens.pop(connection_arn, None)

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

    def _authorization(self, connection_arn: str) -> Authorization:
        return self._facts.get(connection_arn, "connection", lambda: self._read(connection_arn))

    def _read(self, connection_arn: str) -> Authorization:
        parsed = Arn.parse(connection_arn)
        assert parsed is not None
        name = parsed.resource.split("/")[1]
        described = self._client_for("events", parsed.region).describe_connection(Name=name)
        secret: Any = {}
        if described.get("SecretArn"):
            secrets = self._client_for("secretsmanager", parsed.region)
            answer = secrets.get_secret_value(SecretId=described["SecretArn"])
            try:
                secret = json.loads(answer.get("SecretString") or "{}")
            except ValueError:
                raise ConfigurationError(
                    f"the secret of connection {connection_arn} is not JSON; re-enter the "
                    "connection's credentials (UpdateConnection), then redrive"
                ) from None
        authorization = parse_authorization(
            described, secret if isinstance(secret, Mapping) else {}, connection_arn=connection_arn
        )
        remember(*authorization.secrets)
        return authorization

    def _token_lock(self, connection_arn: str) -> threading.Lock:
        with self._lock:
            return self._token_locks.setdefault(connection_arn, threading.Lock())

    def _token(self, connection_arn: str, client: OAuthClient) -> _Token:
        with self._token_lock(connection_arn):
            kept = self._tokens.get(connection_arn)
            if kept is not None and kept.client == client and self._clock() < kept.expires_at:
                return kept
            try:
                token = self._fetch(connection_arn, client)
            except TargetForbidden:
                # Refused with settings up to FACTS_TTL_SECONDS old: read them again next time.
                self._facts.forget(connection_arn)
                raise
            self._tokens[connection_arn] = token
            return token

    def _fetch(self, connection_arn: str, client: OAuthClient) -> _Token:
        """One client-credentials token request (RFC 6749 section 4.4), Basic client auth."""
        pair = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()
        remember(pair)
        form = {"grant_type": "client_credentials", **client.body}
        in_query = client.method == "GET"
        what = f"the OAuth token endpoint of {connection_arn}"
        started = self._clock()
        try:
            response = self._http.request(
                client.method,
                client.endpoint,
                params={**client.query, **(form if in_query else {})},
                data=None if in_query else form,
                headers={
                    "Authorization": f"Basic {pair}",
                    "Accept": "application/json",
                    **client.headers,
                },
                timeout=self._timeout,
                allow_redirects=False,
            )
        # requests' messages may quote the URL and its query: only the kind is kept.
        except requests.RequestException as error:
            raise TargetUnavailable(
                f"{what} could not be reached ({type(error).__name__}); retrying later",
                target_arn=connection_arn,
                code="OAuthUnavailable",
            ) from None
        with response:
            status = response.status_code
            code = f"OAuthHTTP{status}"
            # The answer's body is never quoted: it may hold a token or echo the client.
            if status == 429:
                raise TargetThrottled(
                    f"{what} throttled us (HTTP 429); retrying later",
                    target_arn=connection_arn,
                    code=code,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )
            if status >= 500 or status in (408, 425):
                raise TargetUnavailable(
                    f"{what} answered HTTP {status}; retrying later",
                    target_arn=connection_arn,
                    code=code,
                    retry_after=parse_retry_after(response.headers.get("Retry-After")),
                )
            if status >= 300 or status < 200:
                raise TargetForbidden(
                    f"{what} refused the client (HTTP {status}); fix the connection's OAuth "
                    "client id, secret or endpoint (UpdateConnection), then redrive",
                    target_arn=connection_arn,
                    code=code,
                )
            issued = token_answer(response.content)
        if issued is None:
            raise TargetUnavailable(
                f"{what} answered HTTP {status} without an access_token; retrying later",
                target_arn=connection_arn,
                code="OAuthBadResponse",
            )
        value, lifetime = issued
        remember(value)
        lifetime = UNSTATED_TOKEN_SECONDS if lifetime is None else lifetime
        margin = min(TOKEN_MARGIN_SECONDS, lifetime / 10)
        log.info("%s issued a token, valid %.0f s", what, lifetime)
        return _Token(client=client, value=value, expires_at=started + lifetime - margin)


def token_answer(content: bytes) -> tuple[str, float | None] | None:
    """The access token and its lifetime in seconds (None: unstated) from a token answer.

    JSON as RFC 6749 section 5.1 has it; a form-encoded answer (which some older servers
    send) is read too. None when there is no token.
    """
    answer: Any
    try:
        answer = json.loads(content)
    except ValueError:
        answer = dict(parse_qsl(content.decode("utf-8", "replace")))
    if not isinstance(answer, Mapping):
        return None
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        return None
    try:
        lifetime: float | None = float(answer["expires_in"])
    except (KeyError, TypeError, ValueError):
        lifetime = None
    if lifetime is not None and lifetime <= 0:
        lifetime = None
    return token, lifetime
