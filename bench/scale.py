"""A scale model: what a real outage's backlog takes, from the figures `bench.budget` measured.

Mode: arithmetic on `bench.budget`'s figures; nothing runs.

Pure arithmetic, no stack. A backlog of `events` over `conversations` drains no faster
than the measured redelivery rate of one worker (the verify-off drain: redelivery that
waits on no Genesys read), and no redelivery of a conversation starts before its
verification, which spends the Genesys budget (per OAuth client: more workers do not
raise it). Tracking shares that budget, so it catches up when every verification call
and every PATCH has been paid for at the budget, and never before redelivery ends.
Three verification models side by side: this run's (its reads per conversation), the
batch at its best (one analytics multi-get per `batch` conversations), and single GETs
(one per conversation: the behaviour before batch verification).

    .venv/bin/python -m bench.scale                       # from bench/results/budget.json
    .venv/bin/python -m bench.scale --events 100000 --conversations 25000
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR

#: What a real outage leaves (issue 13): four events per conversation.
OUTAGE_EVENTS = 100_000
OUTAGE_CONVERSATIONS = 25_000
#: GENESYS_VERIFY_BATCH's default: ids per analytics multi-get.
BATCH = 100


def model(
    budget: Mapping[str, Any],
    *,
    events: int = OUTAGE_EVENTS,
    conversations: int = OUTAGE_CONVERSATIONS,
    batch: int = BATCH,
) -> dict[str, Any]:
    """The outage's figures from a `bench.budget` result (its `runs` and settings)."""
    runs = budget["runs"]
    on = runs["verify-on"]
    measured_conversations = budget["workload"]["conversations"]
    # Redelivery's own pace: the drain that reads nothing from Genesys, else this one.
    paced_by = runs.get("verify-off", on)
    drain_rate = budget["workload"]["events"] / paced_by["all_final_seconds"]
    inputs = {
        "events": events,
        "conversations": conversations,
        "budget_per_minute": budget["budget_per_minute"],
        "drain_events_per_second": round(drain_rate, 1),
        "drain_rate_from": (
            f"{paced_by['label']} run, worker spawn -> all final, one redelivery worker"
        ),
        "verification_reads_per_conversation": round(
            (on["genesys_lookups"] + on["genesys_batch_reads"]) / measured_conversations, 4
        ),
        "patches_per_conversation": round(on["genesys_patches"] / measured_conversations, 3),
        "batch": batch,
    }
    verification = {
        "measured": inputs["verification_reads_per_conversation"] * conversations,
        f"batch of {batch}": math.ceil(conversations / batch),
        "single GETs (before the batch)": conversations,
    }
    return {
        "inputs": inputs,
        "models": [_outcome(name, reads, inputs) for name, reads in verification.items()],
    }


def _outcome(name: str, verification_calls: float, inputs: Mapping[str, Any]) -> dict[str, Any]:
    per_minute = inputs["budget_per_minute"]
    patches = inputs["patches_per_conversation"] * inputs["conversations"]
    drain_minutes = inputs["events"] / inputs["drain_events_per_second"] / 60
    verification_minutes = verification_calls / per_minute
    redeliver = max(drain_minutes, verification_minutes)
    tracking = max(redeliver, (verification_calls + patches) / per_minute)
    return {
        "verification": name,
        "verification_calls": round(verification_calls),
        "verification_minutes": round(verification_minutes, 1),
        "patches": round(patches),
        "drain_minutes": round(drain_minutes, 1),
        "redeliver_minutes": round(redeliver, 1),
        "redelivery_bound_by": "drain rate" if drain_minutes >= verification_minutes else "budget",
        "tracking_caught_up_minutes": round(tracking, 1),
        "genesys_calls_per_event": round((verification_calls + patches) / inputs["events"], 3),
    }


def format_model(scaled: Mapping[str, Any]) -> str:
    inputs = scaled["inputs"]
    lines = [
        f"  scale model: {inputs['events']:,} events over {inputs['conversations']:,} "
        f"conversations, budget {inputs['budget_per_minute']}/min; inputs: drain "
        f"{inputs['drain_events_per_second']} events/s ({inputs['drain_rate_from']}), "
        f"{inputs['verification_reads_per_conversation']} verification reads and "
        f"{inputs['patches_per_conversation']} PATCHes per conversation (measured)",
        f"    {'verification':<32} {'calls':>7} {'min':>6} {'redeliver min':>13} "
        f"{'bound by':>10} {'tracking min':>12} {'calls/event':>11}",
    ]
    for row in scaled["models"]:
        lines.append(
            f"    {row['verification']:<32} {row['verification_calls']:>7,} "
            f"{row['verification_minutes']:>6.1f} {row['redeliver_minutes']:>13.1f} "
            f"{row['redelivery_bound_by']:>10} {row['tracking_caught_up_minutes']:>12.1f} "
            f"{row['genesys_calls_per_event']:>11.3f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--budget-results", type=Path, default=RESULTS_DIR / "budget.json")
    parser.add_argument("--events", type=int, default=OUTAGE_EVENTS)
    parser.add_argument("--conversations", type=int, default=OUTAGE_CONVERSATIONS)
    parser.add_argument("--batch", type=int, default=BATCH, help="GENESYS_VERIFY_BATCH")
    args = parser.parse_args(argv)
    if not args.budget_results.exists():
        parser.error(f"{args.budget_results} not found: run `python -m bench.budget` first")
    budget = json.loads(args.budget_results.read_text())
    print(
        format_model(
            model(budget, events=args.events, conversations=args.conversations, batch=args.batch)
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
