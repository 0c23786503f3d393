"""`tasks.flowerauth`: what counts as Flower authentication, and the one way out."""

from __future__ import annotations

from dataclasses import dataclass, field

import click
import pytest

from tasks.flowerauth import require_authentication, running_flower


@dataclass
class Options:
    """The two of Flower's (tornado's) options the check reads."""

    basic_auth: list[str] = field(default_factory=list)
    auth: str = ""


def refusal(options: Options, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(SystemExit) as stopped:
        require_authentication(options, environ or {})
    return str(stopped.value)


def test_basic_auth_pairs_let_flower_start() -> None:
    require_authentication(Options(basic_auth=["ops:7f3a9c1e", "audit:0b1d2f3a"]), {})


def test_flowers_oauth_counts_as_authentication() -> None:
    require_authentication(Options(auth=r".*@example\.com"), {})


def test_no_authentication_is_refused_naming_both_ways_forward() -> None:
    message = refusal(Options())
    assert message.startswith("flower: refusing to start without authentication")
    assert "FLOWER_BASIC_AUTH=user:password" in message
    assert "FLOWER_ALLOW_NO_AUTH=1" in message


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_flower_allow_no_auth_is_the_one_way_out(value: str) -> None:
    require_authentication(Options(), {"FLOWER_ALLOW_NO_AUTH": value})


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_anything_else_in_flower_allow_no_auth_is_not(value: str) -> None:
    refusal(Options(), {"FLOWER_ALLOW_NO_AUTH": value})


@pytest.mark.parametrize("entry", ["nocolon", ":password", "user:"])
def test_an_entry_that_is_not_user_password_is_refused(entry: str) -> None:
    assert "not user:password" in refusal(Options(basic_auth=[entry]))


def test_the_env_example_placeholder_password_is_refused_even_with_the_way_out() -> None:
    options = Options(basic_auth=["admin:change-me-flower"])
    message = refusal(options, {"FLOWER_ALLOW_NO_AUTH": "1"})
    assert "placeholder password for admin" in message


def test_only_the_flower_command_is_flower() -> None:
    seen: list[bool] = []

    @click.group()
    def celery() -> None: ...

    @celery.command()
    def flower() -> None:
        seen.append(running_flower())

    @celery.command()
    def worker() -> None:
        seen.append(running_flower())

    for command in ("flower", "worker"):
        celery.main([command], standalone_mode=False)
    assert seen == [True, False]
    assert not running_flower()  # outside any command
