"""`bench.against`: a benchmark from another commit's worktree and from this checkout, in pairs.

What is checked is that each side runs its own code, that the worktree goes away, and
how the figures are read and summed up; never how fast anything ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

from bench.against import RunFailed, commit_of, figures_of, run, summarise, worktree

#: `bench.against` checks out a commit beside this checkout: it needs git's metadata here.
needs_git = pytest.mark.skipif(
    subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--is-inside-work-tree"],
        capture_output=True,
        check=False,
    ).returncode
    != 0,
    reason="this checkout has no git metadata (an export): bench.against needs a commit",
)


def fake_benchmark(root: Path, answer: int) -> Path:
    """A `bench` package at `root` whose `bench.whereami` writes `{"answer": <answer>}`."""
    package = root / "bench"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "whereami.py").write_text(
        "import json, sys\n"
        "out = sys.argv[sys.argv.index('--output') + 1]\n"
        f"json.dump({{'answer': {answer}, 'nested': {{'n': {answer} * 10}}, 'name': 'x'}},"
        " open(out, 'w'))\n"
    )
    return root


def test_a_run_imports_the_code_of_its_root_before_this_checkouts(tmp_path: Path) -> None:
    one = fake_benchmark(tmp_path / "one", 1)
    two = fake_benchmark(tmp_path / "two", 2)

    first = run("bench.whereami", [], one, tmp_path / "first")
    second = run("bench.whereami", [], two, tmp_path / "second")

    assert (first["answer"], second["answer"]) == (1, 2)
    assert (tmp_path / "first.log").exists()


def test_a_relative_output_lands_here_not_in_the_roots_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = fake_benchmark(tmp_path / "root", 3)
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)

    assert run("bench.whereami", [], root, Path("relative"))["answer"] == 3
    assert (here / "relative.json").exists()
    assert not (root / "relative.json").exists()


def test_a_run_that_fails_names_its_log_tail(tmp_path: Path) -> None:
    root = fake_benchmark(tmp_path / "root", 1)
    (root / "bench" / "broken.py").write_text("raise SystemExit('the stack did not start')\n")

    with pytest.raises(RunFailed, match="the stack did not start"):
        run("bench.broken", [], root, tmp_path / "broken")


def test_figures_are_the_top_level_numbers_or_the_dotted_paths_asked() -> None:
    doc = {"a": 1.5, "b": True, "c": "text", "d": {"e": {"f": 3}}, "g": 2}

    assert figures_of(doc, []) == {"a": 1.5, "g": 2}
    assert figures_of(doc, ["d.e.f", "a"]) == {"d.e.f": 3, "a": 1.5}
    with pytest.raises(KeyError, match=r"d\.x"):
        figures_of(doc, ["d.x"])
    with pytest.raises(KeyError, match="not a number"):
        figures_of(doc, ["c"])


def test_the_summary_takes_medians_of_each_side_and_of_the_pairs_ratios() -> None:
    pairs = [
        {"reference": {"x": 2.0, "z": 0}, "change": {"x": 1.0, "z": 1}},
        {"reference": {"x": 4.0, "z": 0}, "change": {"x": 4.0, "z": 1}},
        {"reference": {"x": 1.0, "z": 0}, "change": {"x": 3.0, "z": 1}},
    ]

    summary = summarise(pairs)

    assert summary["x"]["reference_median"] == 2.0
    assert summary["x"]["change_median"] == 3.0
    assert summary["x"]["ratios"] == [0.5, 1.0, 3.0]
    assert summary["x"]["ratio_median"] == 1.0
    assert summary["z"]["ratio_median"] is None  # no ratio over a reference of 0


@needs_git
def test_the_worktree_holds_the_commit_with_the_shared_parts_linked_and_then_goes(
    tmp_path: Path,
) -> None:
    head = commit_of("HEAD")
    path = tmp_path / "reference"

    with worktree(head, path) as root:
        checked_out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        assert checked_out == head
        committed = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{head}:README.md"], capture_output=True, text=True
        ).stdout
        assert (root / "README.md").read_text() == committed
        if (REPO / ".venv").exists():
            assert (root / ".venv").resolve() == (REPO / ".venv").resolve()

    listed = subprocess.run(
        ["git", "-C", str(REPO), "worktree", "list"], capture_output=True, text=True
    ).stdout
    assert str(path) not in listed
    assert not path.exists()


@needs_git
def test_against_head_runs_both_sides_in_alternating_pairs_and_writes_its_summary(
    tmp_path: Path,
) -> None:
    output = tmp_path / "against.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.against", "HEAD", "--pairs", "2",
         "--figure", "scenarios.high.budget_per_minute", "--output", str(output),
         "--", "bench.limiter", "--quick", "--scenario", "high", "--seconds", "1"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads(output.read_text())
    assert figures["reference"]["commit"] == commit_of("HEAD")
    assert [p["order"] for p in figures["pairs"]] == [
        ["reference", "change"],
        ["change", "reference"],
    ]
    budget = figures["figures"]["scenarios.high.budget_per_minute"]
    assert budget["reference"] == budget["change"] == [680, 680]  # the same code, twice
    assert budget["ratio_median"] == 1.0
    kept = sorted(p.name for p in output.with_suffix(".runs").glob("*.json"))
    assert kept == ["change-1.json", "change-2.json", "reference-1.json", "reference-2.json"]


def test_the_benchmark_must_come_after_a_double_dash() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.against", "HEAD", "bench.limiter"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert done.returncode != 0
    assert "-- bench.NAME" in done.stderr
