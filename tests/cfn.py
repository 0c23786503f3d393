"""template.yaml as the tests read it: parsed, and its intrinsics evaluated for given parameters.

`load_template()` parses the template (`!Ref X` as {"Ref": X}, `!Sub s` as {"Fn::Sub": s});
`resolve()` evaluates what CloudFormation would for a set of parameter values (Ref,
Condition, Fn::If, Fn::Sub, Fn::Join...); `deployed_statements()` is a policy's statements
as a stack with those values would have them. A `Fn::GetAtt` is left as it is: its value
exists only once the resource does.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import yaml
from helpers import REPO

#: The pseudo parameters, as in a stack in us-east-1 of the commercial partition.
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "dlq-replay",
}
#: `!Ref AWS::NoValue`: the property or list item is left out.
NO_VALUE = {"Ref": "AWS::NoValue"}


class CloudFormationLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `!Ref X` as {"Ref": X} and `!Sub s` as {"Fn::Sub": s}."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


CloudFormationLoader.add_multi_constructor("!", _intrinsic)


@functools.cache
def _parsed(name: str) -> dict[str, Any]:
    text = (REPO / name).read_text()
    return yaml.load(text, Loader=CloudFormationLoader)  # noqa: S506 (safe loader subclass)


def load_template(name: str = "template.yaml") -> dict[str, Any]:
    """A template of the repository (template.yaml, or deploy/fleet.yaml), parsed once per
    session (a copy each time: tests may not share edits)."""
    return copy.deepcopy(_parsed(name))


def parameter_values(template: dict[str, Any], **overrides: str) -> dict[str, Any]:
    """Each parameter's value: its default unless overridden; list parameters as lists."""
    values: dict[str, Any] = {}
    for name, parameter in template["Parameters"].items():
        raw = overrides.get(name, parameter.get("Default"))
        if parameter["Type"] == "CommaDelimitedList" and raw is not None:
            raw = str(raw).split(",")
        values[name] = raw
    return values


def resolve(template: dict[str, Any], value: Any, params: dict[str, Any]) -> Any:
    """Evaluate Ref, Condition, Fn::If and the Fn:: functions the template uses, the way
    CloudFormation would for these parameter values (`NO_VALUE` where a value is left out)."""

    def go(v: Any) -> Any:
        return resolve(template, v, params)

    if isinstance(value, list):
        return [item for item in (go(v) for v in value) if item != NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) != 1 or not _is_intrinsic(next(iter(value))):
        resolved = {k: go(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v != NO_VALUE}
    ((key, arg),) = value.items()
    if key == "Ref":
        if arg == "AWS::NoValue":
            return NO_VALUE
        if arg in template["Resources"]:
            return value  # a resource's name or ARN: known once it exists
        return PSEUDO[arg] if arg in PSEUDO else params[arg]
    if key == "Condition":
        return go(template["Conditions"][arg])
    if key == "Fn::If":
        condition, when_true, when_false = arg
        return go(when_true if go({"Condition": condition}) else when_false)
    if key == "Fn::Equals":
        left, right = go(arg)
        return left == right
    if key == "Fn::Not":
        return not go(arg[0])
    if key == "Fn::And":
        return all(go(v) for v in arg)
    if key == "Fn::Or":
        return any(go(v) for v in arg)
    if key == "Fn::Join":
        separator, items = arg
        return separator.join(go(items))
    if key == "Fn::Split":
        separator, source = arg
        return go(source).split(separator)
    if key == "Fn::Select":
        index, items = arg
        return go(items)[int(index)]
    if key == "Fn::Sub":
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        names = {k: go(v) for k, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match[1]
            if name in names:
                return str(names[name])
            if "." in name:  # ${Resource.Attribute}: known once it exists
                return match[0]
            return str(go({"Ref": name}))

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)
    return value


def _is_intrinsic(key: str) -> bool:
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def condition_holds(name: str, **overrides: str) -> bool:
    template = load_template()
    return bool(resolve(template, {"Condition": name}, parameter_values(template, **overrides)))


def all_statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy's statements as written, with both branches of a conditional statement."""
    found: list[dict[str, Any]] = []
    for statement in document["Statement"]:
        branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
        found.extend(b for b in branches if b != NO_VALUE)
    return found


def deployed_statements(
    template: dict[str, Any], document: dict[str, Any], **overrides: str
) -> list[dict[str, Any]]:
    """A policy's statements as a stack with these parameter values has them."""
    params = parameter_values(template, **overrides)
    return list(resolve(template, document["Statement"], params))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_matches(pattern: str, arn: str) -> bool:
    """IAM's ARN wildcards: `*` any run of characters (slashes included), `?` one."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, arn) is not None
