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


@pytest.mark.parametrize("region", ["us-east-1", "us_east_1", "US-EAST-1", " us_east_1 "])
def test_a_region_name_is_accepted_with_dashes_or_underscores(make_settings, region):
    settings = make_settings(genesys_region=region)
    assert settings.genesys_region == "us_east_1"
    assert settings.genesys_api_url == "https://api.mypurecloud.com"


@pytest.mark.parametrize(
    ("region", "domain"),
    [
        ("eu-west-2", "euw2.pure.cloud"),
        ("ap_southeast_2", "mypurecloud.com.au"),
        ("us-east-2", "use2.us-gov-pure.cloud"),
    ],
)
def test_every_spelling_of_a_region_name_gives_its_domain(make_settings, region, domain):
    assert make_settings(genesys_region=region).genesys_domain == domain


@pytest.mark.parametrize("region", ["mypurecloud.de", "MyPureCloud.de", "euc2.pure.cloud"])
def test_a_region_domain_is_accepted_as_it_is(make_settings, region):
    settings = make_settings(genesys_region=region)
    assert settings.genesys_api_url == f"https://api.{region.lower()}"
    assert settings.genesys_login_url == f"https://login.{region.lower()}"


@pytest.mark.parametrize(
    "pasted", ["https://api.mypurecloud.ie/", "login.mypurecloud.ie", "apps.mypurecloud.ie"]
)
def test_a_pasted_host_or_url_of_a_known_region_becomes_its_domain(make_settings, pasted):
    assert make_settings(genesys_region=pasted).genesys_domain == "mypurecloud.ie"


def test_a_region_domain_not_yet_in_the_table_is_accepted(make_settings):
    settings = make_settings(genesys_region="new1.pure.cloud")
    assert settings.genesys_api_url == "https://api.new1.pure.cloud"


def test_an_unknown_region_name_says_which_names_and_domains_are_accepted(monkeypatch):
    monkeypatch.setenv("GENESYS_REGION", "us-east-9")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert message.startswith("GENESYS_REGION is invalid")
    assert "us_east_1" in message
    assert "mypurecloud.com" in message
    assert "\n" not in message


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


@pytest.mark.parametrize(
    "url",
    [
        "redis://:change-me-to-a-long-random-password@redis:6379/0",
        "rediss://default:change-me@cache.example.com:6380/0",
        "redis://:change%2Dme-please@127.0.0.1:6379/0",  # percent-encoded, still the placeholder
    ],
)
def test_a_redis_url_with_the_placeholder_password_is_refused_saying_what_to_set(monkeypatch, url):
    monkeypatch.setenv("REDIS_URL", url)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert message.startswith("REDIS_URL is invalid: its password is the .env.example placeholder")
    assert "set REDIS_PASSWORD in .env" in message
    assert "\n" not in message and "@" not in message  # one line, the URL not echoed


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",  # the demo's and the tests' loopback Redis: no password
        "redis://:3f9c1e0a7b6d@redis:6379/0",
        "rediss://default:not-change-me@cache.example.com:6380/0",
        "unix:///run/redis/redis.sock",
    ],
)
def test_a_redis_url_without_the_placeholder_is_accepted(make_settings, url):
    assert make_settings(redis_url=url).redis_url == url


# --- AWS_REGION: the form of botocore's partitions ------------------------------------


def test_a_typo_in_aws_region_fails_with_one_line_naming_the_variable_and_the_region_meant(
    monkeypatch,
):
    monkeypatch.setenv("AWS_REGION", "us-east1")
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert message.startswith("AWS_REGION is invalid: 'us-east1' is not an AWS region name")
    assert "(did you mean us-east-1?)" in message
    assert "\n" not in message


def test_a_typo_in_aws_default_region_is_caught_when_aws_region_is_unset(monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west1")
    with pytest.raises(ConfigurationError, match=r"did you mean eu-west-1\?"):
        load_settings(_env_file=None)


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-central-2", "ap-southeast-7", "us-gov-west-1", "cn-northwest-1"]
)
def test_a_region_of_any_partition_is_accepted(make_settings, region):
    assert make_settings(aws_region=region).aws_region == region


def test_a_region_newer_than_botocore_s_list_is_accepted_by_its_partition_s_form(make_settings):
    assert make_settings(aws_region="eu-south-9").aws_region == "eu-south-9"


def test_a_region_is_read_in_lower_case_without_surrounding_spaces(make_settings):
    assert make_settings(aws_region=" EU-West-1 ").aws_region == "eu-west-1"


@pytest.mark.parametrize(
    "typo", ["us-east1", "useast-1", "us-east-1a", "east-1", "us_east_1", "aws-global", ""]
)
def test_a_name_in_no_partition_s_form_is_refused(monkeypatch, typo):
    monkeypatch.setenv("AWS_REGION", typo)
    with pytest.raises(
        ConfigurationError, match=r"^AWS_REGION is invalid: .* is not an AWS region"
    ):
        load_settings(_env_file=None)


# --- INGEST_FRONT_DOOR -----------------------------------------------------------------


def test_the_front_door_is_the_lambda_unless_told(monkeypatch, make_settings):
    monkeypatch.delenv("INGEST_FRONT_DOOR", raising=False)
    assert make_settings().ingest_front_door == "lambda"


def test_the_front_door_is_read_from_ingest_front_door(monkeypatch):
    monkeypatch.setenv("INGEST_FRONT_DOOR", "poller")
    assert load_settings(_env_file=None).ingest_front_door == "poller"


def test_an_unknown_front_door_fails_with_one_line_naming_the_choices(monkeypatch):
    monkeypatch.setenv("INGEST_FRONT_DOOR", "sqs")
    with pytest.raises(
        ConfigurationError, match=r"^INGEST_FRONT_DOOR is invalid: .*'lambda' or 'poller'$"
    ):
        load_settings(_env_file=None)
