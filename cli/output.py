"""Terminal output: tables and colour on a terminal, plain lines or JSON for scripts.

Ids are never cut. An operator pastes event ids, SQS message ids and ARNs from these
tables into the next command, so a table is laid out with every unbroken token whole
(rich's default would end a long one with an ellipsis); when the tokens cannot fit side
by side in the terminal, each row is printed as `column: value` lines instead, each line
whole however long (the terminal wraps it; a copy still gets the whole value).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

#: What a rich table spends per column besides its text: borders and padding.
_COLUMN_OVERHEAD = 3


class Output:
    """Where a command's results go: rich tables on a TTY, TSV when piped, JSON on request."""

    def __init__(self, *, as_json: bool = False, console: Console | None = None) -> None:
        self.as_json = as_json
        self.console = console or Console(highlight=False)
        self.rich = self.console.is_terminal and not as_json

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.rich:
            cells = [[str(cell) for cell in row] for row in rows]
            # Titles name ids too ("event <id> -> <arn>"): printed whole, not as a caption.
            self.console.print(Text(title, style="bold"), soft_wrap=True)
            widths = [_longest_token([column, *(row[n] for row in cells)])
                      for n, column in enumerate(columns)]  # fmt: skip
            if sum(widths) + _COLUMN_OVERHEAD * len(widths) + 1 > self.console.width:
                self._records(columns, cells)
                return
            # Text, not markup: event ids, errors and bodies may hold `[...]`.
            table = Table()
            for column, width in zip(columns, widths, strict=True):
                table.add_column(Text(column), min_width=width, overflow="fold")
            for cell_row in cells:
                table.add_row(*(Text(cell) for cell in cell_row))
            self.console.print(table)
            return
        print(f"# {title}")
        print("\t".join(columns))
        for row in rows:
            print("\t".join(str(cell) for cell in row))

    def _records(self, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """The narrow layout: one `column: value` line per cell, a blank line between rows."""
        label = max((cell_len(c) for c in columns), default=0)
        for n, row in enumerate(rows):
            if n:
                self.console.print()
            for column, cell in zip(columns, row, strict=True):
                line = Text.assemble((f"{column:<{label}}", "dim"), "  ", cell)
                self.console.print(line, soft_wrap=True)

    def json(self, data: Any) -> None:
        json.dump(data, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")

    def line(self, text: str, *, style: str | None = None) -> None:
        if self.rich:
            # soft_wrap: a line naming an id or a command to paste is never broken by rich.
            self.console.print(text, style=style, markup=False, soft_wrap=True)
        else:
            print(text)

    def error(self, text: str) -> None:
        # One line whatever the width (scripts grep it), the message printed verbatim.
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            Text.assemble(("error:", "bold red"), " ", text)
        )


def _longest_token(texts: Sequence[str]) -> int:
    """The widest run without whitespace: the narrowest a column can be without cutting one."""
    return max((cell_len(token) for text in texts for token in text.split()), default=1)
