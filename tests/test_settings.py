"""Configuration: one object, clear one-line failures, secrets never shown."""

from __future__ import annotations

import pytest

from dlq.errors import ConfigurationError
from dlq.settings import load_settings


def test_a_malformed_setting_fails_with_one_line_naming_the_variable(monkeypatch):
    monkeypatch.setenv("REPLAY_MAX_ATTEMPTS", "many")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    assert str(caught.value).startswith("REPLAY_MAX_ATTEMPTS is invalid")
    assert "\n" not in str(caught.value)


def test_an_unknown_region_name_is_refused(monkeypatch):
    monkeypatch.setenv("GENESYS_REGION", "moon_base_1")
    with pytest.raises(ConfigurationError, match="GENESYS_REGION is invalid"):
        load_settings(_env_file=None)


@pytest.mark.parametrize(
    ("region", "api", "login"),
    [
        ("us_east_1", "https://api.mypurecloud.com", "https://login.mypurecloud.com"),
        ("mypurecloud.ie", "https://api.mypurecloud.ie", "https://login.mypurecloud.ie"),
        ("us_west_2", "https://api.usw2.pure.cloud", "https://login.usw2.pure.cloud"),
    ],
)
def test_the_region_gives_the_api_and_login_hosts(make_settings, region, api, login):
    settings = make_settings(genesys_region=region)
    assert (settings.genesys_api_url, settings.genesys_login_url) == (api, login)


def test_explicit_base_urls_override_the_region(make_settings):
    settings = make_settings(
        genesys_api_base_url="http://127.0.0.1:9000/",
        genesys_login_base_url="http://127.0.0.1:9001",
    )
    assert settings.genesys_api_url == "http://127.0.0.1:9000"
    assert settings.genesys_login_url == "http://127.0.0.1:9001"


def test_the_client_secret_is_never_shown(make_settings):
    settings = make_settings(genesys_client_secret="s3cr3t-value")
    assert "s3cr3t-value" not in repr(settings)
    assert "s3cr3t-value" not in str(settings.model_dump())


def test_a_missing_required_setting_names_it_and_its_purpose(make_settings):
    with pytest.raises(
        ConfigurationError, match=r"^DLQ_QUEUE_URL is not set: the poller needs it$"
    ):
        make_settings(dlq_queue_url="").require("dlq_queue_url", purpose="the poller")


def test_an_event_bus_source_may_not_begin_with_aws(monkeypatch):
    monkeypatch.setenv("REPLAY_EVENT_BUS_SOURCE", "aws.partner/genesys")
    with pytest.raises(ConfigurationError, match="REPLAY_EVENT_BUS_SOURCE"):
        load_settings(_env_file=None)
