"""lastgood plan | rollback | resume | show."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lastgood.cli.common import (
    EnvArgument,
    FileOption,
    OutputFormat,
    OutputOption,
    ParallelOption,
    emit,
    open_env,
    split_names,
    stderr,
    stdout,
)
from lastgood.config.durations import format_duration
from lastgood.domain.states import RollbackStatus
from lastgood.engine.decide import apply_decision, decide
from lastgood.engine.executor import Executor, RollbackResult
from lastgood.engine.planner import Plan, build_plan
from lastgood.errors import Refused
from lastgood.ledger import store
from lastgood.runtime.context import EnvContext

ToOption = Annotated[
    str | None, typer.Option("--to", help="Release to return to [default: newest older release not marked bad]")
]
OnlyOption = Annotated[str | None, typer.Option("--only", help="Comma-separated components to roll back")]


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("rollback")(rollback)
    app.command("resume")(resume)
    app.command("show")(show)


def render_plan(plan: Plan) -> None:
    title = f"plan: {plan.env} from {plan.from_release or '(unrecorded)'} back to {plan.to_release}"
    if not plan.steps:
        stdout.print(f"{title}\n[green]nothing to change[/]: every component already matches {plan.to_release}")
    else:
        stdout.print(plan_table(plan, title))
        for step in plan.steps:
            for note in step.change.notes:
                stdout.print(f"  note: {step.component}: {note}")
        stdout.print(f"{len(plan.steps)} to change, estimated {format_duration(plan.estimate_seconds)}")
        if plan.exceeds_rto and plan.rto_seconds is not None:
            stdout.print(
                f"[bold red]the estimate exceeds {plan.env}'s recovery-time objective "
                f"({format_duration(plan.rto_seconds)})[/]"
            )
        if plan.destructive_steps:
            stdout.print(f"[bold red]destructive steps[/]: {', '.join(plan.destructive_steps)}")
    for note in plan.notes:
        stdout.print(f"[yellow]note[/]: {note}")
    if plan.blocked:
        stdout.print(f"[bold red]blocked[/]: {plan.blocked}")
    if plan.unchanged:
        stdout.print(f"already at {plan.to_release}: {', '.join(plan.unchanged)}")
    if plan.not_recorded:
        stdout.print(f"[yellow]not in release {plan.to_release}, left alone[/]: {', '.join(plan.not_recorded)}")


def plan_table(plan: Plan, title: str) -> Table:
    with_loss = any(s.change.data_loss_window_seconds is not None for s in plan.steps)
    table = Table(title=title, title_justify="left")
    columns = ["#", "component", "action", "from", "to", "estimate", "after"] + (
        ["data-loss window"] if with_loss else []
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    for index, step in enumerate(plan.steps, 1):
        change = step.change
        action = f"[red]{change.action} (destructive)[/]" if change.destructive else change.action
        row = [str(index), step.component, action, change.before, change.after]
        row += [format_duration(change.estimate_seconds), ", ".join(step.waits_for) or "-"]
        if with_loss:
            window = change.data_loss_window_seconds
            row.append("-" if window is None else format_duration(window))
        table.add_row(*row)
    return table


def plan(
    env: EnvArgument,
    to: ToOption = None,
    only: OnlyOption = None,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Show what a rollback would change. Changes nothing."""
    ctx = open_env(file, env)
    result = build_plan(ctx, to, split_names(only))
    emit(output, result.to_dict(), lambda: render_plan(result))


def confirm(ctx: EnvContext, plan: Plan, yes: bool, allow_destructive: bool = False) -> None:
    if plan.destructive_steps and yes and not allow_destructive:
        raise Refused(
            f"the plan has destructive steps ({', '.join(plan.destructive_steps)}): --yes is not enough, "
            "add --allow-destructive. Nothing was changed."
        )
    if yes:
        return
    environment = ctx.runbook.environment(ctx.env)
    phrase = environment.phrase(ctx.env) if environment.protected else "yes"
    what = f"{ctx.env} is protected; type '{phrase}'" if environment.protected else f"type '{phrase}'"
    stderr.print(f"Roll {ctx.env} back to {plan.to_release}? {what} to continue: ", end="")
    answer = sys.stdin.readline()
    if not answer:
        raise Refused("no confirmation (stdin closed); pass --yes to roll back without a prompt. Nothing was changed.")
    if answer.strip() != phrase:
        raise Refused(f"confirmation did not match '{phrase}'. Nothing was changed.")


class ProgressListener:
    def __init__(self, progress: Progress, total: int) -> None:
        self.progress = progress
        self.task = progress.add_task("rolling back", total=total)

    def step_started(self, component: str) -> None:
        self.progress.update(self.task, description=f"rolling back {component}")

    def step_progress(self, component: str, message: str) -> None:
        self.progress.console.print(f"  [dim]{component}: {message}[/]")

    def step_finished(self, component: str, status: str, detail: str) -> None:
        self.progress.advance(self.task)
        colour = "green" if status in ("succeeded", "unchanged") else "red"
        self.progress.console.print(f"  [{colour}]{status}[/] {component}: {detail}")


def execute(executor: Executor, rollback_id: str, total: int, output: OutputFormat) -> RollbackResult:
    if output == OutputFormat.json or total == 0:
        return executor.run(rollback_id)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=stderr, transient=True) as progress:
        executor.listener = ProgressListener(progress, total)
        return executor.run(rollback_id)


def finish(result: RollbackResult, output: OutputFormat) -> None:
    def render() -> None:
        colour = "green" if result.status == RollbackStatus.SUCCEEDED else "red"
        stdout.print(f"[{colour}]{result.summary()}[/]")
        stdout.print(f"took {result.seconds:.1f}s; timeline: lastgood show {result.id}")

    emit(output, result.to_dict(), render)
    if result.status != RollbackStatus.SUCCEEDED:
        raise typer.Exit(1)


def rollback(
    env: EnvArgument,
    to: ToOption = None,
    only: OnlyOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    allow_destructive: Annotated[
        bool, typer.Option("--allow-destructive", help="With --yes: also run steps the plan marks destructive")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why; recorded in the ledger")] = "",
    severity: Annotated[
        str | None, typer.Option("--severity", help="critical|high|medium|low [default: the policy's]")
    ] = None,
    parallel: ParallelOption = 16,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Plan, confirm, execute, verify and record a rollback; the release left is marked bad."""
    ctx = open_env(file, env, parallel)
    planned = build_plan(ctx, to, split_names(only))
    if output == OutputFormat.text:
        warn_unfinished(ctx)
        render_plan(planned)
    if planned.blocked:
        raise Refused(f"{planned.blocked}. Nothing was changed.")
    if not planned.steps:
        emit(output, {"status": "nothing-to-do", "plan": planned.to_dict()}, lambda: None)
        return
    decision = decide(ctx, severity)
    if output == OutputFormat.text:
        stderr.print(f"decision: {decision.severity}: [bold]{decision.method}[/] ({decision.reason})")
    roles = ctx.runbook.policy.roles_of(ctx.actor.name)
    if decision.rolls_back_now(roles):
        confirm(ctx, planned, yes, allow_destructive)
    executor = Executor(ctx)
    rollback_id = executor.create(planned, reason)
    record_overrides(ctx, rollback_id, yes, allow_destructive and bool(planned.destructive_steps))
    status = apply_decision(ctx, rollback_id, decision, roles, None)
    if status == RollbackStatus.DECLINED:
        raise Refused(f"decision: fix forward, no rollback ({decision.reason}); recorded as {rollback_id}")
    if status == RollbackStatus.AWAITING_APPROVAL:
        who = ", ".join(decision.roles) or "anyone"
        raise Refused(
            f"rollback {rollback_id} awaits {decision.approvals_needed} approval(s) from: {who}. "
            f"Approve with: lastgood approve {rollback_id}"
        )
    if decision.method == "planned-rollback":
        message = f"rollback {rollback_id} is planned, not run: run it in its window with lastgood resume {rollback_id}"
        emit(
            output, {"id": rollback_id, "status": status, "decision": decision.to_dict()}, lambda: stdout.print(message)
        )
        return
    if output == OutputFormat.text:
        stderr.print(f"rollback {rollback_id} started (resume with: lastgood resume {rollback_id})")
    finish(execute(executor, rollback_id, len(planned.steps), output), output)


def record_overrides(ctx: EnvContext, rollback_id: str, yes: bool, destructive: bool) -> None:
    """Skipped safeguards go into the audit log."""
    overrides = []
    if yes and ctx.runbook.environment(ctx.env).protected:
        overrides.append("--yes skipped the typed confirmation of a protected environment")
    if destructive:
        overrides.append("--allow-destructive ran steps the plan marks destructive")
    with ctx.session() as session:
        for text in overrides:
            store.add_event(session, ctx.app, ctx.env, "override", text, ctx.clock.now(), rollback_id)


def warn_unfinished(ctx: EnvContext) -> None:
    with ctx.session() as session:
        unfinished = [
            r for r in store.list_rollbacks(session, ctx.app, ctx.env, 5) if r.status in ("running", "failed")
        ]
    for row in unfinished:
        stderr.print(f"[yellow]note[/]: rollback {row.id} is {row.status}; `lastgood resume {row.id}` finishes it")


def resume(
    rollback_id: Annotated[str, typer.Argument(help="The rollback id, e.g. rb-1a2b3c4d5e")],
    parallel: ParallelOption = 16,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Finish a rollback that failed or whose process died, without redoing the steps already done."""
    from lastgood.cli.common import ledger_for, open_runbook

    runbook = open_runbook(file)
    with ledger_for(runbook).session() as session:
        row = store.get_rollback(session, rollback_id)
        env, remaining = row.env, sum(1 for s in row.steps if s.status not in ("succeeded", "unchanged"))
    ctx = open_env(file, env, parallel)
    finish(execute(Executor(ctx), rollback_id, remaining, output), output)


def show(
    rollback_id: Annotated[str, typer.Argument(help="The rollback id")],
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """A rollback's steps and its timeline."""
    from lastgood.cli.common import ledger_for, open_runbook

    runbook = open_runbook(file)
    with ledger_for(runbook).session() as session:
        row = store.get_rollback(session, rollback_id)
        data: dict[str, Any] = {
            "id": row.id,
            "env": row.env,
            "status": row.status,
            "requested_by": row.requested_by,
            "reason": row.reason,
            "error": row.error,
            "steps": [
                {
                    "component": s.component,
                    "action": s.action,
                    "from": s.before,
                    "to": s.after,
                    "status": s.status,
                    "attempts": s.attempts,
                    "detail": s.detail,
                    "error": s.error,
                    "output": s.output,
                }
                for s in row.steps
            ],
            "timeline": [
                {"at": e.at.isoformat(), "type": e.type, "message": e.message}
                for e in store.events_of(session, rollback_id)
            ],
        }

    def render() -> None:
        stdout.print(f"rollback {data['id']} in {data['env']}: [bold]{data['status']}[/] (by {data['requested_by']})")
        table = Table(title="steps", title_justify="left")
        for column in ("component", "action", "from", "to", "status", "attempts"):
            table.add_column(column)
        for s in data["steps"]:
            table.add_row(s["component"], s["action"], s["from"], s["to"], s["status"], str(s["attempts"]))
        stdout.print(table)
        render_timeline(data["timeline"])

    emit(output, data, render)


def render_timeline(timeline: list[dict[str, Any]]) -> None:
    table = Table(title="timeline", title_justify="left")
    table.add_column("at (UTC)")
    table.add_column("event")
    table.add_column("detail")
    for event in timeline:
        table.add_row(event["at"][11:23], event["type"], event["message"])
    stdout.print(table)
