"""Build the ingest Lambda's package: what `ingest.lambda_handler` imports, for Lambda.

`make build-IngestFunction` (which `sam build` calls, template.yaml's BuildMethod:
makefile) runs this with ARTIFACTS_DIR. The dependencies are pyproject.toml's, with their
bounds, limited to the ones the ingest imports (`INGEST_REQUIREMENTS`), installed as
wheels for Lambda's platform (manylinux2014, the function's architecture and Python) from
any machine; Celery's command-line dependencies, which a producer never imports, are then
taken out (`CELERY_CLI_ONLY`). The project's own code is copied without the CLI, the dev
stack or Flower's configuration. tests/deployment/test_lambda_package.py imports the
handler from the package alone.

    python lambda_package.py DIR [--architecture x86_64|arm64] [--python-version 3.11]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent

#: The distributions of pyproject.toml's dependencies that the ingest imports. The
#: workers' and operators' own (flower, rich, click, prometheus_client) stay out.
INGEST_REQUIREMENTS = ("celery", "redis", "boto3", "requests", "pydantic", "pydantic-settings")

#: Celery's dependencies for its `celery` command only (celery.bin), never imported by an
#: app that only sends tasks.
CELERY_CLI_ONLY = ("click-repl", "click-didyoumean", "click-plugins", "prompt-toolkit", "wcwidth")

#: The project's code the ingest runs: the domain, the front doors, the Celery app (its
#: producer side and its settings) and its configuration module.
PROJECT_CODE = ("dlq", "ingest", "tasks", "celeryconfig.py")

#: template.yaml's IngestFunction: Runtime python3.11, Architectures [x86_64].
DEFAULT_PYTHON = "3.11"
DEFAULT_ARCHITECTURE = "x86_64"
#: Lambda's architecture names and the wheels' (Amazon Linux 2 and 2023 take manylinux2014).
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}


def normalized(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def name_of(requirement: str) -> str:
    """The normalized distribution name of a requirement (`celery[redis]>=5.4`: celery)."""
    return normalized(re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0])


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """pyproject.toml's requirements (with their bounds) of `INGEST_REQUIREMENTS`."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    wanted = {normalized(name) for name in INGEST_REQUIREMENTS}
    kept = [d for d in dependencies if name_of(d) in wanted]
    found = {name_of(d) for d in kept}
    if found != wanted:
        raise SystemExit(
            f"lambda_package.py: pyproject.toml has no dependency {sorted(wanted - found)}: "
            "update INGEST_REQUIREMENTS"
        )
    return kept


def install(target: Path, *, architecture: str, python_version: str) -> None:
    """Install the ingest's requirements into `target` as wheels for Lambda."""
    argv = [
        sys.executable, "-m", "pip", "install", "--quiet", "--no-compile",
        "--target", str(target), "--implementation", "cp",
        "--python-version", python_version, "--platform", PLATFORMS[architecture],
        "--only-binary=:all:", *requirements(),
    ]  # fmt: skip
    subprocess.run(argv, check=True)


def remove_distribution(target: Path, name: str) -> bool:
    """Delete an installed distribution's files (its RECORD) from `target`."""
    removed = False
    for info in target.glob("*.dist-info"):
        if normalized(info.name.removesuffix(".dist-info").rsplit("-", 1)[0]) != normalized(name):
            continue
        for line in (info / "RECORD").read_text().splitlines():
            path = target / line.split(",", 1)[0]
            if path.is_file() and target in path.resolve().parents:
                path.unlink()
        shutil.rmtree(info, ignore_errors=True)
        removed = True
    for directory in sorted(target.iterdir()):  # packages left empty
        if directory.is_dir() and not any(p.is_file() for p in directory.rglob("*")):
            shutil.rmtree(directory)
    return removed


def copy_project(target: Path) -> None:
    """The project's code the ingest runs, without caches."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in PROJECT_CODE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target / name)


def summary(target: Path) -> str:
    """The package's size, file count and its largest top-level entries."""
    files = [p for p in target.rglob("*") if p.is_file()]
    sizes: dict[str, int] = {}
    for path in files:
        top = path.relative_to(target).parts[0]
        sizes[top] = sizes.get(top, 0) + path.stat().st_size
    total = sum(sizes.values())
    lines = [f"ingest package: {total / 1e6:.1f} MB in {len(files)} files, {target}"]
    for top, size in sorted(sizes.items(), key=lambda kv: -kv[1]):
        if not top.endswith(".dist-info"):
            lines.append(f"  {size / 1e6:7.2f} MB  {top}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path)
    parser.add_argument("--architecture", choices=sorted(PLATFORMS), default=DEFAULT_ARCHITECTURE)
    parser.add_argument("--python-version", default=DEFAULT_PYTHON)
    args = parser.parse_args(argv)
    target: Path = args.target.resolve()
    target.mkdir(parents=True, exist_ok=True)
    install(target, architecture=args.architecture, python_version=args.python_version)
    for name in CELERY_CLI_ONLY:
        remove_distribution(target, name)
    shutil.rmtree(target / "bin", ignore_errors=True)  # console scripts: nothing runs them
    copy_project(target)
    print(summary(target))


if __name__ == "__main__":
    main()
