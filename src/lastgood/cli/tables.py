"""Tables that fit the terminal: as a grid when it is wide enough, else one stacked record per row.

Rich squeezes a table that is too wide by wrapping or cutting cells ("update-alia/s") and drops what still does
not fit; a person at 80 columns then reads a different table than the one printed. Here a table is printed as a
grid only at its natural width; otherwise every row becomes a record of `column: value` lines, nothing cut.
Output that is not a terminal (a pipe, a file) is never wrapped: its width is unbounded.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, ConsoleDimensions, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

UNBOUNDED = 10_000


class FittingConsole(Console):
    """A Console whose width is the terminal's, or unbounded when the output is not a terminal."""

    @property
    def size(self) -> ConsoleDimensions:
        size = super().size
        return size if self.is_terminal else ConsoleDimensions(UNBOUNDED, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


def print_table(console: Console, table: Table) -> None:
    natural = console.measure(table, options=console.options.update_width(UNBOUNDED)).maximum
    if natural <= console.width:
        console.print(table)
        return
    print_stacked(console, table)


def print_stacked(console: Console, table: Table) -> None:
    """Each row as `column: value` lines under a `title [n/total]` heading."""
    headers = [_plain(column.header) for column in table.columns]
    width = max((len(h) for h in headers), default=0)
    cells = [list(column._cells) for column in table.columns]
    rows = max((len(c) for c in cells), default=0)
    title = _plain(table.title) if table.title else "row"
    for index in range(rows):
        console.print(f"[bold]{escape(title)} [{index + 1}/{rows}][/]")
        for header, column in zip(headers, cells, strict=True):
            value = column[index] if index < len(column) else ""
            line = Text(f"  {header.ljust(width)}  ")
            line.append(value if isinstance(value, Text) else Text.from_markup(str(value)))
            console.print(line, overflow="fold")


def _plain(value: RenderableType | Any) -> str:
    if isinstance(value, Text):
        return value.plain
    return Text.from_markup(str(value)).plain
