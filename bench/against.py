"""One benchmark run side by side with another commit's code: a change told from the machine.

Mode: the benchmark's own. It runs alternately from a git worktree of `REV` (the
reference) and from this checkout (the change), in pairs whose order alternates
(reference first, then change first, ...), so that a machine drifting during the runs
weighs on both sides. Each run is the benchmark's own process writing its own
`--output`; the reference's imports its commit's code (`PYTHONPATH` and the working
directory are the worktree), with this checkout's virtualenv and `.bench-node/`. The
figures compared are the numbers at the `--figure` paths of its JSON (dotted:
`floor.operations.task.cpu_ms`; by default every number at its top level). It prints
each pair and, per figure, both medians and the median of the pairs' ratios (change
over reference), and writes `bench/results/against-<benchmark>.json`, each run's own
JSON and log beside it (`against-<benchmark>.runs/<side>-<n>.json`).

Why pairs: on this project's 2-core machines one commit's `bench.deployed` gave
`worker_over_floor` 1.21-1.59 within half an hour (2026-12-08). A change worth less than
that spread shows only against runs of the reference taken in between.

    .venv/bin/python -m bench.against HEAD~1 -- bench.deployed          # 3 pairs, ~30 min
    .venv/bin/python -m bench.against main --pairs 2 --figure worker_over_floor \\
        --figure worker_busy_cpu_ms_per_event -- bench.deployed --quick
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import RESULTS_DIR, machine, write_results

REPO = Path(__file__).resolve().parent.parent
#: Untracked parts of this checkout a reference run uses as they are.
SHARED = (".venv", ".bench-node")
SIDES = ("reference", "change")


class RunFailed(RuntimeError):
    """A run of the benchmark exited non-zero; its log says why."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        sys.exit("usage: python -m bench.against REV [options] -- bench.NAME [its options]")
    cut = argv.index("--")
    args = _parser().parse_args(argv[:cut])
    benchmark, *bench_args = argv[cut + 1 :]
    if "--output" in bench_args:
        sys.exit("each run gets its own --output: leave it out of the benchmark's options")
    # Absolute: the reference runs in its worktree, where a relative path would land.
    output = (
        args.output or RESULTS_DIR / f"against-{benchmark.removeprefix('bench.')}.json"
    ).resolve()
    # Each run's own JSON and log, kept beside the summary (`<output>.runs/`).
    runs = output.with_suffix(".runs")
    runs.mkdir(parents=True, exist_ok=True)
    reference = commit_of(args.rev)
    # What this side runs, read before it runs (an edit during the runs is not it).
    change = {"commit": commit_of("HEAD"), "uncommitted": dirty()}
    with (
        tempfile.TemporaryDirectory(prefix="bench-against-") as scratch,
        worktree(reference, Path(scratch) / "reference") as reference_root,
    ):
        roots = {"reference": reference_root, "change": REPO}
        pairs = []
        for n in range(args.pairs):
            order = SIDES if n % 2 == 0 else SIDES[::-1]
            pair: dict[str, Any] = {"order": list(order)}
            for side in order:
                doc = run(benchmark, bench_args, roots[side], runs / f"{side}-{n + 1}")
                pair[side] = figures_of(doc, args.figure)
            pairs.append(pair)
            _print_pair(n + 1, pair)
    summary = summarise(pairs)
    figures = {
        "benchmark": "against",
        "of": benchmark,
        "args": bench_args,
        "machine": machine(),
        "reference": {"rev": args.rev, "commit": reference},
        "change": change,
        "pairs": pairs,
        "figures": summary,
    }
    _print_summary(summary)
    write_results(output, figures)
    print(f"  written to {output}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench.against",
        usage="python -m bench.against REV [options] -- bench.NAME [its options]",
        description="A benchmark side by side with another commit's code, in alternating pairs.",
    )
    parser.add_argument("rev", help="the reference: a commit, branch or tag (HEAD~1, main)")
    parser.add_argument("--pairs", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument(
        "--figure",
        action="append",
        default=[],
        help="a dotted path to a number in the benchmark's JSON (repeat; default: every "
        "number at its top level)",
    )
    parser.add_argument("--output", type=Path)
    return parser


def commit_of(rev: str) -> str:
    return _git("rev-parse", "--verify", f"{rev}^{{commit}}")


def dirty() -> bool:
    """Whether this checkout differs from HEAD, untracked files included (the change
    runs as it stands)."""
    return bool(_git("status", "--porcelain"))


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


@contextmanager
def worktree(commit: str, path: Path) -> Iterator[Path]:
    """A detached worktree of `commit` at `path`, with this checkout's `SHARED` parts
    linked in; removed (and pruned from git's list) on the way out."""
    _git("worktree", "add", "--detach", "--force", str(path), commit)
    try:
        for name in SHARED:
            if (REPO / name).exists() and not (path / name).exists():
                (path / name).symlink_to(REPO / name)
        yield path
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
            capture_output=True,
            check=False,
        )
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], check=False)


def run(benchmark: str, args: Sequence[str], root: Path, stem: Path) -> dict[str, Any]:
    """One run of `python -m <benchmark>` with `root`'s code; answers its JSON. Its
    output goes to `<stem>.log`; raises `RunFailed` naming it when the run fails."""
    stem = stem.resolve()  # the run's working directory is `root`
    output, log = stem.with_suffix(".json"), stem.with_suffix(".log")
    path = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    with log.open("wb") as out:
        done = subprocess.run(
            [sys.executable, "-m", benchmark, *args, "--output", str(output)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0 or not output.exists():
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise RunFailed(
            f"{benchmark} from {root} exited {done.returncode}; the end of its log:\n"
            + "\n".join(tail)
        )
    loaded: dict[str, Any] = json.loads(output.read_text())
    return loaded


def figures_of(doc: Mapping[str, Any], paths: Sequence[str]) -> dict[str, float]:
    """The numbers at `paths` (dotted) in `doc`; with none, every number at its top level.
    A path that leads to no number raises `KeyError` naming it."""
    if not paths:
        return {k: v for k, v in doc.items() if _number(v)}
    found: dict[str, float] = {}
    for path in paths:
        value: Any = doc
        for part in path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                raise KeyError(f"no figure {path!r} in the benchmark's JSON")
            value = value[part]
        if not _number(value):
            raise KeyError(f"{path!r} is not a number in the benchmark's JSON: {value!r}")
        found[path] = value
    return found


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def summarise(pairs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per figure both sides' medians, and the median of the pairs' ratios (change over
    reference, where the reference is not 0)."""
    names = [n for n in pairs[0]["reference"] if all(n in p["change"] for p in pairs)]
    summary: dict[str, dict[str, Any]] = {}
    for name in names:
        ref = [p["reference"][name] for p in pairs if name in p["reference"]]
        new = [p["change"][name] for p in pairs]
        ratios = [
            round(p["change"][name] / p["reference"][name], 3)
            for p in pairs
            if p["reference"].get(name)
        ]
        summary[name] = {
            "reference": ref,
            "change": new,
            "reference_median": round(statistics.median(ref), 4),
            "change_median": round(statistics.median(new), 4),
            "ratios": ratios,
            "ratio_median": round(statistics.median(ratios), 3) if ratios else None,
        }
    return summary


def _print_pair(n: int, pair: Mapping[str, Any]) -> None:
    print(f"  pair {n} ({' then '.join(pair['order'])}):")
    for name, value in pair["reference"].items():
        print(f"    {name:40} {value:>12} -> {pair['change'].get(name)}")


def _print_summary(summary: Mapping[str, Mapping[str, Any]]) -> None:
    print(f"  {'figure':40} {'reference':>12} {'change':>12} {'change/ref':>10}  (medians)")
    for name, row in summary.items():
        ratio = row["ratio_median"]
        print(
            f"  {name:40} {row['reference_median']:>12} {row['change_median']:>12} "
            f"{ratio if ratio is not None else '-':>10}"
        )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RunFailed as failed:
        sys.exit(str(failed))
