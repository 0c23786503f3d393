"""The Genesys OAuth side: the client-credentials token, shared by the fleet through Redis.

`POST https://login.<domain>/oauth/token` with Basic auth and
`grant_type=client_credentials`, no scope (the OAuth client's roles decide); there is no
refresh token, so an expired or refused token is simply fetched again. Source: Genesys
Cloud developer center, "Client Credentials Grant"
(https://developer.genesys.cloud/authorization/platform-auth/use-client-credentials).

A refused login re-reads the client id and secret when they come from a secret store
(`GenesysCredentials`) and tries once more if they changed: a rotated secret is picked up
without a restart. Every token issued or shared joins the process's scrubber.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis
from pydantic import SecretStr
from redis.exceptions import LockError, RedisError

from dlq.errors import RetryLater
from dlq.fleet import digest, fleet_key, lua
from dlq.genesys.credentials import GenesysCredentials
from dlq.genesys.errors import GenesysBadResponse, GenesysCredentialsError
from dlq.genesys.responses import error_details, status_error
from dlq.genesys.transport import Request, Transport
from dlq.redact import remember
from dlq.redisclient import decoded
from dlq.settings import Settings

log = logging.getLogger(__name__)

TOKEN_PATH = "/oauth/token"  # noqa: S105 (a URL path, not a password)


def _shared(cached: bytes | str) -> SecretStr:
    """A token another process fetched: scrubbed from this process's texts too."""
    token = decoded(cached)
    remember(token)
    return SecretStr(token)


def fetch_token(
    settings: Settings, transport: Transport, credentials: GenesysCredentials | None = None
) -> IssuedToken:
    """Ask the login host for a client-credentials token (no scope: roles decide).

    `credentials` default to the settings' own. When the login refuses the client and the
    secret store holds other credentials than the refused ones, one more try uses them.
    """
    credentials = credentials or GenesysCredentials.from_settings(settings)
    credentials.require(purpose="the Genesys client")
    used = credentials.pair()
    try:
        return _login(settings, transport, used, credentials.names)
    except GenesysCredentialsError:
        if not credentials.refresh(used):
            raise
    log.info("genesys: the login refused the client; trying the credentials just read")
    return _login(settings, transport, credentials.pair(), credentials.names)


def _login(
    settings: Settings, transport: Transport, client: tuple[str, str], names: str
) -> IssuedToken:
    """One token request with `client` (id, secret)."""
    basic = base64.b64encode(f"{client[0]}:{client[1]}".encode()).decode()
    remember(client[1], basic)
    what = f"POST {TOKEN_PATH}"
    response = transport.send(
        Request(
            "POST",
            f"{settings.genesys_login_url}{TOKEN_PATH}",
            what,
            timeout=settings.genesys_timeouts,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
    )
    if response.status_code == 200:
        try:
            body = response.json()
            token, expires_in = body["access_token"], float(body["expires_in"])
        except (ValueError, KeyError, TypeError):
            raise GenesysBadResponse(
                f"{what} answered 200 without access_token/expires_in; retry later",
                status=200,
                correlation_id=response.headers.get("inin-correlation-id"),
            ) from None
        if not isinstance(token, str) or not token:
            raise GenesysBadResponse(f"{what} answered an empty access_token", status=200)
        remember(token)
        log.info("genesys: new access token, valid %.0f s", expires_in)
        return IssuedToken(SecretStr(token), expires_in)
    code, correlation, text = error_details(response)
    status = response.status_code
    if status in (400, 401, 403):
        raise GenesysCredentialsError(
            f"the login host {settings.genesys_login_url} refused the OAuth client "
            f"({status} {code}: {text}; correlation id {correlation}): check "
            f"{names}, that the client uses the "
            "client-credentials grant, and that GENESYS_REGION is the client's region, in the "
            "environment of the process that logged this (the workers, or doctor and "
            "`inspect --genesys`, each reading its own)",
            status=status,
            code=code,
            correlation_id=correlation,
        )
    raise status_error(response, what)


@dataclass(frozen=True, repr=False)
class IssuedToken:
    """An access token as the login host issued it, with its lifetime in seconds."""

    access_token: SecretStr
    expires_in: float

    def usable_for(self) -> float:
        """Seconds the token may be used: its lifetime less a margin for clocks and latency."""
        margin = min(300.0, self.expires_in * 0.1)
        return max(self.expires_in - margin, 0.0)

    def __repr__(self) -> str:
        return f"IssuedToken(access_token='**********', expires_in={self.expires_in})"


class TokenProvider(Protocol):
    """Where the client gets its bearer token, and reports one the API refused."""

    def get(self) -> SecretStr:
        """A token believed valid now; fetches a new one when there is none."""
        ...

    def invalidate(self, token: SecretStr) -> None:
        """Forget `token` if it is still the current one (the API answered 401 to it)."""
        ...


class TokenCache:
    """One access token per OAuth client, shared through Redis, refreshed by one process.

    `get()` reads the shared token; when there is none, the process that wins a short
    redis-py `Lock` fetches it and the others poll until it appears, so a fleet restart
    makes one token request. When Redis is unreachable the process falls back to a
    token of its own, kept in memory.
    """

    def __init__(
        self,
        redis_client: redis.Redis | None,
        client_id: str,
        fetch: Callable[[], IssuedToken],
        *,
        lock_timeout: float = 30.0,
        wait_timeout: float = 30.0,
        poll_interval: float = 0.05,
        redis_retry_after: float = 5.0,
    ) -> None:
        """`lock_timeout` must outlast one token request (connect + read timeouts)."""
        self._redis = redis_client
        self._fetch = fetch
        self.key = fleet_key("genesys", "token", digest(client_id))
        self._lock_key = f"{self.key}:refresh"
        self._lock_timeout = lock_timeout
        self._wait_timeout = wait_timeout
        self._poll_interval = poll_interval
        self._redis_retry_after = redis_retry_after
        self._redis_down_until = 0.0
        self._local: tuple[SecretStr, float] | None = None
        self._local_lock = threading.Lock()
        self._compare_and_delete = (
            redis_client.register_script(lua("compare_and_delete")) if redis_client else None
        )

    def __repr__(self) -> str:
        return f"TokenCache(key={self.key!r})"

    def get(self) -> SecretStr:
        """The shared token, fetching it (once for the whole fleet) when there is none."""
        if self._redis is not None and time.monotonic() >= self._redis_down_until:
            try:
                return self._get_shared(self._redis)
            except RedisError as exc:
                # Redis down must not stop redelivery: each process fetches its own token.
                self._redis_down_until = time.monotonic() + self._redis_retry_after
                log.warning("token cache: Redis unreachable, using a per-process token: %s", exc)
        return self._get_local()

    def invalidate(self, token: SecretStr) -> None:
        """Drop `token` only if it is still current, so N callers seeing one 401 refresh once."""
        with self._local_lock:
            if self._local is not None and self._local[0] == token:
                self._local = None
        if self._compare_and_delete is None or time.monotonic() < self._redis_down_until:
            return
        try:
            self._compare_and_delete(keys=[self.key], args=[token.get_secret_value()])
        except RedisError as exc:
            self._redis_down_until = time.monotonic() + self._redis_retry_after
            log.warning("token cache: could not drop the refused token in Redis: %s", exc)

    def _get_shared(self, client: redis.Redis) -> SecretStr:
        deadline = time.monotonic() + self._wait_timeout
        lock = client.lock(self._lock_key, timeout=self._lock_timeout, blocking=False)
        while True:
            cached = client.get(self.key)
            if cached:
                return _shared(cached)
            if lock.acquire(blocking=False):
                try:
                    # Double check: the previous holder may have stored it just now.
                    cached = client.get(self.key)
                    if cached:
                        return _shared(cached)
                    issued = self._fetch()
                    self._remember_locally(issued)
                    ttl_ms = max(int(issued.usable_for() * 1000), 1)
                    client.set(self.key, issued.access_token.get_secret_value(), px=ttl_ms)
                    return issued.access_token
                finally:
                    # Expired while fetching: harmless, the token is stored either way.
                    with contextlib.suppress(LockError):
                        lock.release()
            if time.monotonic() >= deadline:
                raise RetryLater(
                    "another process has held the Genesys token refresh lock for "
                    f"{self._wait_timeout:.0f} s without storing a token; retry shortly",
                    retry_after=1.0,
                )
            time.sleep(self._poll_interval)

    def _get_local(self) -> SecretStr:
        with self._local_lock:
            if self._local is not None and time.monotonic() < self._local[1]:
                return self._local[0]
            issued = self._fetch()
            self._local = (issued.access_token, time.monotonic() + issued.usable_for())
            return issued.access_token

    def _remember_locally(self, issued: IssuedToken) -> None:
        # Only consulted if Redis fails later; saves a second fetch in that case.
        with self._local_lock:
            self._local = (issued.access_token, time.monotonic() + issued.usable_for())
