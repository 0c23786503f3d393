"""Every kind of target this service redelivers to, and which kind an ARN names.

Adding a kind is one module declaring a `TargetKind` and one line in `KINDS`.
"""

from __future__ import annotations

from collections.abc import Collection

from dlq.targets import (
    apidestination,
    awslambda,
    eventbus,
    firehose,
    http,
    kinesis,
    sns,
    sqs,
    stepfunctions,
)
from dlq.targets.arn import Arn
from dlq.targets.errors import UnsupportedTarget
from dlq.targets.kind import TargetKind

#: In the order the guidance lists them.
KINDS: dict[str, TargetKind] = {
    kind.name: kind
    for kind in (
        awslambda.KIND,
        sqs.KIND,
        sns.KIND,
        stepfunctions.KIND,
        kinesis.KIND,
        firehose.KIND,
        eventbus.KIND,
        apidestination.KIND,
        http.KIND,
    )
}

_BY_ARN_SERVICE: dict[str, list[TargetKind]] = {}
for _kind in KINDS.values():
    if _kind.arn_service:
        _BY_ARN_SERVICE.setdefault(_kind.arn_service, []).append(_kind)

SUPPORTED = ", ".join(kind.label for kind in KINDS.values())


def kind_named(name: str) -> TargetKind:
    """The kind called `name`; a name no module declares is a programming error, said loudly."""
    try:
        return KINDS[name]
    except KeyError:
        raise LookupError(f"no target kind {name!r}; known kinds: {', '.join(KINDS)}") from None


def unsupported(target_arn: str, why: str) -> UnsupportedTarget:
    """The error for a target this service cannot redeliver to, with what to do about it."""
    return UnsupportedTarget(
        f"cannot redeliver to {target_arn!r}: {why}. Supported: {SUPPORTED}. Route it with "
        f'REPLAY_TARGET_OVERRIDES=\'{{"{target_arn}": "<ARN of a supported target>"}}\' or '
        f'REPLAY_HTTP_TARGETS=\'{{"{target_arn}": "https://..."}}\' on the replay workers '
        "(restart them with it), then redrive",
        target_arn=target_arn,
        code="UnsupportedTarget",
    )


def kind_of(target_arn: str, *, http_targets: Collection[str] = ()) -> TargetKind:
    """The kind of target `target_arn` names, else `UnsupportedTarget`.

    `http_targets` are the ARNs configured as HTTP endpoints (REPLAY_HTTP_TARGETS); they
    win over the ARN's own service, so an API destination or any other ARN can be mapped.
    """
    if target_arn in http_targets:
        return KINDS["http"]
    arn = Arn.parse(target_arn)
    if arn is None:
        raise unsupported(target_arn, "it is not an ARN")
    kinds = _BY_ARN_SERVICE.get(arn.service)
    if kinds is None:
        raise unsupported(target_arn, f"{arn.service!r} targets are not supported")
    for kind in kinds:
        if arn.resource.startswith(kind.resource_prefix) and arn.region and arn.account:
            return kind
    raise unsupported(target_arn, f"it is not the ARN of a {arn.service} target")


def target_kind(target_arn: str, *, http_targets: Collection[str] = ()) -> str:
    """The name of the kind `target_arn` names (see `kind_of`)."""
    return kind_of(target_arn, http_targets=http_targets).name
