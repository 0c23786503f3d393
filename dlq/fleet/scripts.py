"""The Lua scripts the fleet runs in Redis, shipped as files beside the package that uses them."""

from __future__ import annotations

from importlib.resources import files


def lua(name: str, *, package: str = "dlq.fleet") -> str:
    """The script `<package>/lua/<name>.lua`: by default one of the shared ones here
    (`compare_and_delete`); a package with scripts of its own names itself."""
    return files(package).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")
