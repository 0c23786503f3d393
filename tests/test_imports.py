"""The module graph: no import cycles anywhere, and every module imports on its own.

A cycle held apart by a function-local import is still a cycle: the graph counts every
import statement, wherever it stands (only `if TYPE_CHECKING:` blocks are left out).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dlq", "tasks", "ingest", "cli", "devstack", "bench")
TOP_MODULES = ("celeryconfig", "flowerconfig")


def _module_names() -> dict[str, Path]:
    names: dict[str, Path] = {name: ROOT / f"{name}.py" for name in TOP_MODULES}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            names[".".join(parts)] = path
    return names


MODULES = _module_names()


def _imported(module: str, path: Path) -> set[str]:
    """The first-party modules `module` imports (the most specific existing name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {name for name in found if name in MODULES and name != module}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_itself_back_through_others() -> None:
    graph = {name: _imported(name, path) for name, path in MODULES.items()}
    assert _cycles(graph) == []


def test_the_domain_imports_no_face() -> None:
    faces = ("tasks", "ingest", "cli", "devstack", "bench", "celery", "celeryconfig")
    offenders = {
        name: sorted(i for i in _imported(name, path) if i.split(".")[0] in faces)
        for name, path in MODULES.items()
        if name.split(".")[0] == "dlq"
    }
    assert {name: found for name, found in offenders.items() if found} == {}
    for name, path in MODULES.items():
        if name.split(".")[0] == "dlq":
            assert "import celery" not in path.read_text(encoding="utf-8"), name


#: flowerconfig is a file Flower executes after defining its options, never imported first.
PRELUDE = {"flowerconfig": "import flower.options; "}


def _import_alone(module: str) -> tuple[str, int, str]:
    # Flower reads FLOWER_BASIC_AUTH itself, before it runs the file; alone, the file
    # must be told that no auth is configured on purpose.
    env = {**os.environ, "FLOWER_ALLOW_NO_AUTH": "1"}
    done = subprocess.run(
        [sys.executable, "-c", f"{PRELUDE.get(module, '')}import {module}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return module, done.returncode, done.stderr[-2000:]


@pytest.mark.parametrize("batch", range(4))
def test_every_module_imports_first_in_a_fresh_interpreter(batch: int) -> None:
    chosen = sorted(MODULES)[batch::4]
    with ThreadPoolExecutor(max_workers=4) as pool:
        failed = [(m, err) for m, code, err in pool.map(_import_alone, chosen) if code != 0]
    assert failed == []


def test_production_paths_never_import_the_local_dev_stack() -> None:
    production = (
        "cli.main, cli.setup, cli.poll, cli.status, cli.inspect, cli.redrive, "
        "ingest.lambda_handler, ingest.poller, tasks.replay, tasks.track, tasks.reconcile, "
        "tasks.verify"
    )
    probe = (
        f"import {production}, sys; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'devstack'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr[-2000:]
