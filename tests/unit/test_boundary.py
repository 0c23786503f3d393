"""The trust boundary's decision (dlq.boundary): which rule's messages the replay may act
on, and the org their events must come from. Pure: no AWS call, as the ingest makes it."""

from __future__ import annotations

import pytest
from helpers import ORG

from dlq.boundary import TrustBoundary
from dlq.errors import ConfigurationError
from dlq.settings import Settings

OTHER = "0badc0de-0000-4000-8000-000000000000"
PREFIX = "arn:aws:events:us-east-1:123456789012:rule"
PARTNER_BUS = f"aws.partner/genesys.com/cloud/{ORG}/crm"
PARTNER_RULE = f"{PREFIX}/{PARTNER_BUS}/crm-sync"
OTHER_PARTNER_RULE = f"{PREFIX}/aws.partner/genesys.com/cloud/{OTHER}/crm/crm-sync"
CUSTOM_RULE = f"{PREFIX}/genesys-prod/crm-sync"
PAYMENTS_RULE = f"{PREFIX}/payments/refund-requested"
DEFAULT_BUS_RULE = f"{PREFIX}/crm-sync"


def source(org: str = ORG) -> str:
    return f"aws.partner/genesys.com/cloud/{org}/crm"


def code(boundary: TrustBoundary, rule_arn: str | None, event_source: str) -> str | None:
    refusal = boundary.refusal(rule_arn, event_source)
    return refusal.code if refusal else None


# --- the default: the org's Genesys partner bus ----------------------------------------------


def test_by_default_a_rule_on_the_orgs_partner_bus_is_inside():
    assert code(TrustBoundary(org_id=ORG), PARTNER_RULE, source()) is None


def test_without_an_org_setting_the_partner_bus_names_the_org():
    assert code(TrustBoundary(), PARTNER_RULE, source()) is None
    assert code(TrustBoundary(), PARTNER_RULE, source(OTHER)) == "ForeignOrg"
    assert code(TrustBoundary(), OTHER_PARTNER_RULE, source(OTHER)) is None


def test_with_an_org_setting_another_orgs_partner_bus_is_refused():
    refusal = TrustBoundary(org_id=ORG).refusal(OTHER_PARTNER_RULE, source(OTHER))

    assert refusal is not None and refusal.code == "ForeignOrg"
    assert f"GENESYS_ORG_ID {ORG}" in refusal.reason


def test_an_event_of_another_org_on_the_orgs_partner_bus_is_refused():
    assert code(TrustBoundary(org_id=ORG), PARTNER_RULE, source(OTHER)) == "ForeignOrg"


@pytest.mark.parametrize("rule_arn", [CUSTOM_RULE, PAYMENTS_RULE, DEFAULT_BUS_RULE])
def test_by_default_a_rule_on_any_other_bus_is_refused(rule_arn):
    refusal = TrustBoundary(org_id=ORG).refusal(rule_arn, source())

    assert refusal is not None and refusal.code == "BusNotAllowed"
    assert "REPLAY_ALLOWED_BUSES" in refusal.reason


def test_the_default_bus_is_named_as_such():
    refusal = TrustBoundary(org_id=ORG).refusal(DEFAULT_BUS_RULE, source())

    assert refusal is not None and "the default bus" in refusal.reason


@pytest.mark.parametrize("rule_arn", [None, ""])
def test_a_message_without_a_rule_is_refused(rule_arn):
    assert code(TrustBoundary(org_id=ORG), rule_arn, source()) == "NoRule"


@pytest.mark.parametrize("rule_arn", ["crm-sync", "arn:aws:sqs:us-east-1:1:q", f"{PREFIX}/"])
def test_a_rule_arn_that_names_no_rule_is_refused(rule_arn):
    assert code(TrustBoundary(org_id=ORG), rule_arn, source()) == "BusNotAllowed"


# --- widened by the operator ----------------------------------------------------------------


def test_an_allowed_bus_admits_its_rules_events_of_the_org():
    boundary = TrustBoundary(org_id=ORG, buses=("genesys-prod",))

    assert code(boundary, CUSTOM_RULE, source()) is None
    assert code(boundary, CUSTOM_RULE, source(OTHER)) == "ForeignOrg"
    assert code(boundary, PAYMENTS_RULE, source()) == "BusNotAllowed"


def test_a_star_in_an_allowed_bus_matches_any_run_of_characters():
    boundary = TrustBoundary(org_id=ORG, buses=("genesys-*",))

    assert code(boundary, CUSTOM_RULE, source()) is None
    assert code(boundary, f"{PREFIX}/genesys/crm-sync", source()) == "BusNotAllowed"
    assert code(boundary, f"{PREFIX}/my-genesys-prod/crm-sync", source()) == "BusNotAllowed"


def test_an_allowed_rule_admits_its_events_wherever_its_bus():
    boundary = TrustBoundary(org_id=ORG, rules=frozenset({DEFAULT_BUS_RULE}))

    assert code(boundary, DEFAULT_BUS_RULE, source()) is None
    assert code(boundary, f"{PREFIX}/other-rule", source()) == "BusNotAllowed"


def test_an_allowed_bus_still_admits_genesys_events_only():
    boundary = TrustBoundary(org_id=ORG, buses=("payments",))

    refusal = boundary.refusal(PAYMENTS_RULE, "com.example.payments")

    assert refusal is not None and refusal.code == "NotGenesysEvent"


def test_widening_without_an_org_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="GENESYS_ORG_ID"):
        TrustBoundary(buses=("genesys-prod",))
    with pytest.raises(ConfigurationError, match="GENESYS_ORG_ID"):
        TrustBoundary(rules=frozenset({CUSTOM_RULE}))


# --- from the settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["genesys-prod, genesys-*", '["genesys-prod", "genesys-*"]', " genesys-prod,,genesys-* "],
)
def test_the_allowed_buses_are_read_comma_separated_or_as_json(value):
    settings = Settings(_env_file=None, genesys_org_id=ORG, replay_allowed_buses=value)

    assert settings.replay_allowed_buses == ["genesys-prod", "genesys-*"]
    assert TrustBoundary.from_settings(settings).buses == ("genesys-prod", "genesys-*")


def test_the_allowed_rules_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("REPLAY_ALLOWED_RULES", f"{CUSTOM_RULE},{DEFAULT_BUS_RULE}")
    monkeypatch.setenv("GENESYS_ORG_ID", ORG)

    boundary = TrustBoundary.from_settings(Settings(_env_file=None))

    assert boundary.rules == {CUSTOM_RULE, DEFAULT_BUS_RULE}


def test_the_description_names_what_is_allowed():
    text = TrustBoundary(
        org_id=ORG, buses=("genesys-*",), rules=frozenset({CUSTOM_RULE})
    ).describe()

    assert f"aws.partner/genesys.com/cloud/{ORG}/" in text
    assert "genesys-*" in text and CUSTOM_RULE in text
