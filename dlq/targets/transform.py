"""What EventBridge would have sent to a rule target: its `Input`, `InputPath` or
`InputTransformer` applied to the original event from the dead-letter queue.

A DLQ message holds the matched event, not what the target was sent; a faithful replay must
apply the target's input configuration again. `render` does that, as pure code.

Sources (the rules below quote them):

- User Guide, "Amazon EventBridge input transformation":
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html
  (text as of the awsdocs/amazon-eventbridge-user-guide snapshot of 2023-02-01, checked
  against the live page's predefined-variable list).
- API reference, `InputTransformer`:
  https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_InputTransformer.html
- API reference, `Target` (`Input`, `InputPath`):
  https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_Target.html

Rules, with what the guide says and what this module decided where it says nothing:

- `Input` is "valid JSON text passed to the target"; nothing from the event: it is sent as given.
- `InputPath` selects part of the event; the selection is sent as compact JSON (no spaces,
  member order and number text as in the event, non-ASCII as UTF-8): EventBridge delivers
  events minified, so the selected part is serialised the way the event itself arrives.
  A string selection is therefore sent as a JSON string, with its quotes. A path that
  selects nothing: the guide is silent; this module raises `InputTransformationFailed`
  rather than invent a payload.
- `InputTransformer`: up to 100 variables ("You can define up to 100 variables"; the API's
  `InputPathsMap` has at most 100 entries); names starting with `aws.` are reserved for the
  predefined variables ("you can't create variables with these names"; "The keys cannot
  start with 'AWS.'"). Either breach raises `InputTransformationFailed`.
- A template is substituted as text, keeping its own layout and escapes (the guide's
  outputs keep the template's spacing, and `\\"` in a template stays `\\"`):
  - a placeholder outside a JSON string (`"state": <state>`) becomes the value as JSON: a
    string gets quotes, an object or array its compact JSON, a number/boolean/null as is;
  - a placeholder inside a JSON string (`"state": "<state>"`, `"instance <instance> is in
    <state>"`) becomes the value's text: a string without quotes, anything else its JSON.
    "EventBridge doesn't escape values extracted by Input Path": a quote or backslash in
    a value goes in unescaped, exactly as EventBridge would send it;
  - a template that is a quoted string (a "string template") is sent with its quotes:
    the guide prints the output of `"instance <instance> is in <state>"` as
    `"instance i-0123456789 is in RUNNING"`. Every placeholder in it is in the string, even
    when the template holds unescaped inner quotes (the guide's note on templates set with
    the AWS CLI: the result is `"instance "i-0123456789" is in RUNNING"`).
- A path that selects nothing: "that variable isn't created and won't appear in the output".
  Inside a string it becomes nothing (the empty string). Outside a string the guide is
  silent; it becomes `null`, so the output stays JSON.
- `<name>` where `name` is neither a defined nor a predefined variable is left as written
  (the guide is silent; "The characters < and > can't be escaped", so such text is literal).
- Predefined variables:
  - `aws.events.rule-arn`: the rule's ARN;
  - `aws.events.rule-name`: the rule's name, the last part of
    `arn:aws:events:region:account:rule/[bus-name/]rule-name`;
  - `aws.events.event`: "the original event payload as JSON (without the `detail` field)";
  - `aws.events.event.json`: "the full original event payload as JSON (with the `detail`
    field)"; both as compact JSON, like `InputPath`;
  - `aws.events.event.ingestion-time`: "the time at which the event was received by
    EventBridge", an ISO 8601 timestamp. A replay cannot know EventBridge's ingestion time,
    so it uses the event's own `time` field (set by the source, or by EventBridge to the
    time of the PutEvents call when the source set none). Missing `time`: a missing path.
- A body that is not an EventBridge event (not JSON, not an object, or without `id`,
  `source`, `detail-type` and `detail`) is sent unchanged whatever the configuration, since
  EventBridge could only have sent an event; so is any body when nothing is configured.

Error messages name the rule, the variable or path and the fix, never the event's content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from dlq.errors import GiveUp
from dlq.targets.arn import Arn
from dlq.targets.eventjson import dump, loads
from dlq.targets.jsonpath import PathSyntaxError, Selection, select

__all__ = [
    "MAX_VARIABLES",
    "PREDEFINED_VARIABLES",
    "InputTransformationFailed",
    "InputTransformer",
    "Rendered",
    "TargetInput",
    "render",
]

MAX_VARIABLES = 100
RESERVED_PREFIX = "aws."
RULE_NAME = "aws.events.rule-name"
RULE_ARN = "aws.events.rule-arn"
EVENT = "aws.events.event"
EVENT_JSON = "aws.events.event.json"
INGESTION_TIME = "aws.events.event.ingestion-time"
PREDEFINED_VARIABLES = frozenset({RULE_ARN, RULE_NAME, EVENT, EVENT_JSON, INGESTION_TIME})
ENVELOPE_KEYS = ("id", "source", "detail-type", "detail")
GUIDE = "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-transform-target-input.html"


class InputTransformationFailed(GiveUp):
    """The target's input configuration cannot be applied to this event.

    The message says what is wrong and how to fix it; it never holds the event's content.
    """


@dataclass(frozen=True, slots=True)
class InputTransformer:
    """A target's `InputTransformer`: variables (`InputPathsMap`) and the `InputTemplate`."""

    paths_map: Mapping[str, str]
    template: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths_map", MappingProxyType(dict(self.paths_map)))

    def __hash__(self) -> int:
        return hash((frozenset(self.paths_map.items()), self.template))


@dataclass(frozen=True, slots=True)
class TargetInput:
    """The input part of a rule target's configuration (what ListTargetsByRule returns)."""

    input: str | None = None
    input_path: str | None = None
    transformer: InputTransformer | None = None

    @classmethod
    def from_target(cls, target: Mapping[str, Any]) -> TargetInput:
        """The input configuration of a `Target` dict from `events:ListTargetsByRule`."""
        where = f"target {target.get('Id', '?')!s} ({target.get('Arn', 'no Arn')!s})"
        constant = target.get("Input")
        path = target.get("InputPath")
        raw = target.get("InputTransformer")
        if constant is not None and not isinstance(constant, str):
            raise InputTransformationFailed(f"{where}: Input is not a string")
        if path is not None and not isinstance(path, str):
            raise InputTransformationFailed(f"{where}: InputPath is not a string")
        transformer = None
        if raw is not None:
            template = raw.get("InputTemplate") if isinstance(raw, Mapping) else None
            paths = raw.get("InputPathsMap", {}) if isinstance(raw, Mapping) else None
            if not isinstance(template, str) or not isinstance(paths, Mapping):
                raise InputTransformationFailed(
                    f"{where}: InputTransformer needs an InputTemplate string and an "
                    "InputPathsMap object; read the target again with ListTargetsByRule"
                )
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in paths.items()):
                raise InputTransformationFailed(
                    f"{where}: InputPathsMap must map variable names to JSON path strings"
                )
            transformer = InputTransformer(paths_map=paths, template=template)
        return cls(input=constant, input_path=path, transformer=transformer)

    @property
    def configured(self) -> bool:
        """Whether the target changes what it is sent (else it gets the event as it is)."""
        return self.input is not None or self.input_path is not None or self.transformer is not None

    def to_dict(self) -> dict[str, Any]:
        """The `Target` keys this configuration came from; `from_target` reads it back."""
        out: dict[str, Any] = {}
        if self.input is not None:
            out["Input"] = self.input
        if self.input_path is not None:
            out["InputPath"] = self.input_path
        if self.transformer is not None:
            transformer: dict[str, Any] = {"InputTemplate": self.transformer.template}
            if self.transformer.paths_map:
                transformer["InputPathsMap"] = dict(self.transformer.paths_map)
            out["InputTransformer"] = transformer
        return out


@dataclass(frozen=True, slots=True)
class Rendered:
    """What to send to the target."""

    payload: str
    transformed: bool

    @property
    def digest(self) -> str:
        """`sha256:` and the hex digest of the payload's UTF-8 bytes."""
        return "sha256:" + hashlib.sha256(self.payload.encode("utf-8")).hexdigest()


def render(target_input: TargetInput, body: str, *, rule_arn: str) -> Rendered:
    """The payload EventBridge would have sent to the target for the event in `body`.

    `body` is the DLQ message body; `rule_arn` the rule whose target missed it (the DLQ
    message's `RULE_ARN` attribute). Raises `InputTransformationFailed` when the
    configuration cannot be applied; the message names the rule and the fix.

    `<aws.events.event.ingestion-time>` is the event's own `time` field: the time
    EventBridge received the event is not in the DLQ message, so a replay cannot know it.
    """
    if not target_input.configured:
        return Rendered(body, transformed=False)
    event = _envelope(body)
    if event is None:
        return Rendered(body, transformed=False)
    kinds = [
        name
        for name, value in (
            ("Input", target_input.input),
            ("InputPath", target_input.input_path),
            ("InputTransformer", target_input.transformer),
        )
        if value is not None
    ]
    if len(kinds) > 1:
        raise InputTransformationFailed(
            f"Rule {rule_arn}: the target sets {' and '.join(kinds)}; EventBridge accepts "
            "only one of Input, InputPath and InputTransformer. Fix: read the target again "
            "with ListTargetsByRule and keep one of them."
        )
    if target_input.input is not None:
        return Rendered(target_input.input, transformed=True)
    if target_input.input_path is not None:
        return Rendered(_input_path(target_input.input_path, event, rule_arn), transformed=True)
    assert target_input.transformer is not None
    return Rendered(_transform(target_input.transformer, event, rule_arn), transformed=True)


# --- the event, read so that re-serialising changes nothing but spacing (`eventjson`)


def _envelope(body: str) -> dict[str, Any] | None:
    """The event in `body`, or None when `body` is not an EventBridge event."""
    try:
        event = loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or any(key not in event for key in ENVELOPE_KEYS):
        return None
    return event


def _text(value: Any) -> str:
    """A value's text inside a JSON string: a string as it is (unescaped), else its JSON."""
    return value if isinstance(value, str) else dump(value)


# --- InputPath


def _input_path(path: str, event: dict[str, Any], rule_arn: str) -> str:
    selection = _select(path, event, rule_arn, what=f"InputPath {path!r}")
    if not selection.found:
        raise InputTransformationFailed(
            f"Rule {rule_arn}: the target's InputPath {path!r} selects nothing in event "
            f"{dump(event['id'])}, and the EventBridge guide does not say what it sends "
            f"then ({GUIDE}). Fix: replay this event without its InputPath or to a target "
            "whose InputPath matches it."
        )
    return dump(selection.value)


def _select(path: str, event: dict[str, Any], rule_arn: str, *, what: str) -> Selection:
    try:
        return select(path, event)
    except PathSyntaxError as error:
        raise InputTransformationFailed(
            f"Rule {rule_arn}: the target's {what} is not a JSON path EventBridge supports "
            f"({error}). Fix: correct it with put-targets (dot notation, [index] or *; "
            f"see {GUIDE}), then replay."
        ) from None


# --- InputTransformer

_Resolve = Callable[[str], Selection | None]


def _transform(transformer: InputTransformer, event: dict[str, Any], rule_arn: str) -> str:
    names = list(transformer.paths_map)
    if len(names) > MAX_VARIABLES:
        raise InputTransformationFailed(
            f"Rule {rule_arn}: the target's InputTransformer defines {len(names)} variables; "
            f"EventBridge allows at most {MAX_VARIABLES}. Fix: remove variables from its "
            "InputPathsMap with put-targets, then replay."
        )
    reserved = sorted(name for name in names if name.lower().startswith(RESERVED_PREFIX))
    if reserved:
        raise InputTransformationFailed(
            f"Rule {rule_arn}: the target's InputPathsMap defines {', '.join(reserved)}; "
            f"names starting with {RESERVED_PREFIX!r} are reserved for EventBridge's "
            "predefined variables. Fix: rename the variable in InputPathsMap and in the "
            "InputTemplate with put-targets, then replay."
        )
    return _substitute(transformer.template, _resolver(transformer, event, rule_arn))


def _resolver(transformer: InputTransformer, event: dict[str, Any], rule_arn: str) -> _Resolve:
    """Looks up a variable by name: its selection, or None when no such variable exists."""
    cache: dict[str, Selection] = {}

    def resolve(name: str) -> Selection | None:
        if name not in cache:
            if name in transformer.paths_map:
                path = transformer.paths_map[name]
                what = f"InputPathsMap variable {name!r} ({path!r})"
                cache[name] = _select(path, event, rule_arn, what=what)
            elif name in PREDEFINED_VARIABLES:
                cache[name] = _predefined(name, event, rule_arn)
            else:
                return None
        return cache[name]

    return resolve


def _predefined(name: str, event: dict[str, Any], rule_arn: str) -> Selection:
    if name == RULE_ARN:
        return Selection(found=True, value=rule_arn)
    if name == RULE_NAME:
        return Selection(found=True, value=_rule_name(rule_arn))
    if name == EVENT:
        return Selection(found=True, value={k: v for k, v in event.items() if k != "detail"})
    if name == EVENT_JSON:
        return Selection(found=True, value=event)
    # INGESTION_TIME: EventBridge's own receipt time is lost; the event's `time` stands in.
    return Selection(found="time" in event, value=event.get("time"))


def _rule_name(rule_arn: str) -> str:
    """The name in `arn:aws:events:region:account:rule/[bus-name/]rule-name`."""
    arn = Arn.parse(rule_arn)
    if arn is None or arn.service != "events" or not arn.resource.startswith("rule/"):
        raise InputTransformationFailed(
            f"Rule {rule_arn!r} is not a rule ARN, so <{RULE_NAME}> has no value. Fix: give "
            "the ARN of the rule (arn:aws:events:region:account:rule/[bus-name/]rule-name), "
            "as in the DLQ message's RULE_ARN attribute."
        )
    name = arn.resource.rsplit("/", 1)[-1]
    if not name:
        raise InputTransformationFailed(
            f"Rule {rule_arn!r} has an empty rule name, so <{RULE_NAME}> has no value. Fix: "
            "give the ARN of the rule as in the DLQ message's RULE_ARN attribute."
        )
    return name


def _substitute(template: str, resolve: _Resolve) -> str:
    """`template` with every `<variable>` replaced, as text (see the module docstring)."""
    string_template = template.lstrip().startswith('"')
    out: list[str] = []
    in_string = False
    position = 0
    while position < len(template):
        char = template[position]
        if char == "<":
            end = template.find(">", position + 1)
            name = template[position + 1 : end] if end != -1 else ""
            selection = resolve(name) if name and "<" not in name else None
            if selection is not None:
                out.append(_placeholder(selection, quoted=in_string or string_template))
                position = end + 1
                continue
        elif char == "\\" and in_string:
            out.append(template[position : position + 2])
            position += 2
            continue
        elif char == '"':
            in_string = not in_string
        out.append(char)
        position += 1
    return "".join(out)


def _placeholder(selection: Selection, *, quoted: bool) -> str:
    if not selection.found:
        return "" if quoted else "null"
    return _text(selection.value) if quoted else dump(selection.value)
