"""The requests Session of every outbound HTTP call (Genesys, HTTP targets, API destinations)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from dlq.memo import Memo

if TYPE_CHECKING:
    from requests.sessions import _Settings


class PooledSession(requests.Session):
    """A pooled Session that reads the proxy environment once per host, not per request.

    With `trust_env` on (requests' default, kept so that `HTTPS_PROXY`, `NO_PROXY` and
    `REQUESTS_CA_BUNDLE` work), requests walks `os.environ` twice on every request to
    find proxies: about 3 ms of CPU per request in a worker, a sixth of the worker's
    CPU per event in `bench.cost` (cProfile, `--pool solo`). A worker's environment does
    not change while it runs, so what it says for a host is kept.
    """

    def __init__(self, *, pool_connections: int, pool_maxsize: int) -> None:
        super().__init__()
        # No transport retries: a retry is the caller's decision, never a hidden resend.
        adapter = HTTPAdapter(
            pool_connections=pool_connections, pool_maxsize=pool_maxsize, max_retries=0
        )
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self._environment: Memo[tuple[str, str], _Settings] = Memo(None)

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: Any,
        stream: Any,
        verify: Any,
        cert: Any,
    ) -> _Settings:
        if not self.trust_env or (proxies and "no_proxy" in proxies):
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        text = url.decode() if isinstance(url, bytes) else str(url or "")
        parts = urlsplit(text)
        learned = self._environment.get(
            (parts.scheme, parts.netloc),
            lambda: super(PooledSession, self).merge_environment_settings(
                text, {}, None, None, None
            ),
        )
        # What `requests.sessions.merge_setting` does: the request's own value wins.
        return {
            "proxies": {**learned["proxies"], **(proxies or {})},
            "stream": learned["stream"] if stream is None else stream,
            "verify": learned["verify"] if verify is True or verify is None else verify,
            "cert": learned["cert"] if cert is None else cert,
        }
