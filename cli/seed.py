"""`dlq-replay seed`: fill a queue with synthetic but realistic DLQ messages."""

from __future__ import annotations

import click

from cli._common import friendly_errors, settings
from cli.output import Output
from dlq.errors import ConfigurationError


@click.command()
@click.option("--count", type=int, default=100, show_default=True, help="Events to generate.")
@click.option("--per-conversation", type=int, default=4, show_default=True)
@click.option("--presence", type=int, default=0, help="Extra events with no conversation.")
@click.option("--duplicates", type=int, default=0, help="Copies of events (EventBridge's dups).")
@click.option("--malformed", type=int, default=0, help="Messages that cannot be parsed.")
@click.option("--target-arn", "targets", multiple=True, help="Target ARN(s) for the messages.")
@click.option("--rule-arn", help="The RULE_ARN the messages name (its targets must match).")
@click.option("--queue-url", help="Queue to fill (default: DLQ_QUEUE_URL).")
@click.option("--seed", "rng_seed", type=int, default=None, help="Random seed (repeatable runs).")
@click.option(
    "--local",
    is_flag=True,
    help="Also create, on a local emulator (AWS_ENDPOINT_URL), the rule the messages name and "
    "its target (a crm-events queue unless --target-arn), so a drain redelivers them.",
)
@friendly_errors
def seed(
    count: int,
    per_conversation: int,
    presence: int,
    duplicates: int,
    malformed: int,
    targets: tuple[str, ...],
    rule_arn: str | None,
    queue_url: str | None,
    rng_seed: int | None,
    local: bool,
) -> None:
    """Put N synthetic DLQ messages into a queue, for trials and load tests."""
    from devstack.synthetic import DEFAULT_RULE, DEFAULT_TARGETS, generate, send_batches
    from dlq.aws import aws_client

    config = settings()
    if not queue_url:
        config.require("dlq_queue_url", purpose="seed (or pass --queue-url)")
        queue_url = config.dlq_queue_url
    if local:
        if rule_arn:
            raise ConfigurationError("seed --local creates the rule itself: drop --rule-arn")
        from devstack.rules import create_local_rule  # the dev stack, on request only

        made = create_local_rule(config, targets)
        rule_arn, targets = made.rule_arn, made.target_arns
    workload = generate(
        conversations=max(1, count // max(1, per_conversation)),
        events_per_conversation=per_conversation,
        presence_events=presence,
        duplicates=duplicates,
        malformed=malformed,
        org_id=config.genesys_org_id or "5b1f0d2e-8c34-4e1a-9a77-2d6c0e9f4b13",
        seed=rng_seed,
        target_arns=targets or DEFAULT_TARGETS,
        rule_arn=rule_arn or DEFAULT_RULE,
    )
    sent = send_batches(aws_client("sqs", config), queue_url, workload.messages)
    out = Output()
    if local:
        out.line(f"rule {rule_arn} on the emulator, targets: {', '.join(targets)}")
    out.line(
        f"sent {sent} messages to {queue_url}: {workload.unique_events} events over "
        f"{len(workload.conversation_ids)} conversations, {workload.duplicates} duplicates, "
        f"{workload.malformed} malformed"
    )
