"""dynalite, a DynamoDB implementation on node, as a child process on loopback.

moto serves DynamoDB from one Python process and saturates a core long before a worker
does; dynalite answers the same API from node, in memory, at a fraction of the CPU. It is
installed with npm into a folder of the repository (never globally), pinned to one major
version, and started with no table state delays. What it lacks that the ledger asks for:
`UpdateTimeToLive` (an UnknownOperationException; TTL only matters after 90 days).
`install` raises `DynaliteUnavailable` with the reason when node or npm is missing or the
install fails, so a caller can fall back to moto and say why.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path
from typing import Self

from devstack.process import ChildServer, free_port

#: The major version installed and expected; a folder holding another one is reinstalled.
DYNALITE_MAJOR = 4
INSTALL_TIMEOUT_SECONDS = 300.0


class DynaliteUnavailable(RuntimeError):
    """dynalite cannot run here: the message says why (no node, no npm, install failed)."""


def installed_version(prefix: Path) -> str | None:
    """The dynalite version installed under `prefix`, or None."""
    manifest = prefix / "node_modules" / "dynalite" / "package.json"
    try:
        version = json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None
    return str(version)


def install(prefix: Path, *, path: str | None = None) -> Path:
    """Install dynalite under `prefix` unless it is there already; its `cli.js`.

    `path` is the PATH to find node and npm on (this process's by default). LevelDB's
    native build is skipped (`--ignore-scripts`): the server runs in memory.
    """
    node = shutil.which("node", path=path)
    npm = shutil.which("npm", path=path)
    if node is None or npm is None:
        missing = " and ".join(name for name, at in (("node", node), ("npm", npm)) if not at)
        raise DynaliteUnavailable(f"{missing} not found on PATH")
    cli = prefix / "node_modules" / "dynalite" / "cli.js"
    prefix.mkdir(parents=True, exist_ok=True)
    # Benchmarks started side by side would otherwise run npm in one folder at once.
    with (prefix / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _major(installed_version(prefix)) == DYNALITE_MAJOR and cli.exists():
            return cli
        failed = f"npm install dynalite@{DYNALITE_MAJOR} failed"
        argv = [
            npm, "install", "--prefix", str(prefix), "--ignore-scripts",
            "--no-audit", "--no-fund", "--loglevel", "error", f"dynalite@{DYNALITE_MAJOR}",
        ]  # fmt: skip
        try:
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DynaliteUnavailable(f"{failed}: {exc}") from exc
        if result.returncode != 0 or not cli.exists():
            story = (result.stderr or result.stdout).strip().splitlines()
            last = story[-1] if story else f"exit {result.returncode}"
            raise DynaliteUnavailable(f"{failed}: {last}")
    return cli


def _major(version: str | None) -> int | None:
    try:
        return int(version.split(".", 1)[0]) if version else None
    except ValueError:
        return None


class Dynalite(ChildServer):
    """dynalite in memory on 127.0.0.1: a fresh, empty DynamoDB each start."""

    def __init__(
        self, workdir: Path, *, prefix: Path, port: int | None = None, path: str | None = None
    ) -> None:
        self.prefix = prefix
        self._path = path
        port = port or free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__([], port, log=workdir / "dynalite.log")

    def start(self) -> Self:
        cli = install(self.prefix, path=self._path)
        node = shutil.which("node", path=self._path)
        assert node is not None  # install() found it
        self.argv = [
            node, str(cli), "--host", "127.0.0.1", "--port", str(self.port),
            # Tables are ACTIVE (and gone) at once, as moto's are.
            "--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0",
        ]  # fmt: skip
        return super().start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def version(self) -> str | None:
        return installed_version(self.prefix)
