"""lastgood audit verify | log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lastgood.cli.common import FileOption, OutputFormat, OutputOption, emit, open_app_ctx, stdout
from lastgood.cli.tables import print_table
from lastgood.errors import BadInput
from lastgood.service import audit

audit_app = typer.Typer(help="The append-only, hash-chained audit log in the ledger.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


FromOption = Annotated[
    str | None,
    typer.Option(
        "--from",
        metavar="CHECKPOINT",
        help="Check only from this verified entry on (EVENT_ID:SHA256, as a previous run printed it)",
    ),
]
CheckpointFileOption = Annotated[
    Path | None,
    typer.Option(
        "--checkpoint-file",
        help="Start from the checkpoint kept in this file (if it exists) and keep the new one there when intact",
    ),
]


@audit_app.command("verify")
def verify(
    since: FromOption = None,
    checkpoint_file: CheckpointFileOption = None,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Check every entry's hash and link: an edited or deleted entry is named. Exit 1 if the chain is broken."""
    if since and checkpoint_file:
        raise BadInput("--from and --checkpoint-file: give one of them")
    if checkpoint_file is not None and checkpoint_file.is_file():
        since = checkpoint_file.read_text().strip() or None
    report = audit.verify(open_app_ctx(file), since)
    if report.ok and checkpoint_file is not None and report.checkpoint:
        checkpoint_file.write_text(report.checkpoint + "\n")

    def render() -> None:
        start = f" from checkpoint event {report.since.split(':')[0]}" if report.since else ""
        if report.ok:
            stdout.print(f"[green]ok[/]: {report.entries} entries{start}, chain intact")
            if report.checkpoint:
                stdout.print(f"checkpoint: {report.checkpoint}")
        else:
            stdout.print(f"[red]broken[/]: {escape(report.problem or '')} ({report.entries} entries checked{start})")

    emit(output, report, render)
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("log")
def log(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many of the newest entries")] = 50,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """The newest audit entries: who did what, when."""
    result = audit.log(open_app_ctx(file), limit)

    def render() -> None:
        table = Table(title="audit log", title_justify="left")
        for column in ("id", "at (UTC)", "actor", "env", "event", "detail"):
            table.add_column(column, overflow="fold")
        for e in result.entries:
            at = e.at.strftime("%Y-%m-%dT%H:%M:%S")
            table.add_row(str(e.id), at, escape(e.actor), escape(e.env), e.type, escape(e.message))
        print_table(stdout, table)

    emit(output, result, render)
