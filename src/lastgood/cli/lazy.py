"""Commands registered by name and imported only when they run, so that `lastgood --version` and `lastgood
validate` do not pay for boto3, SQLAlchemy and numpy, which other commands need.

Each command module keeps its `register(app)`; the root group knows, per command name, the module to import
and the one line `lastgood --help` prints. Asking for a command imports its module, lets it register on a
scratch Typer app and takes the command from there; help lists every command without importing any.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer

# Typer's own copy of click's helper, so that the lines match what an eagerly built group prints.
from typer._click.utils import make_default_short_help
from typer.core import TyperGroup


@dataclass(frozen=True)
class LazyCommand:
    module: str
    """The module whose `register(app)` adds the command."""
    help: str
    """The line `lastgood --help` shows: the first sentence of the command's help (a test keeps them equal)."""


def load_module_commands(module: str, rich_markup_mode: Any = None) -> dict[str, Any]:
    """The click commands `module.register` adds, by name, built as the root app would build them."""
    scratch = typer.Typer(rich_markup_mode=rich_markup_mode, pretty_exceptions_enable=False, add_completion=False)
    importlib.import_module(module).register(scratch)
    return dict(typer.main.get_group(scratch).commands)


class LazyCommands(Mapping[str, Any]):
    """Name -> click command; a command's module is imported the first time the command is looked up."""

    def __init__(self, eager: Mapping[str, Any], lazy: Mapping[str, LazyCommand], rich_markup_mode: Any) -> None:
        self._loaded = dict(eager)
        self._lazy = lazy
        self._rich_markup_mode = rich_markup_mode

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in self._lazy:
                raise KeyError(name)
            self._loaded.update(load_module_commands(self._lazy[name].module, self._rich_markup_mode))
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._lazy
        yield from (name for name in self._loaded if name not in self._lazy)

    def __len__(self) -> int:
        return len(set(self._lazy) | set(self._loaded))

    def loaded(self, name: str) -> Any | None:
        return self._loaded.get(name)


class LazyGroup(TyperGroup):
    """The root group: a subclass sets `lazy_commands`; help reads their lines without importing them."""

    lazy_commands: ClassVar[Mapping[str, LazyCommand]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.commands, self.lazy_commands, self.rich_markup_mode)  # type: ignore[assignment]

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names only: Typer's own reads every command, importing its module

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self._short_help(name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _short_help(self, name: str, limit: int) -> str:
        lazy = self.lazy_commands.get(name)
        loaded = self.commands.loaded(name) if isinstance(self.commands, LazyCommands) else None
        if lazy is None or loaded is not None:
            return str((loaded or self.commands[name]).get_short_help_str(limit))
        return make_default_short_help(lazy.help, limit)
