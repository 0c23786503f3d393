"""TLS to Redis as the settings give it: verified by default, never turned off by a URL."""

from __future__ import annotations

import ssl

import pytest

from devstack.tls import make_certificates
from dlq.doctor.broker import tls_check
from dlq.errors import ConfigurationError
from dlq.redistls import RedisTls
from dlq.settings import load_settings


def test_a_rediss_broker_checks_the_certificate_and_host_name_by_default():
    settings = load_settings(_env_file=None, redis_url="rediss://cache:6379/0")

    options = RedisTls.from_settings(settings).broker_use_ssl(settings.redis_url)

    assert options == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_check_hostname": True}


def test_a_plain_url_gets_no_tls_options():
    tls = RedisTls(ca_file="", check_hostname=True)

    assert tls.broker_use_ssl("redis://cache:6379/0") is None
    assert tls.client_options("redis://cache:6379/0") == {}


@pytest.mark.parametrize("query", ["ssl_cert_reqs=none", "ssl_check_hostname=false"])
def test_a_url_cannot_turn_the_check_off(query):
    with pytest.raises(ConfigurationError, match="REDIS_URL carries TLS options"):
        load_settings(_env_file=None, redis_url=f"rediss://cache:6379/0?{query}")


def test_a_ca_file_for_a_plain_url_is_refused(tmp_path):
    ca = str(make_certificates(tmp_path).ca)

    with pytest.raises(ConfigurationError, match="does not start with rediss://"):
        load_settings(_env_file=None, redis_url="redis://cache:6379/0", redis_tls_ca_file=ca)


def test_a_missing_ca_file_names_the_setting(tmp_path):
    with pytest.raises(ConfigurationError, match="REDIS_TLS_CA_FILE is invalid: no file at"):
        load_settings(
            _env_file=None,
            redis_url="rediss://cache:6379/0",
            redis_tls_ca_file=str(tmp_path / "ca.pem"),
        )


def test_doctor_warns_of_plain_text_to_another_host():
    settings = load_settings(_env_file=None, redis_url="redis://cache.internal:6379/0")

    check = tls_check(settings, connected=True)

    assert check.status == "warn"
    assert check.detail.startswith("not encrypted")
    assert check.fix.startswith("use rediss://")
