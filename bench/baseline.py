"""The baseline: the sequential DLQ replayer the usual tutorial writes, on the same stack.

Mode: the tutorial's sequential loop draining the DLQ itself; no ledger, no worker.

One event at a time: receive from the DLQ, GET the conversation, PATCH its customer
participant "retrying", redeliver to the target, PATCH "done", delete the message.
No ledger, no cache, no coalescing; a 429 sleeps its Retry-After and tries again. It
does strictly less bookkeeping than the project (no DynamoDB at all), so its throughput
is a generous bound for that design. `bench.drain` runs it in the same run as the
project; on its own:

    .venv/bin/python -m bench.baseline            # 1,010 events
    .venv/bin/python -m bench.baseline --quick    # 21 events
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from bench import backends
from bench.common import (
    QUICK,
    RESULTS_DIR,
    STANDARD,
    BenchStack,
    WorkloadSpec,
    bench_stack,
    machine,
    per,
    write_results,
)
from bench.cpu import CpuMeter, cpu_split
from devstack.sim_admin import GET_CONVERSATION, PATCH_ATTRIBUTES, TOKEN
from devstack.stack import SIM_CLIENT_ID, SIM_CLIENT_SECRET

RESULTS = RESULTS_DIR / "baseline.json"


class SequentialReplayer:
    """The tutorial's loop, with `requests` against Genesys and the target."""

    def __init__(self, *, sqs: Any, queue_url: str, genesys_url: str, target_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._genesys = genesys_url
        self._target = target_url
        self._http = requests.Session()
        self._token: str | None = None
        self.processed = 0
        self.sleeps_429 = 0

    def run(self) -> int:
        """Until a receive comes back empty; answers how many messages were processed."""
        while True:
            messages = self._sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return self.processed
            for message in messages:
                self.process(message["Body"])
                self._sqs.delete_message(
                    QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                self.processed += 1

    def process(self, body: str) -> None:
        event = json.loads(body)
        conversation_id = event.get("detail", {}).get("eventBody", {}).get("conversationId")
        participant_id = None
        if conversation_id:
            conversation = self._call("GET", f"/api/v2/conversations/{conversation_id}").json()
            participant_id = next(
                (p["id"] for p in conversation["participants"] if p.get("purpose") == "customer"),
                None,
            )
            self._mark(conversation_id, participant_id, "retrying")
        response = self._http.post(
            self._target, data=body, headers={"Content-Type": "application/json"}, timeout=15
        )
        response.raise_for_status()
        if conversation_id:
            self._mark(conversation_id, participant_id, "done")

    def _mark(self, conversation_id: str, participant_id: str | None, state: str) -> None:
        if participant_id is None:
            return
        self._call(
            "PATCH",
            f"/api/v2/conversations/{conversation_id}/participants/{participant_id}/attributes",
            json={"attributes": {"dlqReplayStatus": state}},
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        while True:
            headers = {"Authorization": f"Bearer {self._bearer()}"}
            response = self._http.request(
                method, self._genesys + path, headers=headers, timeout=10, **kwargs
            )
            if response.status_code == 429:
                self.sleeps_429 += 1
                time.sleep(float(response.headers.get("Retry-After", "1")))
                continue
            response.raise_for_status()
            return response

    def _bearer(self) -> str:
        if self._token is None:
            response = self._http.post(
                self._genesys + "/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(SIM_CLIENT_ID, SIM_CLIENT_SECRET),
                timeout=10,
            )
            response.raise_for_status()
            self._token = str(response.json()["access_token"])
        return self._token


def run_baseline(stack: BenchStack, spec: WorkloadSpec) -> dict[str, Any]:
    """Fill the DLQ, then time the sequential replayer from its first receive to empty."""
    stack.fresh_round("baseline")
    fill_seconds = stack.fill_dlq(spec.generate())
    replayer = SequentialReplayer(
        sqs=stack.sqs,
        queue_url=stack.settings.dlq_queue_url,
        genesys_url=stack.dev.sim_url,
        target_url=stack.sink.url,
    )
    meter = CpuMeter(stack.pids()).start()
    started = time.perf_counter()
    processed = replayer.run()
    seconds = time.perf_counter() - started
    cpu = meter.stop()
    genesys = stack.dev.admin.stats()
    sink = stack.sink.counts()
    calls = genesys.count(GET_CONVERSATION) + genesys.count(PATCH_ATTRIBUTES)
    return {
        "events": spec.events,
        "processed": processed,
        "setup_fill_seconds": round(fill_seconds, 2),
        "seconds": round(seconds, 3),
        "events_per_second": round(processed / seconds, 1),
        "sink_posts": sink["posts"],
        "genesys_lookups": genesys.count(GET_CONVERSATION),
        "genesys_patches": genesys.count(PATCH_ATTRIBUTES),
        "genesys_tokens": genesys.count(TOKEN),
        "genesys_429": genesys.status(429),
        "genesys_calls_per_event": per(calls, processed),
        "cpu_seconds": cpu,
        "cpu_split": cpu_split(cpu, wall=seconds, events=processed),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.baseline", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="21 events")
    backends.add_option(parser)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    spec = QUICK if args.quick else STANDARD
    with bench_stack("baseline", latency_ms=20.0, dynamodb=args.dynamodb) as stack:
        figures = {
            "benchmark": "baseline",
            "machine": machine(),
            "dynamodb_backend": stack.backend.describe(),
            **run_baseline(stack, spec),
        }
    write_results(args.output, figures)
    print(
        f"baseline: {figures['processed']} events in {figures['seconds']:.1f} s = "
        f"{figures['events_per_second']:.1f} events/s, "
        f"{figures['genesys_calls_per_event']:.2f} Genesys calls/event\n"
        f"  written to {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
