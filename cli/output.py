"""Terminal output: tables and colour on a terminal, plain lines or JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


class Output:
    """Where a command's results go: rich tables on a TTY, TSV when piped, JSON on request."""

    def __init__(self, *, as_json: bool = False) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False)
        self.rich = self.console.is_terminal and not as_json

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.rich:
            # Text, not markup: event ids, errors and bodies may hold `[...]`.
            table = Table(title=Text(title), title_justify="left")
            for column in columns:
                table.add_column(Text(column))
            for row in rows:
                table.add_row(*(Text(str(cell)) for cell in row))
            self.console.print(table)
            return
        print(f"# {title}")
        print("\t".join(columns))
        for row in rows:
            print("\t".join(str(cell) for cell in row))

    def json(self, data: Any) -> None:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")

    def line(self, text: str, *, style: str | None = None) -> None:
        if self.rich:
            self.console.print(text, style=style, markup=False)
        else:
            print(text)

    def error(self, text: str) -> None:
        # One line whatever the width (scripts grep it), the message printed verbatim.
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            Text.assemble(("error:", "bold red"), " ", text)
        )
