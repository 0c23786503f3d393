"""The outage benchmark runs end to end in its quick mode: breaker off and on, side by side."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import REPO


def test_quick_outage_benchmark_reports_both_rounds(tmp_path: Path) -> None:
    output = tmp_path / "outage.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.outage", "--quick", "--dynamodb", "moto",
         "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(output.read_text())
    off, on = figures["rounds"]["breaker off"], figures["rounds"]["breaker on"]
    # With the breaker, the outage exhausts nothing and every event is delivered once.
    assert on["exhausted"] == 0
    assert on["delivered_distinct"] == on["events"] and on["delivered_twice"] == 0
    assert on["sends_while_down"] < off["sends_while_down"]
    assert "recovery->last" in result.stdout and "cpu_model" in result.stdout
