"""What a Redis failure means to an operator: one line naming cause and fix.

AWS failures have their own vocabulary, `dlq.awserrors` (`explain_aws`), shared with the
targets and the poller; both give the same `Explanation`.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import AuthenticationError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dlq.awserrors import Explanation
from dlq.redistls import tls_refusal


def explain_redis(exc: RedisError, url: str) -> Explanation:
    """What a Redis failure means, naming REDIS_URL without its password."""
    shown = redact_url(url)
    said = scrub(str(exc), url).rstrip(".")
    if isinstance(exc, AuthenticationError):
        return Explanation(
            f"Redis at {shown} refused the credentials in REDIS_URL ({said})",
            "set the user and password in REDIS_URL (or REDIS_PASSWORD_SECRET_ARN's secret) to "
            "ones this Redis accepts",
            configuration=True,
            permanent=True,
        )
    refused = tls_refusal(exc) if isinstance(exc, RedisConnectionError) else None
    if refused is not None:
        cause, fix = refused
        return Explanation(
            f"TLS to Redis at {shown} (REDIS_URL) failed: {cause} ({said})",
            fix,
            configuration=True,
            permanent=True,
        )
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return Explanation(
            f"cannot reach Redis at {shown} (REDIS_URL): {said}",
            "start Redis or fix REDIS_URL (host, port, rediss:// for TLS)",
        )
    return Explanation(
        f"Redis at {shown} answered an error: {said}",
        "fix what the error names on the Redis server (its log says more), then run again",
    )


def redact_url(url: str) -> str:
    """The URL with its password (if any) replaced by `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}{port}"))


def scrub(text: str, url: str) -> str:
    """`text` with the password of `url` taken out, should a library have quoted it."""
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text
