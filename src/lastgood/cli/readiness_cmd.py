"""lastgood readiness."""

from __future__ import annotations

import typer
from rich.markup import escape
from rich.table import Table

from lastgood.cli.common import (
    EnvArgument,
    FileOption,
    OutputFormat,
    OutputOption,
    ParallelOption,
    emit,
    open_env,
    print_notes,
    stdout,
)
from lastgood.cli.tables import print_table
from lastgood.errors import ExitCode
from lastgood.service.readiness import Readiness
from lastgood.service.readiness import readiness as check_readiness

_COLOURS = {"ok": "green", "at-risk": "yellow", "impossible": "red"}


def register(app: typer.Typer) -> None:
    app.command("readiness")(readiness)


def readiness(
    env: EnvArgument,
    parallel: ParallelOption = 16,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Whether rolling back is still possible, for the live release and the one before it. Changes nothing.

    Exit codes: 0 every check is ok (with a note when there is no previous release to roll back to); 1 something
    a rollback needs is at risk or gone; 3 no release is recorded, so nothing was checked.
    """
    result = check_readiness(open_env(file, env, parallel))
    emit(output, result, lambda: render(result))
    raise typer.Exit(exit_code(result))


def exit_code(result: Readiness) -> int:
    if not result.releases:
        return ExitCode.REFUSED
    statuses = {check.status for r in result.releases for c in r.components for check in c.checks}
    return ExitCode.OK if statuses <= {"ok"} else ExitCode.FAILED


def render(result: Readiness) -> None:
    table = Table(title=f"rollback readiness: {result.app}/{result.env}", title_justify="left")
    for column in ("release", "component", "kind", "status", "detail"):
        table.add_column(column, overflow="fold")
    for release in result.releases:
        for component in release.components:
            for check in component.checks:
                status = f"[{_COLOURS[check.status]}]{check.status}[/]"
                where = escape(f"{release.label} ({release.role})")
                table.add_row(where, escape(component.component), component.kind, status, escape(check.detail))
    if result.releases:
        print_table(stdout, table)
    for release in result.releases:
        colour = _COLOURS[release.status]
        stdout.print(f"{escape(release.label)} ({release.role}): [{colour}]{release.status}[/]")
    print_notes(result.notes)
