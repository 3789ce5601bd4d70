"""lastgood approve | deny | approval-token."""

from __future__ import annotations

from typing import Annotated

import typer

from lastgood.cli.common import (
    FileOption,
    OutputFormat,
    OutputOption,
    ParallelOption,
    emit,
    open_env,
    open_runbook,
    stdout,
)
from lastgood.runtime.context import EnvContext
from lastgood.service.rollbacks import approval_token as approval_token_for
from lastgood.service.rollbacks import approve_rollback, deny_rollback
from lastgood.service.views import rollback_env

IdArgument = Annotated[str, typer.Argument(help="The rollback id", metavar="ID")]


def register(app: typer.Typer) -> None:
    app.command("approve")(approve)
    app.command("deny")(deny)
    app.command("approval-token")(approval_token)


def _context(rollback_id: str, file: FileOption, parallel: int = 16) -> EnvContext:
    return open_env(file, rollback_env(open_runbook(file), rollback_id), parallel)


def approve(
    rollback_id: IdArgument,
    token: Annotated[str | None, typer.Option("--token", help="Signed token (protected environments)")] = None,
    no_run: Annotated[bool, typer.Option("--no-run", help="Record the approval; do not start the rollback")] = False,
    parallel: ParallelOption = 16,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Approve a rollback that awaits approval; the last approval needed starts it (unless --no-run)."""
    from lastgood.cli.rollback_cmd import finish, run_with_console

    ctx = _context(rollback_id, file, parallel)
    outcome = run_with_console(
        ctx, True, output, lambda hooks: approve_rollback(ctx, rollback_id, token, run=not no_run, hooks=hooks)
    )
    if outcome.result is None:
        emit(output, outcome.model_dump(mode="json"), lambda: stdout.print(outcome.message))
        return
    finish(outcome, output)


def deny(
    rollback_id: IdArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why the rollback is denied")] = "",
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Deny a rollback that awaits approval, with the reason recorded."""
    outcome = deny_rollback(_context(rollback_id, file), rollback_id, reason)
    emit(output, outcome.model_dump(mode="json"), lambda: stdout.print(outcome.message))


def approval_token(
    rollback_id: IdArgument,
    user: Annotated[str, typer.Option("--user", help="Who will approve")],
    file: FileOption = None,
) -> None:
    """Mint the signed token a person needs to approve on a protected environment (needs the approval key)."""
    print(approval_token_for(open_runbook(file), rollback_id, user))
