"""Plain Python values to DynamoDB's typed attribute values and back (low-level client)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def key(event_id: str, route: str) -> dict[str, Any]:
    """The primary key of an item (`route` is `model.route_of` its EventKey)."""
    return {"event_id": {"S": event_id}, "route": {"S": route}}


def values(**named: Any) -> dict[str, Any]:
    """`ExpressionAttributeValues` from keyword arguments (`:name` placeholders)."""
    return {f":{name}": typed_value(value) for name, value in named.items()}


def typed(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: typed_value(value) for name, value in item.items()}


def typed_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value) if isinstance(value, float) else str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": typed({k: v for k, v in value.items() if v is not None})}
    if isinstance(value, list | tuple):
        return {"L": [typed_value(v) for v in value]}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"cannot store {type(value).__name__} in the ledger")


def plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: plain_value(value) for name, value in item.items()}


def plain_value(value: Mapping[str, Any]) -> Any:
    (kind, inner), *_ = value.items()
    if kind == "N":
        number = float(inner)
        return int(number) if number.is_integer() and "." not in inner else number
    if kind == "M":
        return plain(inner)
    if kind == "L":
        return [plain_value(v) for v in inner]
    if kind == "NULL":
        return None
    return inner
