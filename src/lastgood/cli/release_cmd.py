"""lastgood release record | list | mark-bad."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lastgood.cli.common import (
    EnvArgument,
    FileOption,
    OutputFormat,
    OutputOption,
    ask,
    emit,
    open_env,
    print_notes,
    stdout,
)
from lastgood.cli.tables import print_table
from lastgood.errors import ConfirmationNeeded
from lastgood.service import releases

release_app = typer.Typer(help="Record and list releases: the exact state of every component.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(release_app, name="release")


@release_app.command("record")
def record(
    env: EnvArgument,
    version: Annotated[str, typer.Option("--version", help="The release label, e.g. v42 or a git sha")],
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Read the live state of every component from AWS and store it as a release (it becomes the live one)."""
    result = releases.record(open_env(file, env), version)

    def render() -> None:
        table = Table(title=f"release {result.label} recorded in {env}", title_justify="left")
        for column in ("component", "kind", "state"):
            table.add_column(column)
        for name, component in result.components.items():
            table.add_row(name, component.kind, component.description)
        print_table(stdout, table)
        for warning in result.warnings:
            stdout.print(f"[yellow]warning[/]: {escape(warning)}")
        print_notes(result.notes)

    emit(output, result, render)


@release_app.command("list")
def list_(
    env: EnvArgument,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many, the newest")] = 20,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many of the newest first")] = 0,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Releases, newest first, with the live one and those marked bad."""
    ctx = open_env(file, env)
    result = releases.list_releases(ctx, limit, offset)

    def render() -> None:
        if not result.total:
            stdout.print(f"no releases recorded in {env} yet: lastgood release record {env} --version LABEL")
            return
        table = Table(title=f"{ctx.app} releases in {env}", title_justify="left")
        for column in ("release", "recorded", "by", "status"):
            table.add_column(column)
        for release in result.releases:
            status = "[bold green]live[/]" if release.live else ""
            if release.bad:
                status = (status + " " if status else "") + f"[red]bad[/] ({escape(release.bad_reason or '')})"
            at = release.recorded_at.strftime("%Y-%m-%d %H:%M:%S")
            table.add_row(escape(release.label), at, escape(release.recorded_by), status)
        print_table(stdout, table)
        shown = len(result.releases)
        if shown < result.total or not result.total_exact:
            of = str(result.total) if result.total_exact else f"more than {result.total:,}"
            stdout.print(f"releases {offset + 1}-{offset + shown} of {of}, newest first (more: --limit, --offset)")

    emit(output, result, render)


@release_app.command("mark-bad")
def mark_bad(
    env: EnvArgument,
    label: Annotated[str, typer.Argument(help="The release to mark")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is bad")] = "marked bad by hand",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (the live release)")] = False,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Mark a release bad, so that automatic rollbacks never return to it. Marking the live release asks first."""
    ctx = open_env(file, env)
    try:
        result = releases.mark_bad(ctx, label, reason, live_confirmed=yes)
    except ConfirmationNeeded as needed:
        ask(needed.question, "yes")
        result = releases.mark_bad(ctx, label, reason, live_confirmed=True)

    def render() -> None:
        stdout.print(
            f"{escape(label)}: marked bad" + (f" (it is still the live release of {env})" if result.was_live else "")
        )
        print_notes(result.notes)

    emit(output, result, render)
