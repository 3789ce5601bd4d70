"""lastgood watch ID: follow a rollback or a deployment until it ends."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from lastgood.cli.common import FileOption, OutputFormat, OutputOption, open_runbook, option_duration, stdout
from lastgood.redact import redact
from lastgood.service.follow import WorkState, find_work, follow

_COLOURS = {"succeeded": "green", "unchanged": "green", "done": "green", "running": "cyan", "failed": "red"}


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)


def watch(
    id_: Annotated[str, typer.Argument(help="A rollback id (rb-...) or a deployment id (dp-...)", metavar="ID")],
    interval: Annotated[str, typer.Option("--interval", help="How often the ledger is read, e.g. 1s")] = "1s",
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Follow a rollback or a deployment until it ends, from any machine that reads the ledger. In a terminal it
    refreshes in place; piped (or with -o json) it prints one JSON object per change, one a line. The exit code is
    the one of the command doing the work: 0 succeeded or promoted, 1 failed or aborted, 3 denied, declined or
    superseded, 130 interrupted or paused. Ctrl-C stops watching, not the work."""
    seconds = option_duration("--interval", interval)
    runbook = open_runbook(file)
    ref = find_work(runbook, id_)
    readings = follow(runbook, ref, max(seconds, 0.05))
    piped = output == OutputFormat.json or not stdout.is_terminal
    last = _json_lines(readings) if piped else _live(readings)
    raise typer.Exit(last.exit_code or 0)


def _json_lines(readings: Iterator[WorkState]) -> WorkState:
    last: WorkState | None = None
    for last in readings:
        sys.stdout.write(redact(json.dumps(last.model_dump(mode="json"))) + "\n")
        sys.stdout.flush()
    assert last is not None
    return last


def _live(readings: Iterator[WorkState]) -> WorkState:
    last: WorkState | None = None
    with Live(console=stdout, auto_refresh=False) as live:
        for last in readings:
            live.update(render(last), refresh=True)
    assert last is not None
    return last


def render(state: WorkState) -> Group:
    table = Table(title=escape(state.summary), title_justify="left")
    table.add_column("component" if state.kind == "rollback" else "traffic")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    for step in state.steps:
        colour = _COLOURS.get(step.status, "yellow")
        table.add_row(escape(step.name), f"[{colour}]{step.status}[/]", escape(step.detail) or "-")
    footer = f"last event: {escape(state.last_event)}" if state.last_event else ""
    if state.done:
        footer += f"\n[bold]{state.status}[/]: ended, exit {state.exit_code}"
    return Group(table, footer)
