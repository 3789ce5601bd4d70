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
    ledger_for,
    open_env,
    open_runbook,
    stdout,
)
from lastgood.engine.approvals import approve as approve_rollback
from lastgood.engine.approvals import deny as deny_rollback
from lastgood.engine.approvals import sign_token
from lastgood.engine.executor import Executor
from lastgood.errors import BadInput
from lastgood.ledger import store
from lastgood.runtime.context import EnvContext

IdArgument = Annotated[str, typer.Argument(help="The rollback id", metavar="ID")]


def register(app: typer.Typer) -> None:
    app.command("approve")(approve)
    app.command("deny")(deny)
    app.command("approval-token")(approval_token)


def _context(rollback_id: str, file: FileOption, parallel: int = 16) -> tuple[EnvContext, str]:
    with ledger_for(open_runbook(file)).session() as session:
        row = store.get_rollback(session, rollback_id)
        env, method = row.env, row.method or "rollback"
    return open_env(file, env, parallel), method


def approve(
    rollback_id: IdArgument,
    token: Annotated[str | None, typer.Option("--token", help="Signed token (protected environments)")] = None,
    no_run: Annotated[bool, typer.Option("--no-run", help="Record the approval; do not start the rollback")] = False,
    parallel: ParallelOption = 16,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Approve a rollback that awaits approval; the last approval needed starts it (unless --no-run)."""
    from lastgood.cli.rollback_cmd import execute, finish

    ctx, method = _context(rollback_id, file, parallel)
    outcome = approve_rollback(ctx, rollback_id, ctx.actor.name, token)
    line = f"{rollback_id}: approved by {', '.join(outcome.approvers)} ({outcome.approvals} of {outcome.needed})"
    if not outcome.complete or no_run or method == "planned-rollback":
        emit(
            output,
            {"id": rollback_id, "status": outcome.status, "approvers": outcome.approvers},
            lambda: stdout.print(line),
        )
        return
    if output == OutputFormat.text:
        stdout.print(line + "; starting the rollback")
    with ctx.session() as session:
        total = len(store.get_rollback(session, rollback_id).steps)
    finish(execute(Executor(ctx), rollback_id, total, output), output)


def deny(
    rollback_id: IdArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why the rollback is denied")] = "",
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Deny a rollback that awaits approval, with the reason recorded."""
    ctx, _method = _context(rollback_id, file)
    deny_rollback(ctx, rollback_id, ctx.actor.name, reason)
    emit(
        output,
        {"id": rollback_id, "status": "denied", "reason": reason},
        lambda: stdout.print(f"{rollback_id}: denied"),
    )


def approval_token(
    rollback_id: IdArgument,
    user: Annotated[str, typer.Option("--user", help="Who will approve")],
    file: FileOption = None,
) -> None:
    """Mint the signed token a person needs to approve on a protected environment (needs the approval key)."""
    runbook = open_runbook(file)
    key = runbook.policy.approval_key
    if not key:
        raise BadInput("policy.approval_key is not set in the file (e.g. approval_key: ${LASTGOOD_APPROVAL_KEY})")
    print(sign_token(key, rollback_id, user))
