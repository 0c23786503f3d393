"""How close the shared rate limiter runs a fleet to its budget, and whether Genesys says 429.

Starts a throwaway redis-server and the Genesys simulator (as a child process, so it
does not share the GIL with the callers), then runs N processes x M threads doing
conversation lookups through `GenesysClient` for a bounded time. Prints the achieved
rate against the budget and the simulator's limit, and writes bench/results/limiter.json.

    .venv/bin/python -m bench.limiter            # 4 x 8 callers for 30 s
    .venv/bin/python -m bench.limiter --quick    # a few seconds, for a smoke test
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from devstack.process import ChildServer, free_port
from devstack.redis_server import RedisServer
from devstack.sim_admin import GET_CONVERSATION, TOKEN, SimAdmin
from dlq.genesys import build_genesys_client
from dlq.genesys.errors import GenesysRateLimited, RateLimitWait
from dlq.settings import Settings

CLIENT_ID = "bench-client"
CLIENT_SECRET = "bench-secret-0a1b2c"
RESULTS = Path(__file__).resolve().parent / "results" / "limiter.json"


def _caller_process(
    fields: dict[str, Any], barrier: Any, threads: int, seconds: float, out: Any
) -> None:
    """One worker process: `threads` callers looking up conversations as fast as allowed."""
    settings = Settings(_env_file=None, **fields)
    client = build_genesys_client(settings, redis.Redis.from_url(settings.redis_url))
    counts = {"ok": 0, "waits": 0, "429": 0, "errors": 0}
    lock = threading.Lock()

    def caller() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pause = 0.0
            try:
                client.get_conversation(str(uuid.uuid4()))
                outcome = "ok"
            except RateLimitWait as wait:
                outcome, pause = "waits", wait.retry_after or 0.0
            except GenesysRateLimited as limited:
                outcome, pause = "429", limited.retry_after or 0.0
            except Exception:
                outcome, pause = "errors", 0.1
            with lock:
                counts[outcome] += 1
            # A Celery task would reschedule itself; a thread just sleeps the same wait.
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))

    barrier.wait()
    started = time.time()
    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put({**counts, "started": started, "ended": time.time()})


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the stand-ins, run the fleet, and answer the figures."""
    per_minute = math.floor(args.sim_limit * args.budget_fraction * 60 / args.sim_window)
    with tempfile.TemporaryDirectory(prefix="bench-limiter-") as work:
        sim_port = free_port()
        sim_argv = [
            sys.executable, "-m", "devstack.genesys_sim", "--port", str(sim_port),
            "--auto-create", "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
            "--rate-limit", str(args.sim_limit), "--rate-window", str(args.sim_window),
        ]  # fmt: skip
        redis_server = RedisServer(Path(work) / "redis")
        with redis_server, ChildServer(sim_argv, sim_port, log=Path(work) / "sim.log"):
            sim_url = f"http://127.0.0.1:{sim_port}"
            fields = {
                "genesys_api_base_url": sim_url,
                "genesys_login_base_url": sim_url,
                "genesys_client_id": CLIENT_ID,
                "genesys_client_secret": CLIENT_SECRET,
                "genesys_rate_limit_per_minute": per_minute,
                "redis_url": redis_server.url,
            }
            ctx = multiprocessing.get_context("spawn")
            barrier, out = ctx.Barrier(args.processes), ctx.Queue()
            procs = [
                ctx.Process(
                    target=_caller_process,
                    args=(fields, barrier, args.threads, args.seconds, out),
                )
                for _ in range(args.processes)
            ]
            for proc in procs:
                proc.start()
            results = [out.get(timeout=args.seconds + 120) for _ in procs]
            for proc in procs:
                proc.join(timeout=30)
            stats = SimAdmin(sim_url).stats()

    elapsed = max(r["ended"] for r in results) - min(r["started"] for r in results)
    ok = sum(r["ok"] for r in results)
    return {
        "processes": args.processes,
        "threads": args.threads,
        "seconds": round(elapsed, 3),
        "simulator_limit_per_minute": round(args.sim_limit * 60 / args.sim_window, 1),
        "simulator_window_seconds": args.sim_window,
        "budget_per_minute": per_minute,
        "achieved_per_minute": round(ok / elapsed * 60, 1),
        "achieved_of_budget": round(ok / (per_minute * elapsed / 60), 3),
        "calls_ok": ok,
        "limiter_waits": sum(r["waits"] for r in results),
        "client_429": sum(r["429"] for r in results),
        "other_errors": sum(r["errors"] for r in results),
        "simulator_429": stats.status(429),
        "simulator_lookups": stats.count(GET_CONVERSATION),
        "token_requests": stats.count(TOKEN),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the figures, write them as JSON."""
    parser = argparse.ArgumentParser(prog="bench.limiter", description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--sim-limit", type=int, default=100, help="simulator calls per window")
    parser.add_argument("--sim-window", type=float, default=5.0, help="simulator window, s")
    parser.add_argument("--budget-fraction", type=float, default=0.9, help="of the sim limit")
    parser.add_argument("--quick", action="store_true", help="2 x 4 callers for 4 s")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.processes, args.threads, args.seconds = 2, 4, 4.0
        args.sim_limit, args.sim_window = 60, 3.0
    figures = run(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(
        f"limiter: {figures['processes']} processes x {figures['threads']} threads for "
        f"{figures['seconds']:.1f} s\n"
        f"  simulator limit {figures['simulator_limit_per_minute']:.0f}/min, "
        f"budget {figures['budget_per_minute']}/min\n"
        f"  achieved {figures['achieved_per_minute']:.0f}/min "
        f"({figures['achieved_of_budget']:.0%} of budget), {figures['calls_ok']} calls, "
        f"{figures['limiter_waits']} limiter waits\n"
        f"  429s: {figures['simulator_429']} (simulator), token requests: "
        f"{figures['token_requests']}\n"
        f"  written to {args.output}"
    )
    return 0 if figures["simulator_429"] == 0 and figures["other_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
