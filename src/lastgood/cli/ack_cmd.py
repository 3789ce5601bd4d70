"""lastgood ack: take an open rollback; its escalation steps and stakeholder updates stop."""

from __future__ import annotations

from typing import Annotated

import typer

from lastgood.cli.common import FileOption, OutputFormat, OutputOption, emit, open_env, open_runbook, stdout
from lastgood.service.escalation import acknowledge
from lastgood.service.views import rollback_env


def register(app: typer.Typer) -> None:
    app.command("ack")(ack)


def ack(
    rollback_id: Annotated[str, typer.Argument(help="The rollback id", metavar="ID")],
    note: Annotated[str, typer.Option("--note", help="What you are doing about it (recorded)")] = "",
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Acknowledge an open or restored-unhealthy rollback: no further escalation step or update is sent."""
    ctx = open_env(file, rollback_env(open_runbook(file), rollback_id))
    outcome = acknowledge(ctx, rollback_id, note)
    emit(output, outcome.model_dump(mode="json"), lambda: stdout.print(outcome.message))
