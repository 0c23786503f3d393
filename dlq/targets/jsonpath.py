"""The small JSONPath subset that EventBridge evaluates in `InputPath` and `InputPathsMap`.

The EventBridge User Guide lists what it supports: "dot notation (for example, `$.detail`),
dashes, underscores, alphanumeric characters, array indices, wildcards (*), forward slashes"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html).
The API reference adds that `InputPathsMap` must use "JSON dot notation, not bracket
notation" (https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_InputTransformer.html);
`[n]` array indices are still allowed (the guide's own example is `$.resources[0]`).

So a path is `$` followed by any number of steps:

- `.name`: the member `name` of an object; a name is any run of characters other than
  `.`, `[` and `]` (so `detail-type`, `instance-id`, `a/b` and `under_score` all work);
- `[n]`: element `n` (0-based, non-negative) of an array;
- `.*` or `[*]`: every member value of an object, or every element of an array.

A path without a wildcard selects one value or nothing. A path with a wildcard selects a
list of every match, in document order (the guide does not say what a wildcard yields; a
list is what JSONPath implementations return), and an empty list when nothing matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["PathSyntaxError", "Selection", "compile_path", "select"]

_WILDCARD = "*"
_INDEX = re.compile(r"\[(\d+|\*)\]")
_NAME = re.compile(r"\.([^.\[\]]+)")

Step = str | int
"""A member name, an array index, or `_WILDCARD`."""


class PathSyntaxError(ValueError):
    """The path is outside the subset EventBridge supports; the message says where."""


@dataclass(frozen=True, slots=True)
class Selection:
    """What a path selected: `found` is False when the event has nothing at that path."""

    found: bool
    value: Any = None


def compile_path(path: str) -> tuple[Step, ...]:
    """The steps of `path`; `PathSyntaxError` when it is not in the supported subset."""
    if not path.startswith("$"):
        raise PathSyntaxError(f"a JSON path starts with '$', not {path[:1]!r}")
    steps: list[Step] = []
    position = 1
    while position < len(path):
        index = _INDEX.match(path, position)
        if index is not None:
            text = index.group(1)
            steps.append(_WILDCARD if text == _WILDCARD else int(text))
            position = index.end()
            continue
        name = _NAME.match(path, position)
        if name is not None:
            steps.append(name.group(1))
            position = name.end()
            continue
        raise PathSyntaxError(
            f"unsupported syntax at character {position + 1}: use '.name', '[index]' or '*'"
        )
    return tuple(steps)


def select(path: str, document: Any) -> Selection:
    """Evaluate `path` against a parsed JSON `document`."""
    steps = compile_path(path)
    if _WILDCARD not in steps:
        node = document
        for step in steps:
            found, node = _child(node, step)
            if not found:
                return Selection(found=False)
        return Selection(found=True, value=node)
    nodes = [document]
    for step in steps:
        nodes = [child for node in nodes for child in _children(node, step)]
    return Selection(found=True, value=nodes)


def _child(node: Any, step: Step) -> tuple[bool, Any]:
    if isinstance(step, int):
        if isinstance(node, list) and step < len(node):
            return True, node[step]
        return False, None
    if isinstance(node, dict) and step in node:
        return True, node[step]
    return False, None


def _children(node: Any, step: Step) -> list[Any]:
    if step == _WILDCARD:
        if isinstance(node, dict):
            return list(node.values())
        if isinstance(node, list):
            return list(node)
        return []
    found, child = _child(node, step)
    return [child] if found else []
