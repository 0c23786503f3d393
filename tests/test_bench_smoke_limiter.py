"""The limiter benchmark runs end to end in its quick mode and reports no 429."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_limiter_benchmark_reports_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "limiter.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.limiter", "--quick", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    figures = json.loads(output.read_text())
    assert figures["simulator_429"] == 0
    assert figures["token_requests"] == 1
    assert figures["calls_ok"] > 0
    assert "achieved" in result.stdout
