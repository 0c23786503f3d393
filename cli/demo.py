"""`dlq-replay demo`: the whole product on this machine, no AWS account, no Genesys org.

It starts redis-server, moto's server as AWS and the Genesys simulator with realistic
faults (latency, some 503s, a 429 burst, a deleted conversation, a target that always
fails), fills the DLQ with a few hundred Genesys events, runs the poller, the workers,
beat and Flower, shows progress, and ends with a summary checked against the ledger.
"""

from __future__ import annotations

import json
import secrets
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import click
import redis
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from cli._common import friendly_errors, redis_of
from cli.demo_report import next_steps, removal, report, summary_of
from cli.output import Output
from devstack.http_sink import HttpSink
from devstack.process import free_port
from devstack.queues import create_local_dlq
from devstack.rules import create_demo_rules
from devstack.stack import DevStack, SimOptions
from devstack.synthetic import Workload, generate, send_batches
from dlq.aws import aws_client
from dlq.doctor import Severity
from dlq.ledger import FINAL_STATUSES, Ledger, LedgerItem
from dlq.logs import configure_logging
from dlq.provision import queue_name, setup
from dlq.settings import Settings, load_settings
from dlq.tracking import pending_runs
from ingest.poller import Poller

#: The target that always fails: an API destination of its own name, in the all-zeros
#: account no real one has, so its counts and listings never share a label with a real
#: target's (`events:api-destination/<name>`).
FAILING_TARGET = (
    "arn:aws:events:us-east-1:000000000000:api-destination/dlq-replay-demo-failing/always-503"
)
TARGET_QUEUE = "crm-events"
WEBHOOK_QUEUE = "crm-webhook-shaped"
PARKING_QUEUE = "dlq-replay-parking"
#: How long the demo waits, as it stops, for its poller's receive in hand (a 1 s wait).
POLLER_STOP_SECONDS = 5.0


@click.command()
@click.option("--events", type=int, default=400, show_default=True, help="DLQ events to seed.")
@click.option("--workers", type=int, default=16, show_default=True, help="Worker threads.")
@click.option(
    "--no-wait", is_flag=True, help="End after the summary (CI); default waits for Ctrl-C."
)
@click.option("--timeout", type=float, default=600, show_default=True, help="Give up after (s).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@friendly_errors
def demo(events: int, workers: int, no_wait: bool, timeout: float, as_json: bool) -> None:
    """Run the whole product locally against stand-ins, with faults, and report."""
    out = Output(as_json=as_json)
    workdir = Path(tempfile.mkdtemp(prefix="dlq-replay-demo-"))
    failing = HttpSink(status=503)
    api = HttpSink(status=200)
    stack = DevStack(
        workdir,
        SimOptions(latency_ms=20, error_rate=0.02, rate_limit=300, rate_window=60, seed=7),
    )
    poller: Poller | None = None
    polling: threading.Thread | None = None
    interruptible()
    try:
        failing.start()
        api.start()
        out.line(f"starting redis-server, moto and the Genesys simulator in {workdir}", style="dim")
        stack.start()
        config, targets = _configure(stack, failing, api)
        env_file = _write_env_file(stack, config, failing)
        # The poller runs in this process: its log goes beside the children's.
        configure_logging(
            secrets=[config.genesys_client_secret.get_secret_value()],
            stream=(workdir / "poller.log").open("a"),
        )
        workload = _seed(stack, config, events, targets)
        out.line(
            f"seeded the DLQ: {workload.unique_events} events over "
            f"{len(workload.conversation_ids)} conversations, {workload.duplicates} duplicates, "
            f"{workload.malformed} malformed",
            style="dim",
        )
        flower = _start_processes(stack, config, workers)
        # Counted as `dlq-replay poll` counts: `status` shows what this ingest did.
        poller = Poller.from_settings(config, redis_of(config), receivers=2, wait_seconds=1)
        polling = threading.Thread(target=poller.run, name="poller", daemon=True)
        polling.start()
        out.line(f"Flower: {flower['url']}  (user {flower['user']}, password {flower['password']})")

        ledger = Ledger(aws_client("dynamodb", config), config.ledger_table)
        expected = workload.unique_events + workload.malformed
        items = _follow(out, ledger, config, expected, timeout)
        summary = summary_of(items, stack, expected, api)
        steps = next_steps(env_file, items)
        report(out, summary, steps, stack.workdir, flower, keeps_running=not no_wait)
        if not no_wait:
            out.line("the stack keeps running; press Ctrl-C to stop it", style="bold")
            # Piped (`make demo | tee`), the lines above would wait in the buffer until exit.
            sys.stdout.flush()
            wait_for_ctrl_c()
        if not summary["consistent"]:
            sys.exit(1)
    except KeyboardInterrupt:
        out.line("stopping", style="dim")
    finally:
        if poller is not None:
            poller.stop()  # its run flushes the poller's counts as it ends: `status` sees them
        if polling is not None:
            polling.join(POLLER_STOP_SECONDS)
        stack.stop()
        failing.stop()
        api.stop()
        if not as_json:  # the JSON summary names the directory and the command itself
            out.line(f"the demo's files stay in {workdir}: {removal(workdir)}")


def wait_for_ctrl_c() -> None:
    """Sleep until Ctrl-C or SIGTERM (KeyboardInterrupt), awake every second: a signal
    another thread took is seen here within one."""
    while True:
        time.sleep(1.0)


def interruptible() -> None:
    """Ctrl-C and SIGTERM end the demo whatever its parent left it: SIGINT ignored (a
    background command of a shell without job control: POSIX has it ignore SIGINT and
    SIGQUIT) or blocked are both kept across exec, and a demo that says "press Ctrl-C"
    must then stop. Before any thread starts: threads take the main one's mask."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM ends the demo the way Ctrl-C does: through the cleanup in `demo`.
    raise KeyboardInterrupt


def _tuning(failing: HttpSink) -> dict[str, str]:
    """What the demo's processes run with besides the stack: quick retries, the failing sink."""
    return {
        "REPLAY_TRACKING_DEBOUNCE_SECONDS": "2",
        "REPLAY_BACKOFF_BASE": "1",
        "REPLAY_BACKOFF_MAX": "8",
        "REPLAY_MAX_ATTEMPTS": "4",
        # The always-503 target is there to show exhaustion and parking: with its breaker
        # (on by default) its events would wait out their 7-day age budget instead.
        # `python -m bench.outage --quick` shows the breaker.
        "REPLAY_BREAKER_FAILURES": "0",
        "REPLAY_RECONCILE_GRACE_SECONDS": "15",
        "REPLAY_HTTP_TARGETS": json.dumps({FAILING_TARGET: failing.url}),
        "GENESYS_RATE_LIMIT_PER_MINUTE": "280",
    }


def _write_env_file(stack: DevStack, config: Settings, failing: HttpSink) -> Path:
    """`<workdir>/demo.env`: every variable the follow-up commands need, to `source`."""
    return stack.write_env_file(
        stack.workdir / "demo.env",
        **_tuning(failing),
        DLQ_QUEUE_URL=config.dlq_queue_url,
        REPLAY_PARKING_QUEUE_URL=config.replay_parking_queue_url or "",
    )


@dataclass(frozen=True)
class DemoTargets:
    """The rule the demo's DLQ messages name, and its targets."""

    rule_arn: str
    crm_queue: str
    webhook_queue: str
    api_destination: str


def _configure(stack: DevStack, failing: HttpSink, api: HttpSink) -> tuple[Settings, DemoTargets]:
    """Point this process (and the children started later) at the stack; make the rule
    and its targets as a user has them before dlq-replay arrives."""
    stack.apply_env(**_tuning(failing))
    config = load_settings(_env_file=None)
    # The local queues are the dev stack's; the parking queue and the ledger are what
    # `dlq-replay setup` creates on a real account, so the demo runs that too.
    queues = create_local_dlq(
        aws_client("sqs", config), config.dlq_queue_url, extra=(TARGET_QUEUE, WEBHOOK_QUEUE)
    )
    dlq = queues[queue_name(config.dlq_queue_url)]
    stack.apply_env(
        DLQ_QUEUE_URL=dlq.url,
        REPLAY_PARKING_QUEUE_URL=dlq.url.rsplit("/", 1)[0] + f"/{PARKING_QUEUE}",
    )
    config = load_settings(_env_file=None)
    failed = [f for f in setup(config).findings if f.severity is Severity.FAIL]
    if failed:
        raise RuntimeError(f"the demo's own stack fails setup's review: {failed}")
    rules = create_demo_rules(
        config,
        crm_queue_arn=queues[TARGET_QUEUE].arn,
        webhook_queue_arn=queues[WEBHOOK_QUEUE].arn,
        failing_target_arn=FAILING_TARGET,
        sink_url=api.url,
        api_key=secrets.token_urlsafe(12),
    )
    targets = DemoTargets(
        rule_arn=rules.rule_arn,
        crm_queue=queues[TARGET_QUEUE].arn,
        webhook_queue=queues[WEBHOOK_QUEUE].arn,
        api_destination=rules.api_destination_arn,
    )
    return config, targets


def _seed(stack: DevStack, config: Settings, events: int, demo: DemoTargets) -> Workload:
    conversations = max(4, events // 4)
    # Most conversations go to the CRM queue; some to the webhook-shaped queue and the API
    # destination, which get the rule target's transformed input; one in twenty to the
    # target that always fails, and at least one does however few there are (never one of
    # the first three: they carry other faults).
    mix = [demo.crm_queue] * 13 + [demo.webhook_queue] * 3 + [demo.api_destination] * 3
    targets = [*mix[: max(3, min(19, conversations - 1))], FAILING_TARGET]
    workload = generate(
        rule_arn=demo.rule_arn,
        conversations=conversations,
        presence_events=max(2, events // 50),
        duplicates=max(2, events // 30),
        malformed=3,
        target_arns=targets,
        seed=11,
    )
    admin = stack.admin
    ids = workload.conversation_ids
    admin.delete(ids[0])  # a deleted conversation: its events fail, unredelivered
    admin.script(ids[1], [{"status": 429, "retry_after": 2}] * 3)  # a 429 burst
    admin.script(ids[2], [503, 503])  # a flaky moment: two 503s, then fine
    send_batches(aws_client("sqs", config), config.dlq_queue_url, workload.messages)
    return workload


def _start_processes(stack: DevStack, config: Settings, workers: int) -> dict[str, str]:
    stack.start_workers(concurrency=workers)
    stack.start_beat()
    port = free_port()
    password = secrets.token_urlsafe(9)
    env = stack.env(
        FLOWER_BASIC_AUTH=f"demo:{password}", FLOWER_DB=str(stack.workdir / "flower.db")
    )
    stack.spawn(
        [sys.executable, "-m", "celery", "-A", "tasks", "flower",
         f"--port={port}", "--address=127.0.0.1"],
        "flower",
        env,
    )  # fmt: skip
    return {"url": f"http://127.0.0.1:{port}", "user": "demo", "password": password}


def _follow(
    out: Output, ledger: Ledger, config: Settings, expected: int, timeout: float
) -> list[LedgerItem]:
    """Show progress until every event is final and tracking has caught up."""
    cache = redis.Redis.from_url(config.redis_url)
    deadline = time.monotonic() + timeout
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    items: list[LedgerItem] = []
    with Progress(*columns, disable=not out.rich, console=out.console) as progress:
        bar = progress.add_task("draining", total=expected)
        while time.monotonic() < deadline:
            items = list(ledger.scan())
            counts = Counter(i.status.value for i in items)
            final = sum(1 for i in items if i.status in FINAL_STATUSES)
            progress.update(bar, completed=final, description=_counts_line(counts))
            tracking = pending_runs(cache)
            if len(items) >= expected and final == len(items) and tracking == 0:
                return items
            time.sleep(0.5)
    out.error(f"not everything was final after {timeout:.0f} s")
    return items


def _counts_line(counts: Counter[str]) -> str:
    order = ("replayed", "failed", "exhausted", "rejected", "retry_scheduled", "in_progress",
             "received")  # fmt: skip
    return " ".join(f"{name} {counts[name]}" for name in order if counts[name])
