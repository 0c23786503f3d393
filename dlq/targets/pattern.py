"""EventBridge event patterns, matched as EventBridge matches them, without a call.

The replay sends an event to a rule's target only if the rule's pattern matches it: a
message whose body the rule would never have delivered is a forgery (or a rule changed
since), and ends `rejected`. EventBridge's own `TestEventPattern` would cost a call per
event; this matcher is held to it by contract tests on every operator of the EventBridge
user guide ("Event patterns", "Comparison operators", "Arrays", "Null values and empty
strings"), run against the emulator's TestEventPattern (tests/integration/
test_event_pattern_contract.py), and, where the emulator departs from the guide, to the
guide itself (tests/unit/test_event_pattern.py).

What it follows (the guide, and aws/event-ruler's README, the engine behind EventBridge):

- every field the pattern names must match (AND); a field matches when any value of its
  list matches any value the event has there (an array in the event: any element);
- `$or` is a list of patterns at that level, one of which must match;
- values are typed: `"300"` is not `300`, `null` is not `""`, `true` is not `1`;
- comparison operators work on leaf values only: a field whose event value is an object
  does not exist for them (`{"exists": false}` matches it);
- arrays of objects are crushed: `{"a": {"b": [...]}}` looks into each element of an
  array `a`, and the fields it names must all match in one and the same element.

An operator it does not know raises `PatternUnsupported` rather than guessing either way.
"""

from __future__ import annotations

import ipaddress
import json
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_MISSING = object()
OR = "$or"

_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    "=": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
}
#: The forms `anything-but` takes besides a value or a list of values.
_NEGATABLE = ("prefix", "suffix", "equals-ignore-case", "wildcard")


class PatternUnsupported(ValueError):
    """A pattern this matcher cannot evaluate: an unknown operator or a malformed value."""


@dataclass(frozen=True)
class EventPattern:
    """A rule's event pattern, checked when parsed (every operator known)."""

    document: Mapping[str, Any]

    @classmethod
    def parse(cls, text: str) -> EventPattern:
        """The pattern in `text` (DescribeRule's `EventPattern`); `PatternUnsupported` if
        it is not one this matcher can evaluate."""
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise PatternUnsupported(f"the event pattern is not JSON: {exc}") from None
        if not isinstance(document, dict):
            raise PatternUnsupported("the event pattern is not a JSON object")
        _check_node(document)
        return cls(document)

    def matches(self, event: Any) -> bool:
        """Whether EventBridge would deliver `event` (a parsed JSON event) by this pattern."""
        return _node(self.document, event)


# --- checking a pattern ---------------------------------------------------------------------


def _check_node(node: Mapping[str, Any]) -> None:
    for key, value in node.items():
        if key == OR and _is_or(value):
            for branch in value:
                _check_node(branch)
        elif isinstance(value, dict):
            _check_node(value)
        elif isinstance(value, list):
            for matcher in value:
                _check_matcher(key, matcher)
        else:
            raise PatternUnsupported(f"{key!r}: a pattern's value must be an object or an array")


def _check_matcher(key: str, matcher: Any) -> None:
    if not isinstance(matcher, dict):
        if not _is_scalar(matcher):
            raise PatternUnsupported(f"{key!r}: {matcher!r} is not a value to match")
        return
    if len(matcher) != 1:
        raise PatternUnsupported(f"{key!r}: {matcher!r} must name one operator")
    [(name, operand)] = matcher.items()
    check = _CHECKS.get(name)
    if check is None:
        raise PatternUnsupported(f"{key!r}: operator {name!r} is not one this version knows")
    if not check(operand):
        raise PatternUnsupported(f"{key!r}: {name} {json.dumps(operand)} is malformed")


def _text_or_ignore_case(operand: Any) -> bool:
    if isinstance(operand, dict):
        return list(operand) == ["equals-ignore-case"] and isinstance(
            operand["equals-ignore-case"], str
        )
    return isinstance(operand, str)


def _numeric_ok(operand: Any) -> bool:
    if not isinstance(operand, list) or not operand or len(operand) % 2:
        return False
    pairs = zip(operand[::2], operand[1::2], strict=True)
    return all(op in _NUMERIC_OPS and _is_number(value) for op, value in pairs)


def _anything_but_ok(operand: Any) -> bool:
    if isinstance(operand, dict):
        if len(operand) != 1 or next(iter(operand)) not in _NEGATABLE:
            return False
        inner = next(iter(operand.values()))
        strings = inner if isinstance(inner, list) else [inner]
        return bool(strings) and all(isinstance(s, str) for s in strings)
    values = operand if isinstance(operand, list) else [operand]
    return bool(values) and all(isinstance(v, str) or _is_number(v) for v in values)


def _cidr_ok(operand: Any) -> bool:
    try:
        ipaddress.ip_network(operand, strict=False)
    except (TypeError, ValueError):
        return False
    return True


_CHECKS: dict[str, Callable[[Any], bool]] = {
    "prefix": _text_or_ignore_case,
    "suffix": _text_or_ignore_case,
    "equals-ignore-case": lambda operand: isinstance(operand, str),
    "wildcard": lambda operand: isinstance(operand, str),
    "numeric": _numeric_ok,
    "exists": lambda operand: isinstance(operand, bool),
    "anything-but": _anything_but_ok,
    "cidr": _cidr_ok,
}


# --- matching -------------------------------------------------------------------------------


def _node(pattern: Mapping[str, Any], value: Any) -> bool:
    """Whether the event's `value` at this level (an object, else nothing to look into)
    satisfies every field of `pattern`."""
    if isinstance(value, list):
        # An array of objects is crushed: one element must satisfy the whole node.
        objects = [item for item in _flat(value) if isinstance(item, dict)]
        if objects:
            return any(_node(pattern, item) for item in objects)
        value = _MISSING
    for key, sub in pattern.items():
        if key == OR and _is_or(sub):
            matched = any(_node(branch, value) for branch in sub)
        else:
            child = value.get(key, _MISSING) if isinstance(value, dict) else _MISSING
            matched = _node(sub, child) if isinstance(sub, dict) else _field(sub, child)
        if not matched:
            return False
    return True


def _field(matchers: list[Any], value: Any) -> bool:
    leaves = list(_leaves(value))
    for matcher in matchers:
        if isinstance(matcher, dict) and "exists" in matcher:
            if bool(leaves) is matcher["exists"]:
                return True
        elif any(_test(matcher, leaf) for leaf in leaves):
            return True
    return False


def _test(matcher: Any, leaf: Any) -> bool:
    if not isinstance(matcher, dict):
        return _same(matcher, leaf)
    [(name, operand)] = matcher.items()
    if name == "prefix":
        return _affix(operand, leaf, str.startswith)
    if name == "suffix":
        return _affix(operand, leaf, str.endswith)
    if name == "equals-ignore-case":
        return isinstance(leaf, str) and leaf.lower() == operand.lower()
    if name == "wildcard":
        return isinstance(leaf, str) and _wildcard(operand).fullmatch(leaf) is not None
    if name == "numeric":
        pairs = zip(operand[::2], operand[1::2], strict=True)
        return _is_number(leaf) and all(_NUMERIC_OPS[op](leaf, bound) for op, bound in pairs)
    if name == "cidr":
        return _in_network(leaf, operand)
    if name == "anything-but":
        return not _excluded(operand, leaf)
    raise PatternUnsupported(f"operator {name!r} is not one this version knows")


def _excluded(operand: Any, leaf: Any) -> bool:
    """Whether `anything-but`'s operand names `leaf` (so the leaf does not match)."""
    if isinstance(operand, dict):
        [(name, inner)] = operand.items()
        values = inner if isinstance(inner, list) else [inner]
        return any(_test({name: value}, leaf) for value in values)
    values = operand if isinstance(operand, list) else [operand]
    return any(_same(value, leaf) for value in values)


def _affix(operand: Any, leaf: Any, test: Callable[[str, str], bool]) -> bool:
    if not isinstance(leaf, str):
        return False
    if isinstance(operand, dict):
        return test(leaf.lower(), operand["equals-ignore-case"].lower())
    return test(leaf, operand)


def _same(expected: Any, leaf: Any) -> bool:
    """A plain value's match: equal, and of the same JSON type."""
    if expected is None or leaf is None:
        return expected is None and leaf is None
    if isinstance(expected, bool) or isinstance(leaf, bool):
        return isinstance(expected, bool) and isinstance(leaf, bool) and expected is leaf
    if _is_number(expected) and _is_number(leaf):
        return bool(expected == leaf)
    return isinstance(expected, str) and isinstance(leaf, str) and expected == leaf


def _in_network(leaf: Any, network: str) -> bool:
    if not isinstance(leaf, str):
        return False
    try:
        return ipaddress.ip_address(leaf) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


@lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    """`*` for any run of characters; `\\*` a star and `\\\\` a backslash."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and pattern[index + 1 : index + 2] in ("*", "\\"):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "*" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def _leaves(value: Any) -> Iterator[Any]:
    """The leaf values at a field: a scalar, or every scalar of an array (nested ones
    too); an object, or an array of objects only, has none."""
    if value is _MISSING or isinstance(value, dict):
        return
    if isinstance(value, list):
        yield from (item for item in _flat(value) if not isinstance(item, dict))
        return
    yield value


def _flat(items: list[Any]) -> Iterator[Any]:
    for item in items:
        if isinstance(item, list):
            yield from _flat(item)
        else:
            yield item


def _is_or(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(b, dict) for b in value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | bool) or _is_number(value)
