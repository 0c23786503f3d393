"""The event pattern matcher (dlq.targets.pattern) on what the EventBridge documentation
says, where the contract tests against the emulator cannot say it: where moto's
TestEventPattern departs from the documentation (each such case is also asserted, as a
divergence, in tests/integration/test_event_pattern_contract.py), and what only the
matcher does (refusing what it cannot evaluate).

Sources: the EventBridge user guide ("Comparison operators for use in event patterns",
"Arrays in event patterns", "Matching null values and empty strings") and the README of
aws/event-ruler, the engine EventBridge matches with ("JSON Array Matching").
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from dlq.targets.pattern import EventPattern, PatternUnsupported

EMPLOYEES = {
    "detail": {
        "employees": [
            {"firstName": "John", "lastName": "Doe"},
            {"firstName": "Anna", "lastName": "Smith"},
            {"firstName": "Peter", "lastName": "Jones"},
        ]
    }
}


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return EventPattern.parse(json.dumps(pattern)).matches(event)


# --- where moto departs from the documentation ----------------------------------------------


def test_a_field_inside_an_array_of_objects_is_matched_in_each_element():
    # event-ruler "JSON Array Matching": {"employees": {"firstName": ["Anna"]}} matches.
    # moto: no match (it does not look into arrays of objects).
    assert matches({"detail": {"employees": {"firstName": ["Anna"]}}}, EMPLOYEES)


def test_two_fields_inside_an_array_of_objects_must_match_in_the_same_element():
    # event-ruler: no match "in which any two fields are within JSON objects that are in
    # different elements of the same array" (Anna Smith, Peter Jones: no Anna Jones).
    assert not matches(
        {"detail": {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}}}, EMPLOYEES
    )
    assert matches(
        {"detail": {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}}}, EMPLOYEES
    )


def test_arrays_of_arrays_of_objects_are_crushed_too():
    event = {"employees": [[{"firstName": "John"}, {"firstName": "Anna"}], [{"firstName": "Pe"}]]}

    assert matches({"employees": {"firstName": ["Pe"]}}, event)


def test_numeric_matching_sees_json_numbers_only_never_a_boolean():
    # "Numeric matching only works with values that are JSON numbers". moto: `true` is 1.
    assert not matches({"detail": {"flag": [{"numeric": [">", 0]}]}}, {"detail": {"flag": True}})


# --- typed values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "event_value"),
    [("300", 300), (300, "300"), (True, "true"), (None, ""), ("", None), (1, True), (True, 1)],
)
def test_a_plain_value_matches_only_a_value_of_its_own_json_type(value, event_value):
    assert not matches({"detail": {"x": [value]}}, {"detail": {"x": event_value}})


def test_a_number_matches_the_same_number_however_written():
    assert matches({"detail": {"x": [300]}}, {"detail": {"x": 300.0}})


# --- exists works on leaf nodes only --------------------------------------------------------


def test_exists_false_matches_a_field_whose_value_is_an_object():
    # "Exists matching only works on leaf nodes": the guide's c-count example.
    event = {"detail": {"c-count": {"c1": 100}}}

    assert matches({"detail": {"c-count": [{"exists": False}]}}, event)
    assert not matches({"detail": {"c-count": [{"exists": True}]}}, event)


def test_exists_sees_an_empty_array_as_no_value():
    assert matches({"detail": {"tags": [{"exists": False}]}}, {"detail": {"tags": []}})


def test_a_pattern_reaching_below_a_scalar_finds_nothing_there():
    assert not matches({"detail": {"state": {"code": ["x"]}}}, {"detail": {"state": "running"}})
    assert matches({"detail": {"state": {"code": [{"exists": False}]}}}, {"detail": {"state": 1}})


# --- what only the matcher does -------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    [
        {"source": [{"contains": "genesys"}]},  # not an EventBridge operator (yet)
        {"source": [{"prefix": "a", "suffix": "b"}]},
        {"detail": {"n": [{"numeric": [">", "five"]}]}},
        {"detail": {"n": [{"numeric": ["~", 5]}]}},
        {"detail": {"ip": [{"cidr": "not-a-network"}]}},
        {"detail": {"s": [{"anything-but": {"contains": "x"}}]}},
        {"detail": {"s": [{"exists": "yes"}]}},
        {"source": "aws.partner"},
        {"source": [["nested"]]},
    ],
)
def test_a_pattern_it_cannot_evaluate_is_refused_when_parsed_not_guessed(pattern):
    with pytest.raises(PatternUnsupported):
        EventPattern.parse(json.dumps(pattern))


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '"source"'])
def test_a_pattern_that_is_not_a_json_object_is_refused(text):
    with pytest.raises(PatternUnsupported):
        EventPattern.parse(text)


def test_a_body_that_is_not_an_object_matches_no_pattern_naming_a_field():
    pattern = EventPattern.parse(json.dumps({"source": [{"prefix": "aws.partner/genesys.com"}]}))

    assert not pattern.matches(None)
    assert not pattern.matches(["aws.partner/genesys.com/cloud/x/y"])


def test_an_escaped_star_in_a_wildcard_is_a_star():
    pattern = {"detail": {"name": [{"wildcard": "a\\*b*"}]}}

    assert matches(pattern, {"detail": {"name": "a*bc"}})
    assert not matches(pattern, {"detail": {"name": "axbc"}})


def test_the_genesys_rule_pattern_of_the_readme_matches_a_genesys_event():
    pattern = {
        "source": [{"prefix": "aws.partner/genesys.com"}],
        "detail-type": [{"wildcard": "v2.detail.events.conversation.*.customer.end"}],
    }
    event = {
        "source": "aws.partner/genesys.com/cloud/5b1f0d2e-8c34-4e1a-9a77-2d6c0e9f4b13/crm",
        "detail-type": "v2.detail.events.conversation.{id}.customer.end",
        "detail": {"topicName": "v2.detail.events.conversation.c1.customer.end"},
    }

    assert matches(pattern, event)
    assert not matches(
        pattern, {**event, "detail-type": "v2.detail.events.conversation.{id}.agent.end"}
    )
