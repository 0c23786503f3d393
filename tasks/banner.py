"""The worker's start-up banner names the broker as configured: a password hidden, none
invented.

Celery prints kombu's `as_uri()`, which shows `redis://:**@host:6379/0` whether or not
the URL has a password; an operator reading it looks for a password that was never set.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from celery.apps.worker import Worker as CeleryWorker

from dlq.doctor.explain import redact_url

#: The query parameter `celeryconfig.broker_url_of` adds when a secret store holds the password.
_PROVIDER = "credential_provider"


def shown_broker(url: str) -> str:
    """The broker URL to print: its password (if any) masked, the provider named in words."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    if not any(name == _PROVIDER for name, _ in query):
        return redact_url(url)
    rest = urlencode([(name, value) for name, value in query if name != _PROVIDER])
    return f"{urlunsplit(parts._replace(query=rest))} (password from REDIS_PASSWORD_SECRET_ARN)"


class Worker(CeleryWorker):  # type: ignore[misc]
    """Celery's worker, with the broker in its banner as `shown_broker` shows it."""

    def startup_info(self, artlines: bool = True) -> str:
        info: str = super().startup_info(artlines)
        masked = self.app.connection().as_uri()
        return info.replace(masked, shown_broker(self.app.conf.broker_url), 1)
