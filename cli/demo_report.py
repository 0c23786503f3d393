"""The end of `dlq-replay demo`: its summary, checked against the ledger and counted by the
simulator, and the commands to paste next."""

from __future__ import annotations

import shlex
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cli.output import Output
from devstack.http_sink import HttpSink
from devstack.sim_admin import ANALYTICS_DETAILS, GET_CONVERSATION, PATCH_ATTRIBUTES, TOKEN
from devstack.stack import DevStack
from dlq.ledger import FINAL_STATUSES, LedgerItem


def summary_of(
    items: list[LedgerItem], stack: DevStack, expected: int, api: HttpSink
) -> dict[str, Any]:
    """The demo's outcomes from the ledger; its Genesys calls as the simulator counted
    them, every route (token, lookups, batch verification, PATCHes) and every answer."""
    counts = Counter(i.status.value for i in items)
    stats = stack.admin.stats()
    events = sum(1 for i in items if i.status.value != "rejected")
    final = sum(1 for i in items if i.status in FINAL_STATUSES)
    return {
        "replayed": counts["replayed"],
        "failed": counts["failed"],
        "exhausted": counts["exhausted"],
        "rejected": counts["rejected"],
        "duplicates_suppressed": sum(i.duplicates for i in items),
        "genesys_calls": stats.requests,
        "genesys_tokens": stats.count(TOKEN),
        "genesys_batch_verifications": stats.count(ANALYTICS_DETAILS),
        "genesys_lookups": stats.count(GET_CONVERSATION),
        "genesys_patches": stats.count(PATCH_ATTRIBUTES),
        "genesys_calls_per_event": round(stats.requests / events, 3) if events else 0.0,
        "genesys_429s": stats.status(429),
        "transformed_deliveries": sum(
            1
            for i in items
            if any(h.get("transformed") for h in i.history if h.get("outcome") == "replayed")
        ),
        "api_destination_calls": sum(api.event_ids.values()),
        "events": events,
        "consistent": len(items) == expected and final == expected,
    }


@dataclass(frozen=True)
class NextSteps:
    """Shell lines an operator pastes after the summary: `source` the env file, then look."""

    env_file: Path
    commands: list[str]


def next_steps(env_file: Path, items: list[LedgerItem]) -> NextSteps:
    """`source` the env file, then commands with the venv's `dlq-replay` by its absolute
    path (outside the venv it is not on PATH), naming event ids this run really has."""
    cli = shlex.quote(str(Path(sys.executable).with_name("dlq-replay")))
    commands = [f"source {shlex.quote(str(env_file))}", f"{cli} status"]
    unhappy = next((i for i in items if i.status.value in ("failed", "exhausted")), None)
    if unhappy is not None:
        commands.append(f"{cli} status --status {unhappy.status.value}")
        commands.append(f"{cli} inspect {shlex.quote(unhappy.event_id)}")
    # The live attributes of a conversation that exists (a failed item's may be deleted).
    tracked = next((i for i in items if i.status.value == "replayed" and i.conversation_id), None)
    if tracked is not None:
        commands.append(f"{cli} inspect --genesys {shlex.quote(tracked.event_id)}")
    return NextSteps(env_file, commands)


def removal(workdir: Path) -> str:
    return f"remove them with  rm -rf {shlex.quote(str(workdir))}"


def report(
    out: Output,
    summary: dict[str, Any],
    steps: NextSteps,
    workdir: Path,
    flower: dict[str, str],
    *,
    keeps_running: bool,
) -> None:
    if out.as_json:
        out.json(
            {
                **summary,
                "workdir": str(workdir),
                "env_file": str(steps.env_file),
                "commands": steps.commands,
                "stack_keeps_running": keeps_running,
                "remove_with": f"rm -rf {shlex.quote(str(workdir))}",
            }
        )
        return
    labels = {
        "replayed": "replayed",
        "failed": "failed (deleted conversation)",
        "exhausted": "exhausted (target always 503; parked)",
        "rejected": "rejected at ingest (malformed)",
        "duplicates_suppressed": "duplicates suppressed",
        "genesys_calls": "Genesys calls (every route, as the simulator counted them)",
        "genesys_tokens": "  of which token requests",
        "genesys_batch_verifications": "  of which batch verifications (analytics multi-get)",
        "genesys_lookups": "  of which single conversation lookups",
        "genesys_patches": "  of which attribute PATCHes",
        "genesys_calls_per_event": "Genesys calls per event",
        "genesys_429s": "Genesys 429s seen",
        "transformed_deliveries": "delivered as the rule's InputTransformer shapes them",
        "api_destination_calls": "calls to the API destination (API-key connection)",
    }
    out.table("demo summary", ["", "count"], [(labels[k], summary[k]) for k in labels])
    if keeps_running:
        out.line(
            "where to look next: paste these into another shell while the demo runs "
            "(Ctrl-C here stops its servers):",
            style="bold",
        )
    else:
        out.line(
            "where to look next: these need the demo's servers, which stop now (--no-wait); "
            "run `dlq-replay demo` without --no-wait to keep them up until Ctrl-C:",
            style="bold",
        )
    for command in steps.commands:
        out.line(f"  {command}")
    out.line(
        f"settings   {steps.env_file} (moto's dummy AWS keys and the simulator's test client: "
        "no real credential)"
    )
    out.line(f"logs       {workdir}/*.log")
    out.line(f"Flower     {flower['url']}  (demo / {flower['password']})")
    verdict = "consistent with the ledger" if summary["consistent"] else "NOT all final"
    ledger_items = summary["events"] + summary["rejected"]
    out.line(f"summary {verdict}: {ledger_items} ledger items", style="dim")
