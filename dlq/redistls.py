"""TLS to Redis: how every client checks the server of a `rediss://` REDIS_URL.

One `RedisTls` from the settings gives the same options to every client of the process:
redis-py's (`dlq.redisclient.redis_client`: locks, the limiter, the token cache, counters,
the CLI, doctor) and kombu's broker, which hands `broker_use_ssl` to redis-py unchanged
(celeryconfig.py; Flower builds its own broker client from the same dict). The
certificate is always verified: against REDIS_TLS_CA_FILE, else the system's trust store.
There is no switch to turn that off, and REDIS_URL may not carry `ssl_*` options but
`ssl_cert_reqs=required` (redis-py and kombu would let them override the settings,
`ssl_cert_reqs=none` included).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator

#: The scheme of an encrypted REDIS_URL (redis-py and kombu: `SSLConnection`).
TLS_SCHEME = "rediss"


class TlsSettings(Protocol):
    """What of `dlq.settings.Settings` TLS reads (this module is one of its validators)."""

    @property
    def redis_url(self) -> str: ...
    @property
    def redis_tls_ca_file(self) -> str: ...
    @property
    def redis_tls_check_hostname(self) -> bool: ...


@dataclass(frozen=True)
class RedisTls:
    """The check of a Redis server's certificate: which CA signs it, whether it must name
    REDIS_URL's host."""

    ca_file: str = ""
    check_hostname: bool = True

    @classmethod
    def from_settings(cls, settings: TlsSettings) -> RedisTls:
        return cls(settings.redis_tls_ca_file, settings.redis_tls_check_hostname)

    def options(self) -> dict[str, Any]:
        """redis-py's `SSLConnection` keyword arguments (redis/connection.py), which are also
        kombu's `broker_use_ssl` keys: kombu's Redis transport copies that dict into the
        connection parameters as it is (kombu/transport/redis.py, `_connparams`; Celery docs,
        "broker_use_ssl": `ssl_cert_reqs`, `ssl_ca_certs`...)."""
        options: dict[str, Any] = {
            "ssl_cert_reqs": ssl.CERT_REQUIRED,
            # redis-py before 6 did not check the host name unless asked: always say.
            "ssl_check_hostname": self.check_hostname,
        }
        if self.ca_file:
            options["ssl_ca_certs"] = self.ca_file
        return options

    def client_options(self, url: str) -> dict[str, Any]:
        """The TLS options of a client of `url`: none unless it is `rediss://` (a plain
        `Connection` refuses `ssl_*` arguments)."""
        return self.options() if encrypted(url) else {}

    def broker_use_ssl(self, url: str) -> dict[str, Any] | None:
        """Celery's `broker_use_ssl` for a broker at `url`. Without it, kombu connects to a
        `rediss://` broker *without* checking the certificate (kombu/connection.py,
        `_init_params`: "defaulting to insecure SSL behaviour")."""
        return self.options() if encrypted(url) else None

    def describe(self) -> str:
        """How the certificate is checked, for `doctor`."""
        trusted = f"CA {self.ca_file}" if self.ca_file else "the system's trust store"
        host = "" if self.check_hostname else ", host name not checked (REDIS_TLS_CHECK_HOSTNAME)"
        return f"TLS (certificate verified against {trusted}{host})"


def encrypted(url: str) -> bool:
    """Whether a client of `url` talks TLS."""
    return urlsplit(url).scheme == TLS_SCHEME


def ca_bundle(value: str) -> str:
    """REDIS_TLS_CA_FILE's validator: empty, or a readable PEM file of CA certificates."""
    value = value.strip()
    if not value:
        return value
    if not Path(value).is_file():
        raise ValueError(f"no file at {value}: set it to the PEM bundle of Redis's CA")
    try:
        ssl.create_default_context(cafile=value)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"{value} holds no usable PEM certificate ({exc})") from None
    return value


def tls_fits(settings: TlsSettings) -> None:
    """Refuse TLS settings a client would ignore, or that REDIS_URL would override."""
    url = settings.redis_url
    # `ssl_cert_reqs=required` only says what is done anyway (Celery's docs write it so).
    given = [
        key
        for key, value in parse_qsl(urlsplit(url).query)
        if key.startswith("ssl") and (key, value.lower()) != ("ssl_cert_reqs", "required")
    ]
    if given:
        raise ValueError(
            f"REDIS_URL carries TLS options ({', '.join(given)}): remove them and set "
            "REDIS_TLS_CA_FILE or REDIS_TLS_CHECK_HOSTNAME, which every client reads"
        )
    asked = settings.redis_tls_ca_file or not settings.redis_tls_check_hostname
    if asked and not encrypted(url):
        raise ValueError(
            "REDIS_TLS_CA_FILE or REDIS_TLS_CHECK_HOSTNAME is set but REDIS_URL does not "
            "start with rediss://: use rediss:// for TLS (or unset them)"
        )


def tls_refusal(exc: BaseException) -> tuple[str, str] | None:
    """(what the TLS handshake refused, what fixes it) if `exc`, a redis-py
    `ConnectionError`, is such a refusal; None for any other failure."""
    cause: BaseException | None = exc
    text = str(exc)
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            text = str(cause)
            break
        cause = cause.__cause__ or cause.__context__
    if "CERTIFICATE_VERIFY_FAILED" not in text:
        if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
            return ("the server does not talk TLS on this port", "use redis:// or its TLS port")
        return None
    if "Hostname mismatch" in text or "IP address mismatch" in text:
        return (
            "its certificate does not name REDIS_URL's host",
            "connect by a name the certificate holds, or set REDIS_TLS_CHECK_HOSTNAME=false",
        )
    return (
        "its certificate is not signed by a CA this process trusts",
        "set REDIS_TLS_CA_FILE to the PEM bundle of the CA that signed it",
    )


#: REDIS_TLS_CA_FILE's type in `Settings`.
CaBundle = Annotated[str, AfterValidator(ca_bundle)]
