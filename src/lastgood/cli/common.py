"""Options every command shares, opening an environment, and printing for people or for scripts."""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import BaseModel

from lastgood.cli.plain import escape, plain_text, writes_plain
from lastgood.config.durations import parse_duration
from lastgood.config.loader import load_runbook
from lastgood.config.models import Runbook
from lastgood.domain.actor import Actor
from lastgood.errors import BadInput, Interrupted, Refused
from lastgood.redact import RedactingStream, redact

if TYPE_CHECKING:  # opening an environment needs the ledger and AWS; `validate` and `schema` need neither
    from rich.console import Console

    from lastgood.cli.tables import FittingConsole
    from lastgood.runtime.context import EnvContext
    from lastgood.service.session import AppContext


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


FileOption = Annotated[
    Path | None,
    typer.Option("--file", "-f", help="The runbook file [default: $LASTGOOD_FILE or ./lastgood.yaml]"),
]
EnvArgument = Annotated[str, typer.Argument(help="Environment name from the file", metavar="ENV", show_default=False)]
OutputOption = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="text for people, json for scripts", case_sensitive=False)
]
ParallelOption = Annotated[
    int, typer.Option("--parallel", min=1, max=256, help="How many components are worked on at once")
]

if TYPE_CHECKING:
    _Console = FittingConsole
else:
    _Console = object


class LazyConsole(_Console):
    """A FittingConsole on sys.stdout or sys.stderr (looked up at each write), made when first used: a command
    whose only output is `say` lines, piped, never imports rich."""

    def __init__(self, stream: str) -> None:
        object.__setattr__(self, "_stream", RedactingStream(stream))
        object.__setattr__(self, "_console", None)

    @property
    def made(self) -> FittingConsole:
        console: FittingConsole | None = object.__getattribute__(self, "_console")
        if console is None:
            from lastgood.cli.tables import FittingConsole

            console = FittingConsole(highlight=False, emoji=False, file=self._stream)
            object.__setattr__(self, "_console", console)
        return console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.made, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.made, name, value)

    def __enter__(self) -> Console:  # rich's Live and Progress hold the console this way
        return self.made.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self.made.__exit__(*exc)

    def say(self, markup: str, soft_wrap: bool = False) -> None:
        """`print(markup)`: rich's work where it colours or wraps, else the same plain text without rich."""
        text = plain_text(markup) if writes_plain(self._stream) else None
        if text is None:
            self.made.print(markup, soft_wrap=soft_wrap)
        else:
            self._stream.write(text + "\n")


stdout = LazyConsole("stdout")
stderr = LazyConsole("stderr")


def emit(output: OutputFormat, data: Any, render: Callable[[], None]) -> None:
    """`data` (a result model, printed as it is, or a dict) for scripts; `render()` for people."""
    if output == OutputFormat.json:
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        sys.stdout.write(redact(json.dumps(data, indent=2, default=str)) + "\n")
    else:
        render()


def open_runbook(file: Path | None) -> Runbook:
    return load_runbook(file)


def cli_user() -> str:
    """The one place the acting user is read: LASTGOOD_USER, else the OS user."""
    return os.environ.get("LASTGOOD_USER") or getpass.getuser()


def cli_actor(runbook: Runbook) -> Actor:
    """The acting user, with the roles the file's policy gives that person."""
    name = cli_user()
    return Actor(name=name, roles=frozenset(runbook.policy.roles_of(name)), via="cli")


def open_env(file: Path | None, env: str, parallel: int = 16) -> EnvContext:
    from lastgood.service.session import open_environment

    runbook = open_runbook(file)
    return open_environment(runbook, env, cli_actor(runbook), parallel)


def open_app_ctx(file: Path | None) -> AppContext:
    """For the app-wide commands (audit, KPIs, reports, reviews)."""
    from lastgood.service.session import open_app

    runbook = open_runbook(file)
    return open_app(runbook, cli_actor(runbook))


def option_duration(option: str, value: str) -> float:
    """A duration option's seconds ('90s', '5m'); bad input names the option."""
    try:
        return parse_duration(value)
    except ValueError as error:
        raise BadInput(f"{option}: {error}") from None


def confirmation_phrase(runbook: Runbook, env: str) -> str:
    """What a person types to act: a protected environment's phrase, else 'yes'."""
    environment = runbook.environment(env)
    return environment.phrase(env) if environment.protected else "yes"


def ask(question: str, phrase: str) -> None:
    """Refused (exit 3, nothing changed) unless the user types `phrase`; a closed stdin is a no; Ctrl-C is
    Interrupted (exit 130, nothing changed)."""
    try:
        stderr.print(f"{escape(question)} type '{phrase}' to continue: ", end="")
        answer = _answer()
    except KeyboardInterrupt:
        stderr.print()  # end the prompt's line
        raise Interrupted("interrupted at the prompt: nothing was changed") from None
    if answer is None:
        stderr.print()  # end the prompt's line before the refusal
        raise Refused("no confirmation (stdin closed); pass --yes to skip the prompt: nothing was changed")
    if answer != phrase:
        raise Refused(f"confirmation did not match '{phrase}': nothing was changed")


def _answer() -> str | None:
    """The typed line, or None when nobody can answer (stdin closed)."""
    try:
        line = sys.stdin.readline() if sys.stdin is not None else ""
    except (OSError, ValueError):
        return None
    return line.strip() if line else None


def print_notes(notes: list[str]) -> None:
    for note in notes:
        stdout.print(f"[yellow]note[/]: {escape(note)}")


def split_names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    return names or None
