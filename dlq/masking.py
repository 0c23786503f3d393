"""Customer data in an event body, masked for display: the fields an operator names.

A field is named by a JSON path (RFC 9535's syntax, a subset of it):

- `$` the document; `.name` or `['name']` a member; `[n]` an array element;
- `*` (`.*`, `[*]`) every member or element;
- `..` the descendants: `$..ani` is every `ani` member at any depth;
- a path without the leading `$` is found anywhere: `ani` is `$..ani`, `from.id` is
  `$..from.id`.

Every value a path selects is replaced with `MASK`, whatever its type (a `null` stays
`null`: it hides nothing). The defaults are the phone numbers, names, addresses and message
texts that Genesys Cloud conversation events carry (`ani`, `dnis`, a participant's `name`
and `address`, an email's `fromAddress`, a message channel's `from.id`...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator
from pydantic_settings import NoDecode

from dlq.namelist import split_names

__all__ = [
    "DEFAULT_MASKED_FIELDS",
    "MASK",
    "MaskPath",
    "MaskPathError",
    "MaskedFields",
    "compile_mask_path",
    "compile_mask_paths",
    "mask_body",
    "mask_document",
]

MASK = "***"

#: What Genesys Cloud events say about the customer: phone numbers and addresses
#: (participants, calls, messages, emails, callbacks), names, and what they wrote or said.
DEFAULT_MASKED_FIELDS: tuple[str, ...] = (
    # phone numbers and addresses
    "ani",
    "dnis",
    "address",
    "addressFrom",
    "addressTo",
    "addressOther",
    "addressSelf",
    "addressRaw",
    "addressNormalized",
    "addressDisplay",
    "fromAddress",
    "toAddress",
    "phoneNumber",
    "email",
    "emailAddress",
    "callbackNumbers",
    "from.id",
    "to.id",
    # names
    "name",
    "nameRaw",
    "nickname",
    "firstName",
    "lastName",
    "callbackUserName",
    "remoteNameDisplayable",
    # what the customer wrote or said
    "$.detail.eventBody.body",
    "transcript",
    "text",
)

_WILDCARD = "*"
_MEMBER = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*|\*)")
_BRACKET = re.compile(r"\[(?:(\d+)|(\*)|'([^']*)'|\"([^\"]*)\")\]")

Selector = str | int
"""A member name, an array index, or `_WILDCARD`."""


class MaskPathError(ValueError):
    """A masked field's path is outside the supported syntax; the message says where."""


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a path: a selector, applied to the node or (`descendants`) to it and
    every node below it."""

    selector: Selector
    descendants: bool = False


@dataclass(frozen=True, slots=True)
class MaskPath:
    """A compiled path: `text` as the operator wrote it, `steps` as evaluated."""

    text: str
    steps: tuple[Step, ...]


def compile_mask_path(text: str) -> MaskPath:
    """The steps of `text`; `MaskPathError` when it is not in the supported syntax."""
    path = text.strip()
    if not path:
        raise MaskPathError("an empty path names no field")
    if not path.startswith("$"):
        path = "$.." + path.removeprefix("..").removeprefix(".")
    steps: list[Step] = []
    position = 1
    while position < len(path):
        descendants = path.startswith("..", position)
        if descendants:
            position += 1  # `..name` is `.name` applied to every node below
        member = _MEMBER.match(path, position)
        bracket = _BRACKET.match(path, position + 1 if descendants else position)
        if member is not None:
            steps.append(Step(member.group(1), descendants))
            position = member.end()
        elif bracket is not None:
            index, star, single, double = bracket.groups()
            selector: Selector = (
                int(index) if index is not None else _WILDCARD if star else single or double or ""
            )
            steps.append(Step(selector, descendants))
            position = bracket.end()
        else:
            raise MaskPathError(
                f"{text!r}: unsupported syntax at character {position + 1}: use '.name', "
                "'..name', \"['name']\", '[index]' or '*'"
            )
    if not steps:
        raise MaskPathError(f"{text!r} names the whole document, not a field")
    return MaskPath(text, tuple(steps))


def compile_mask_paths(texts: Iterable[str]) -> tuple[MaskPath, ...]:
    """Every path of a setting, compiled."""
    return tuple(compile_mask_path(text) for text in texts)


def _compilable(texts: list[str]) -> list[str]:
    compile_mask_paths(texts)  # its MaskPathError (a ValueError) says what is wrong
    return texts


#: The setting (REPLAY_MASKED_FIELDS): paths or names, comma-separated or a JSON list,
#: each checked when the settings are read.
MaskedFields = Annotated[
    list[str], NoDecode, BeforeValidator(split_names), AfterValidator(_compilable)
]


def mask_document(document: Any, paths: Iterable[MaskPath]) -> Any:
    """A copy of a parsed JSON `document` with every value the paths select masked."""
    masked = json.loads(json.dumps(document))
    holder = [masked]
    for path in paths:
        for container, key in list(_locate(holder, 0, path.steps)):
            if container[key] is not None:
                container[key] = MASK
    return holder[0]


def mask_body(body: str, paths: Sequence[MaskPath], *, indent: int | None = 2) -> str | None:
    """`body` with the fields masked, as JSON indented by `indent` (None: compact); None
    when it is not JSON (then no field can be told apart, and nothing of it may be shown)."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    separators = (",", ":") if indent is None else None
    masked = mask_document(document, paths)
    return json.dumps(masked, indent=indent, separators=separators, ensure_ascii=False)


def _locate(container: Any, key: Any, steps: tuple[Step, ...]) -> Iterator[tuple[Any, Any]]:
    """(container, key) of every value `steps` select, starting at `container[key]`."""
    step, rest = steps[0], steps[1:]
    for holder, name in _select(container[key], step):
        if rest:
            yield from _locate(holder, name, rest)
        else:
            yield holder, name


def _select(node: Any, step: Step) -> Iterator[tuple[Any, Any]]:
    nodes = _self_and_below(node) if step.descendants else [node]
    for candidate in nodes:
        yield from _children(candidate, step.selector)


def _children(node: Any, selector: Selector) -> Iterator[tuple[Any, Any]]:
    if isinstance(node, dict):
        if selector == _WILDCARD:
            yield from ((node, name) for name in node)
        elif isinstance(selector, str) and selector in node:
            yield node, selector
    elif isinstance(node, list):
        if selector == _WILDCARD:
            yield from ((node, index) for index in range(len(node)))
        elif isinstance(selector, int) and selector < len(node):
            yield node, selector


def _self_and_below(node: Any) -> list[Any]:
    found = [node]
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        found.extend(_self_and_below(child))
    return found
