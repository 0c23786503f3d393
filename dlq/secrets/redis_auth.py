"""The Redis password from a secret store, through redis-py's own `CredentialProvider`.

With REDIS_PASSWORD_SECRET_ARN set, REDIS_URL carries no password (a user name may stay:
ElastiCache RBAC users), and every connection asks `RedisCredentials` for it. A password
rotated in the store is picked up without a restart in two ways:

- clients made by `dlq.redisclient.redis_client` pass `RedisCredentials.authenticate`
  as redis-py's `redis_connect_func`: when Redis refuses the password
  (`AuthenticationError`), it is re-read, and the same connection authenticates once
  more if it changed;
- connections made by others (Celery's broker, through kombu's `credential_provider`)
  cannot report a refusal: they get a value re-read when it is older than
  `MAX_AGE_SECONDS`, so a broker that reconnects after a rotation gets in within it.
  Both share the process's one `RedisCredentials` (`tasks.config.redis_credentials`).

Connections that are already open stay authenticated (Redis never re-checks them), so
nothing is re-read while nothing connects.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from redis.credentials import CredentialProvider
from redis.exceptions import AuthenticationError

from dlq.secrets.store import SecretStore
from dlq.secrets.value import SecretValue
from dlq.settings import Settings

log = logging.getLogger(__name__)

#: A connection that cannot report a refusal gets a password at most this old.
MAX_AGE_SECONDS = 60.0


class RedisCredentials(CredentialProvider):
    """The user name of REDIS_URL and the password REDIS_PASSWORD_SECRET_ARN names."""

    def __init__(self, password: SecretValue, *, username: str | None = None, url: str) -> None:
        """`url` is REDIS_URL without its user information (a client's own URL)."""
        self._password = password
        self._username = username or None
        self.url = url

    def __repr__(self) -> str:
        return f"RedisCredentials({self._password!r}, url={self.url!r})"

    @classmethod
    def from_settings(
        cls, settings: Settings, *, store: SecretStore | None = None
    ) -> RedisCredentials | None:
        """The credentials of REDIS_PASSWORD_SECRET_ARN; None without one (the password,
        if any, is then REDIS_URL's own)."""
        if not settings.redis_password_secret_arn:
            return None

        def factory() -> SecretStore:
            return store if store is not None else SecretStore.for_settings(settings)

        password = SecretValue.choose(
            plain=("REDIS_URL", ""),
            reference=("REDIS_PASSWORD_SECRET_ARN", settings.redis_password_secret_arn),
            store=factory,
        )
        username = urlsplit(settings.redis_url).username
        return cls(
            password,
            username=unquote(username) if username else None,
            url=without_userinfo(settings.redis_url),
        )

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        """What AUTH sends: (password,) or (user name, password)."""
        password = self._password.get(max_age=MAX_AGE_SECONDS)
        return (self._username, password) if self._username else (password,)

    def read(self) -> None:
        """Read the password now (at start: a missing secret or grant shows at once)."""
        self._password.get()

    def authenticate(self, connection: Any) -> None:
        """redis-py's `redis_connect_func`: the usual handshake; when Redis refuses the
        password and the store now holds another, the handshake once more with it."""
        used = self._password.get()
        try:
            connection.on_connect()
        except AuthenticationError:
            if not self._password.refresh(used):
                raise
            connection.on_connect()


def without_userinfo(url: str) -> str:
    """`url` without its user name and password."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))
