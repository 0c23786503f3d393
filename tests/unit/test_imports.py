"""The module graph: no import cycles anywhere, arrows that point down, every module alone.

A cycle held apart by a function-local import or an `if TYPE_CHECKING:` block is still a
cycle: the graph counts every import statement, wherever it stands.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

PACKAGES = ("dlq", "tasks", "ingest", "cli", "devstack", "bench")
TOP_MODULES = ("celeryconfig", "flowerconfig")


def _module_names() -> dict[str, Path]:
    names: dict[str, Path] = {name: REPO / f"{name}.py" for name in TOP_MODULES}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
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
    for node in ast.walk(tree):
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


def _unit(module: str) -> str:
    """The node a module belongs to: its package below `dlq` (`dlq.ledger`), a top-level
    domain module on its own (`dlq.events`), or its face (`tasks`, `cli`...)."""
    parts = module.split(".")
    if parts[0] != "dlq":
        return parts[0]
    if len(parts) > 1 and (REPO / "dlq" / parts[1]).is_dir():
        return ".".join(parts[:2])
    return module


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        edges = graph.setdefault(_unit(name), set())
        edges.update(_unit(other) for other in _imported(name, path) if _unit(other) != _unit(name))
    return graph


#: What a package must never import, however indirectly it would be tempting to.
FORBIDDEN = {
    "dlq.ledger": ("dlq.genesys", "dlq.targets", "dlq.metrics", "dlq.observe", "dlq.ratelimit"),
    "dlq.genesys": ("dlq.ledger", "dlq.targets", "dlq.metrics", "dlq.replay", "dlq.tracking"),
    "dlq.targets": ("dlq.genesys", "dlq.ledger", "dlq.metrics", "dlq.replay"),
    "dlq.ratelimit": ("dlq.genesys", "dlq.targets", "dlq.ledger", "dlq.metrics"),
    "dlq.fleet": tuple(f"dlq.{p.name}" for p in (REPO / "dlq").iterdir() if p.is_dir()),
    "dlq.observe": tuple(m for m in MODULES if m.startswith("dlq.")),
    "dlq.events": ("dlq.genesys", "dlq.ledger", "dlq.targets", "dlq.metrics"),
}


def test_the_packages_form_no_cycle_with_type_checking_imports_counted() -> None:
    assert _cycles(_package_graph()) == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_nothing_below_it_that_would_point_back_up(package: str) -> None:
    reached = _package_graph().get(package, set())
    assert sorted(reached & set(FORBIDDEN[package]) - {package}) == []


def test_the_package_graph_sees_an_import_made_only_for_type_checking(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dlq.ledger import Status\n"
    )
    assert _imported("dlq.probe", module) == {"dlq.ledger"}


def _fresh(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_the_ledger_loads_no_http_client_and_no_other_domain_package() -> None:
    loaded = _fresh(
        "import sys, dlq.ledger; print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('requests', 'urllib3', 'http') and '.' not in m "
        "or m.startswith(('dlq.genesys', 'dlq.targets', 'dlq.metrics', 'dlq.ratelimit'))))"
    )
    assert loaded == "[]"


def test_importing_the_genesys_package_loads_none_of_its_modules() -> None:
    assert (
        _fresh("import sys, dlq.genesys; print([m for m in sys.modules if 'genesys.' in m])")
        == "[]"
    )


#: The longest a product module may grow before it is split (the style guide: one sitting).
MAX_MODULE_LINES = 400


def test_no_product_module_is_longer_than_one_sitting() -> None:
    product = ("dlq", "tasks", "ingest", "cli", "devstack")
    lengths = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in MODULES.items()
        if name.split(".")[0] in product
    }
    assert {name: n for name, n in lengths.items() if n > MAX_MODULE_LINES} == {}


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

#: One interpreter imports the heavy third-party libraries once, then forks a child per
#: project module, which imports that module first (of the project's) and exits: each
#: child starts as a fresh interpreter would for the project's own modules, and the
#: libraries' import (most of a cold start's CPU) is paid once instead of per module.
FORKER = r"""
import json, os, sys, traceback
for library in ("boto3", "botocore.session", "pydantic", "pydantic_settings", "celery",
                "kombu", "redis", "requests", "click", "rich"):
    __import__(library)
assert not [m for m in sys.modules if m.split(".")[0] in json.loads(sys.argv[2])]
failed = {}
for module, prelude in json.loads(sys.argv[1]):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            exec(prelude + "import " + module)
        except BaseException:
            os.write(write_end, traceback.format_exc()[-2000:].encode())
            os._exit(1)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        error = reader.read().decode()
    _, status = os.waitpid(pid, 0)
    if status != 0:
        failed[module] = error or f"exit status {status}"
print(json.dumps(failed))
"""


def _import_each_alone(modules: list[str]) -> dict[str, str]:
    """Each module imported first in a child of its own: module -> the error, if any."""
    import json

    # Flower reads FLOWER_BASIC_AUTH itself, before it runs the file; alone, the file
    # must be told that no auth is configured on purpose.
    env = {**os.environ, "FLOWER_ALLOW_NO_AUTH": "1"}
    chosen = json.dumps([(m, PRELUDE.get(m, "")) for m in modules])
    done = subprocess.run(
        [sys.executable, "-c", FORKER, chosen, json.dumps([*PACKAGES, *TOP_MODULES])],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    failed: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return failed


@pytest.mark.parametrize("batch", range(2))
def test_every_module_imports_first_in_a_fresh_interpreter(batch: int) -> None:
    assert _import_each_alone(sorted(MODULES)[batch::2]) == {}


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
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr[-2000:]
