"""JSON as EventBridge delivers it: numbers keep their text, the output is compact.

An event's payload is re-serialised when a target's `InputPath` or `InputTransformer`
selects part of it (`dlq.targets.transform`). `loads` keeps each number as written, so
`dump` changes nothing of a value but its spacing: no spaces, members in their order,
numbers as written (`1.50` stays `1.50`, `1e3` stays `1e3`), non-ASCII as UTF-8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Number:
    """A JSON number kept as written."""

    text: str


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: str) -> Any:
    """The JSON value in `text`, its numbers as `Number`s.

    Raises `ValueError` when `text` is not JSON (`NaN` and `Infinity` are not) and
    `RecursionError` when it nests too deep.
    """
    return json.loads(text, parse_int=Number, parse_float=Number, parse_constant=_no_constant)


def dump(value: Any) -> str:
    """Compact JSON: no spaces, members in their order, numbers as written, UTF-8 text."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, Number):
        return value.text
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(dump(item) for item in value) + "]"
    if isinstance(value, dict):
        members = (json.dumps(k, ensure_ascii=False) + ":" + dump(v) for k, v in value.items())
        return "{" + ",".join(members) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")
