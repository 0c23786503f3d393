"""The limiter benchmark runs end to end in its quick mode and reports no 429."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import REPO


def test_quick_limiter_benchmark_reports_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "limiter.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.limiter", "--quick", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    scenarios = json.loads(output.read_text())["scenarios"]
    assert set(scenarios) == {"high", "low", "follow"}
    for figures in scenarios.values():
        assert figures["simulator_429"] == 0
        assert figures["client_429"] == 0
        assert figures["token_requests"] == 1
        assert figures["calls_ok"] > 0
    assert scenarios["low"]["priority"] == "LOW"
    # Quick mode: 40 calls per 3 s, a budget of 85 % of it (680/min); the follow
    # scenario's server allows 12 per 3 s, which less its margin of 3 paces the fleet at
    # 180/min. Both leave a grant a third of a second to reach the server.
    assert scenarios["high"]["paced_per_minute"] == scenarios["high"]["budget_per_minute"]
    assert scenarios["follow"]["budget_per_minute"] == 680
    assert scenarios["follow"]["paced_per_minute"] == 180.0
    assert scenarios["high"]["slack_ms"] == 353
    assert scenarios["follow"]["slack_ms"] == 333
    assert "achieved" in result.stdout and "follow" in result.stdout
