"""lastgood audit verify | log."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from lastgood.cli.common import FileOption, OutputFormat, OutputOption, emit, ledger_for, open_runbook, stdout
from lastgood.ledger import audit
from lastgood.ledger.tables import EventRow

audit_app = typer.Typer(help="The append-only, hash-chained audit log in the ledger.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def verify(file: FileOption = None, output: OutputOption = OutputFormat.text) -> None:
    """Check every entry's hash and link: an edited or deleted entry is named. Exit 1 if the chain is broken."""
    with ledger_for(open_runbook(file)).session() as session:
        report = audit.verify(session)
    data = {"ok": report.ok, "entries": report.entries, "problem": report.problem, "event_id": report.event_id}

    def render() -> None:
        if report.ok:
            stdout.print(f"[green]ok[/]: {report.entries} entries, chain intact")
        else:
            stdout.print(f"[red]broken[/]: {report.problem} ({report.entries} entries checked)")

    emit(output, data, render)
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("log")
def log(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many of the newest entries")] = 50,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """The newest audit entries: who did what, when."""
    with ledger_for(open_runbook(file)).session() as session:
        rows = list(session.scalars(select(EventRow).order_by(EventRow.id.desc()).limit(limit)))
    entries: list[dict[str, Any]] = [
        {"id": r.id, "at": r.at.isoformat(), "actor": r.actor, "env": r.env, "type": r.type, "message": r.message}
        for r in reversed(rows)
    ]

    def render() -> None:
        table = Table(title="audit log", title_justify="left")
        for column in ("id", "at (UTC)", "actor", "env", "event", "detail"):
            table.add_column(column, overflow="fold")
        for e in entries:
            table.add_row(str(e["id"]), e["at"][:19], e["actor"], e["env"], e["type"], e["message"])
        stdout.print(table)

    emit(output, {"entries": entries}, render)
