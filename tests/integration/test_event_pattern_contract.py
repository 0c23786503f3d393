"""The replay's event pattern matcher (dlq.targets.pattern) held to EventBridge's
TestEventPattern, as the emulator answers it, on every operator of the EventBridge user
guide: plain values, prefix, suffix, equals-ignore-case, wildcard, anything-but (a value,
a list, and its prefix, suffix, equals-ignore-case and wildcard forms), numeric, exists,
cidr, `$or`, null and empty values, arrays in events.

The emulator is moto's server (`devstack.moto_atomic`: moto 5.2 answers TestEventPattern
with an empty body, so the launcher answers it with moto's own matcher, the one moto's
PutEvents routes by). Where moto departs from the documentation, the case says what the
documentation says (`expected`, what the matcher must answer) and what moto answers
(`moto`), and both are asserted: the divergence is explicit, and a moto that fixes it
fails here until the case is updated. Those cases are unit-tested on the documented
behaviour in tests/unit/test_event_pattern.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.moto_server import MotoServer
from dlq.aws import aws_client
from dlq.settings import Settings
from dlq.targets.pattern import EventPattern

ORG = "5b1f0d2e-8c34-4e1a-9a77-2d6c0e9f4b13"

EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6f1d6b52-2f2b-4c1e-9e3c-0f3c1c7f5a11",
    "detail-type": "v2.detail.events.conversation.{id}.customer.end",
    "source": f"aws.partner/genesys.com/cloud/{ORG}/crm",
    "account": "123456789012",
    "time": "2017-10-02T18:43:48Z",
    "region": "us-east-1",
    "resources": [
        "arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b:ASGTerminate",
        "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
    ],
    "detail": {
        "state": "running",
        "c-count": 5,
        "x-limit": 301.8,
        "source-ip": "10.0.0.33",
        "FileName": "photo.PNG",
        "FilePath": "/usr/lib/libx.so",
        "eventVersion": "",
        "responseElements": None,
        "flag": True,
        "tags": ["blue", "green"],
        "numbers": [1, 7],
        "nested": {"inner": "v"},
        "employees": [
            {"firstName": "John", "lastName": "Doe"},
            {"firstName": "Anna", "lastName": "Smith"},
        ],
    },
}


@dataclass(frozen=True)
class Case:
    name: str
    pattern: dict[str, Any]
    #: What the documentation says, and so what the matcher must answer.
    expected: bool
    #: What moto answers where it departs from the documentation (None: it agrees).
    moto: bool | None = None


def detail(field: str, *matchers: Any) -> dict[str, Any]:
    return {"detail": {field: list(matchers)}}


CASES = [
    # plain values: any value of the list, typed; an array in the event: any element
    Case("exact value", {"source": [EVENT["source"]]}, True),
    Case("exact value, other", {"source": ["aws.ec2"]}, False),
    Case("one of the values", detail("state", "initializing", "running"), True),
    Case(
        "array intersects",
        {"resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"]},
        True,
    ),
    Case(
        "array does not intersect", {"resources": ["arn:aws:ec2:us-east-1:1:instance/i-0"]}, False
    ),
    Case("number in an array", detail("numbers", 7), True),
    Case("a string is not a number", detail("numbers", "7"), False),
    Case("nested field", {"detail": {"nested": {"inner": ["v"]}}}, True),
    Case(
        "every field must match", {"source": [EVENT["source"]], "detail": {"state": ["x"]}}, False
    ),
    Case("missing field", detail("missing", "x"), False),
    # null and empty strings are not interchangeable
    Case("null matches null", detail("responseElements", None), True),
    Case("empty string matches empty string", detail("eventVersion", ""), True),
    Case("empty string is not null", detail("responseElements", ""), False),
    Case("null is not an empty string", detail("eventVersion", None), False),
    Case("boolean", detail("flag", True), True),
    # prefix
    Case("prefix", {"source": [{"prefix": "aws.partner/genesys.com"}]}, True),
    Case("prefix, other", {"source": [{"prefix": "aws.events"}]}, False),
    Case("prefix of time", {"time": [{"prefix": "2017-10-02"}]}, True),
    Case(
        "prefix ignoring case",
        detail("FileName", {"prefix": {"equals-ignore-case": "PHOTO"}}),
        True,
    ),
    Case("prefix is for strings", detail("c-count", {"prefix": "5"}), False),
    # suffix
    Case("suffix", detail("FileName", {"suffix": ".PNG"}), True),
    Case("suffix is case-sensitive", detail("FileName", {"suffix": ".png"}), False),
    Case(
        "suffix ignoring case", detail("FileName", {"suffix": {"equals-ignore-case": ".png"}}), True
    ),
    # equals-ignore-case
    Case("equals-ignore-case", detail("state", {"equals-ignore-case": "RUNNING"}), True),
    Case("equals-ignore-case, other", detail("state", {"equals-ignore-case": "stopped"}), False),
    # wildcard
    Case("wildcard", detail("FilePath", {"wildcard": "*/lib/*"}), True),
    Case("wildcard, other", detail("FilePath", {"wildcard": "*/bin/*"}), False),
    Case("wildcard in the middle", {"source": [{"wildcard": "aws.partner/*/cloud/*"}]}, True),
    # anything-but
    Case("anything-but a string", detail("state", {"anything-but": "initializing"}), True),
    Case("anything-but the string", detail("state", {"anything-but": "running"}), False),
    Case("anything-but a number", detail("c-count", {"anything-but": 123}), True),
    Case("anything-but the number", detail("c-count", {"anything-but": 5}), False),
    Case(
        "anything-but strings", detail("state", {"anything-but": ["stopped", "overloaded"]}), True
    ),
    Case(
        "anything-but strings, listed", detail("state", {"anything-but": ["running", "x"]}), False
    ),
    Case("anything-but numbers", detail("x-limit", {"anything-but": [100, 200, 300]}), True),
    Case("anything-but prefix", detail("state", {"anything-but": {"prefix": "init"}}), True),
    Case(
        "anything-but prefix, prefixed", detail("state", {"anything-but": {"prefix": "run"}}), False
    ),
    Case("anything-but suffix", detail("FileName", {"anything-but": {"suffix": ".jpg"}}), True),
    Case(
        "anything-but suffix, suffixed",
        detail("FileName", {"anything-but": {"suffix": ".PNG"}}),
        False,
    ),
    Case(
        "anything-but ignoring case",
        detail("state", {"anything-but": {"equals-ignore-case": "RUNNING"}}),
        False,
    ),
    Case(
        "anything-but ignoring case, a list",
        detail("state", {"anything-but": {"equals-ignore-case": ["STOPPED", "X"]}}),
        True,
    ),
    Case(
        "anything-but wildcard",
        detail("FilePath", {"anything-but": {"wildcard": "*/lib/*"}}),
        False,
    ),
    Case(
        "anything-but wildcards",
        detail("FilePath", {"anything-but": {"wildcard": ["*/bin/*", "*/sbin/*"]}}),
        True,
    ),
    Case("anything-but needs the field", detail("missing", {"anything-but": "x"}), False),
    Case("anything-but, an array: any element", detail("tags", {"anything-but": "blue"}), True),
    # numeric
    Case("numeric range", detail("c-count", {"numeric": [">", 0, "<=", 5]}), True),
    Case("numeric range, outside", detail("c-count", {"numeric": ["<", 5]}), False),
    Case("numeric equals", detail("x-limit", {"numeric": ["=", 3.018e2]}), True),
    Case("numeric is for numbers", detail("state", {"numeric": [">", 0]}), False),
    Case("numeric, an array: any element", detail("numbers", {"numeric": [">", 5]}), True),
    Case(
        "numeric is for numbers, not booleans",
        detail("flag", {"numeric": [">", 0]}),
        False,
        moto=True,  # moto: Python's True is 1. Guide: "only works with ... JSON numbers".
    ),
    # exists
    Case("exists", detail("state", {"exists": True}), True),
    Case("exists, absent", detail("missing", {"exists": True}), False),
    Case("not exists", detail("missing", {"exists": False}), True),
    Case("not exists, present", detail("state", {"exists": False}), False),
    Case("exists only on leaves: an object is absent", detail("nested", {"exists": False}), True),
    Case("exists only on leaves: not an object", detail("nested", {"exists": True}), False),
    # IP addresses
    Case("cidr", detail("source-ip", {"cidr": "10.0.0.0/24"}), True),
    Case("cidr, outside", detail("source-ip", {"cidr": "10.0.1.0/24"}), False),
    # $or
    Case(
        "$or, one branch",
        {"$or": [{"detail": {"state": ["stopped"]}}, {"detail": {"c-count": [5]}}]},
        True,
    ),
    Case(
        "$or, no branch",
        {"$or": [{"detail": {"state": ["stopped"]}}, {"detail": {"c-count": [6]}}]},
        False,
    ),
    Case(
        "$or inside a field, with and",
        {
            "source": [{"prefix": "aws.partner/"}],
            "detail": {"$or": [{"state": ["x"]}, {"x-limit": [{"numeric": [">", 300]}]}]},
        },
        True,
    ),
    # arrays of objects (event-ruler "JSON Array Matching")
    Case(
        "a field inside an array of objects",
        {"detail": {"employees": {"firstName": ["Anna"]}}},
        True,
        moto=False,  # moto flattens objects only, never into arrays: it finds no field
    ),
]


@pytest.fixture(scope="module")
def events(moto_server: MotoServer) -> Any:
    return aws_client("events", Settings(_env_file=None))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_matcher_answers_what_test_event_pattern_answers(case: Case, events: Any) -> None:
    pattern = json.dumps(case.pattern)

    emulator = events.test_event_pattern(EventPattern=pattern, Event=json.dumps(EVENT))["Result"]
    ours = EventPattern.parse(pattern).matches(EVENT)

    assert ours is case.expected
    if case.moto is None:
        assert emulator is case.expected
    else:  # a known divergence of moto from the documentation, asserted as such
        assert emulator is case.moto


def test_every_operator_of_the_guide_has_a_case() -> None:
    used = {name for case in CASES for name in _operators(case.pattern)}

    assert used >= {
        "prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric",
        "exists", "cidr", "$or",
    }  # fmt: skip


def _operators(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("$") or key in (
                "prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but",
                "numeric", "exists", "cidr",
            ):  # fmt: skip
                found.add(key)
            found |= _operators(value)
    elif isinstance(node, list):
        for item in node:
            found |= _operators(item)
    return found
