"""`PooledSession`: requests' environment settings, read once per host."""

from __future__ import annotations

import requests.sessions

from dlq.httpsession import PooledSession


def session() -> PooledSession:
    return PooledSession(pool_connections=1, pool_maxsize=1)


def test_the_proxy_environment_is_read_once_per_host(monkeypatch):
    reads = []
    real = requests.sessions.get_environ_proxies

    def counting(url, no_proxy=None):
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.sessions, "get_environ_proxies", counting)
    pooled = session()

    for path in ("a", "b", "c"):
        pooled.merge_environment_settings(f"https://crm.example/{path}", {}, None, None, None)
    pooled.merge_environment_settings("https://other.example/", {}, None, None, None)

    assert len(reads) == 2


def test_proxies_and_no_proxy_from_the_environment_still_apply_per_host(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "api.mypurecloud.com")
    pooled = session()

    proxied = pooled.merge_environment_settings("https://crm.example/x", {}, None, None, None)
    direct = pooled.merge_environment_settings(
        "https://api.mypurecloud.com/api/v2", {}, None, None, None
    )

    assert proxied["proxies"].get("https") == "http://proxy.internal:3128"
    assert "https" not in direct["proxies"]


def test_a_ca_bundle_from_the_environment_applies_unless_the_request_says_otherwise(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    pooled = session()

    assert pooled.merge_environment_settings("https://a/", {}, None, True, None)["verify"] == (
        "/etc/ssl/corporate.pem"
    )
    assert pooled.merge_environment_settings("https://a/", {}, None, False, None)["verify"] is False


def test_without_trust_env_nothing_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    pooled = session()
    pooled.trust_env = False

    settings = pooled.merge_environment_settings("https://crm.example/", {}, None, None, None)

    assert settings["proxies"] == {}
