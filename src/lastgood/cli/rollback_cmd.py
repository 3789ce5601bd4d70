"""lastgood plan | rollback | resume (show: show_cmd.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lastgood.cli.common import (
    EnvArgument,
    FileOption,
    OutputFormat,
    OutputOption,
    ParallelOption,
    ask,
    confirmation_phrase,
    emit,
    open_env,
    open_runbook,
    split_names,
    stderr,
    stdout,
)
from lastgood.cli.interrupts import WaitOption, exit_now, interruptible, parse_wait
from lastgood.cli.tables import print_table
from lastgood.config.durations import format_duration
from lastgood.config.policy import SEVERITIES
from lastgood.domain.states import RollbackStatus
from lastgood.errors import BadInput, Refused
from lastgood.runtime.context import EnvContext
from lastgood.service.models import Holder
from lastgood.service.plans import CHANGES_PENDING, SavedPlan, read_plan, saved_plan, write_plan
from lastgood.service.rollbacks import (
    Confirm,
    Decision,
    Hooks,
    Plan,
    RollbackOutcome,
    RollbackRequest,
    preview_plan,
    request_rollback,
    resume_rollback,
)
from lastgood.service.views import rollback_env, unfinished_rollbacks

ToOption = Annotated[
    str | None, typer.Option("--to", help="Release to return to [default: newest older release not marked bad]")
]
OnlyOption = Annotated[str | None, typer.Option("--only", help="Comma-separated components to roll back")]


def register(app: typer.Typer) -> None:
    app.command("plan")(plan)
    app.command("rollback")(rollback)
    app.command("resume")(resume)


def render_plan(plan: Plan) -> None:
    title = f"plan: {plan.env} from {plan.from_release or '(unrecorded)'} back to {plan.to_release}"
    if not plan.steps:
        stdout.print(f"{title}\n[green]nothing to change[/]: every component already matches {plan.to_release}")
    else:
        print_table(stdout, plan_table(plan, title))
        for step in plan.steps:
            for note in step.change.notes:
                stdout.print(f"  note: {step.component}: {note}")
        stdout.print(f"{len(plan.steps)} to change, estimated {format_duration(plan.estimate_seconds)}")
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
    if plan.steps and plan.validation:
        stdout.print("then validate (a failure ends it restored-unhealthy):")
        for check in plan.validation:
            stdout.print(f"  {escape(check['name'])} ({check['type']}): {escape(check['what'])}")


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
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Save the plan to FILE; `lastgood rollback ENV --plan FILE` runs exactly it"),
    ] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode",
            help=f"Exit 0 when there is nothing to change, {CHANGES_PENDING} when changes are pending, "
            "3 when the plan is blocked",
        ),
    ] = False,
    severity: Annotated[
        str | None,
        typer.Option(
            "--severity", help="critical|high|medium|low: the target the estimate is held to [default: the policy's]"
        ),
    ] = None,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Show what a rollback would change. Changes nothing (but --out FILE)."""
    ctx = open_env(file, env)
    names = split_names(only)
    result = preview_plan(ctx, to, names, severity=check_severity(severity))
    if out is not None:
        write_plan(saved_plan(result, names, ctx.actor.name), out)
    emit(output, result.to_dict(), lambda: render_plan(result))
    for warning in result.target_warnings():
        stderr.print(f"[bold red]warning[/]: {escape(warning)}")
    if out is not None and output == OutputFormat.text:
        stderr.print(f"plan saved to {out}; run it with: lastgood rollback {env} --plan {out}")
    if detailed_exitcode:
        raise typer.Exit(3 if result.blocked else CHANGES_PENDING if result.steps else 0)


def check_severity(severity: str | None) -> str | None:
    if severity is not None and severity not in SEVERITIES:
        raise BadInput(f"--severity: unknown severity {severity!r} (one of: {', '.join(SEVERITIES)})")
    return severity


def confirmer(ctx: EnvContext, yes: bool) -> Confirm:
    def confirm(plan: Plan, decision: Decision) -> None:
        if yes:
            return
        protected = f" {ctx.env} is protected;" if ctx.runbook.environment(ctx.env).protected else ""
        ask(f"Roll {ctx.env} back to {plan.to_release}?{protected}", confirmation_phrase(ctx.runbook, ctx.env))

    return confirm


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


class ConsoleHooks(Hooks):
    """The service's hooks for a person at a terminal: plan and decision shown, prompt, progress bar, Ctrl-C."""

    def __init__(self, ctx: EnvContext, yes: bool, output: OutputFormat) -> None:
        text = output == OutputFormat.text
        super().__init__(
            confirm=confirmer(ctx, yes),
            on_plan=self._plan if text else None,
            on_decision=self._decision if text else None,
            on_start=self._start,
        )
        self.ctx, self.text = ctx, text
        self.progress: Progress | None = None
        self.started = False  # armed when the run starts; before it, Ctrl-C (at the prompt) aborts, nothing changed

    def _plan(self, plan: Plan) -> None:
        warn_unfinished(self.ctx)
        render_plan(plan)

    def _decision(self, decision: Decision) -> None:
        severity = f"{decision.severity} (default severity)" if decision.severity_default else decision.severity
        stderr.print(f"decision: {severity}: [bold]{decision.method}[/] ({escape(decision.reason)})")

    def _start(self, rollback_id: str, steps: int) -> None:
        self.started = True
        if not self.text:
            return
        stderr.print(
            f"rollback {rollback_id} started (Ctrl-C stops it cleanly; resume with: lastgood resume {rollback_id})"
        )
        if steps:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            self.progress = Progress(*columns, console=stderr, transient=True)
            self.progress.start()
            self.listener = ProgressListener(self.progress, steps)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def run_with_console(
    ctx: EnvContext, yes: bool, output: OutputFormat, use_case: Callable[[Hooks], RollbackOutcome]
) -> RollbackOutcome:
    hooks = ConsoleHooks(ctx, yes, output)
    try:
        with interruptible(hooks.stop, lambda: _interrupting(output), lambda: hooks.started):
            return use_case(hooks)
    finally:
        hooks.close()


def _interrupting(output: OutputFormat) -> None:
    if output == OutputFormat.text:
        stderr.print(
            "[yellow]interrupt[/]: starting no new step; the calls in flight finish and are recorded "
            "(Ctrl-C again exits at once)"
        )


def finish(outcome: RollbackOutcome, output: OutputFormat) -> None:
    """Print the outcome; exit with its code (0 done, 1 failed, 3 not run, 130 interrupted)."""

    def render() -> None:
        if outcome.result is None:
            stdout.print(outcome.message)
            return
        colour = "green" if outcome.status == RollbackStatus.SUCCEEDED else "red"
        stdout.print(f"[{colour}]{outcome.message}[/]")
        stdout.print(f"took {outcome.result.seconds:.1f}s; timeline: lastgood show {outcome.id}")

    if outcome.exit_code == 3:
        raise Refused(outcome.message)
    emit(output, outcome.flat(), render)
    exit_now(outcome)


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
    trigger: Annotated[
        str | None,
        typer.Option(
            "--trigger",
            help="A manual trigger (user-reports, data-corruption, ...; the file's manual_triggers), recorded as "
            "the rollback's trigger; its severity unless --severity",
        ),
    ] = None,
    wait: WaitOption = None,
    parallel: ParallelOption = 16,
    saved: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="Run the plan saved by `plan --out FILE`; refused (exit 3) if the live state changed since",
        ),
    ] = None,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Plan, confirm, execute, verify and record a rollback; the release left is marked bad."""
    saved_plan = _saved(saved, env, to, only)
    ctx = open_env(file, env, parallel)
    request = RollbackRequest(
        saved_plan=saved_plan,
        to=saved_plan.to_release if saved_plan else to,
        only=saved_plan.only if saved_plan else split_names(only),
        reason=reason,
        severity=severity,
        manual_trigger=trigger,
        confirmed=yes,
        allow_destructive=allow_destructive,
        wait=parse_wait(wait),
    )
    outcome = run_with_console(ctx, yes, output, lambda hooks: request_rollback(ctx, request, hooks))
    finish(outcome, output)


def _saved(path: Path | None, env: str, to: str | None, only: str | None) -> SavedPlan | None:
    if path is None:
        return None
    if to is not None or only is not None:
        raise BadInput("--plan: the saved plan names its target and components; drop --to and --only")
    saved = read_plan(path)
    if saved.env != env:
        raise BadInput(f"--plan {path}: the plan is for {saved.env}, not {env}")
    return saved


def warn_unfinished(ctx: EnvContext) -> None:
    for rollback_id, status in unfinished_rollbacks(ctx):
        stderr.print(
            f"[yellow]note[/]: rollback {rollback_id} is {status}; rolling back now supersedes it "
            f"(`lastgood resume {rollback_id}` would finish it instead)"
        )


def resume(
    rollback_id: Annotated[
        str,
        typer.Argument(help="A rollback id (rb-1a2b3c4d5e) or a deployment id (dp-1a2b3c4d5e)", metavar="ID"),
    ],
    wait: WaitOption = None,
    parallel: ParallelOption = 16,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="A deployment: do not ask for confirmation")] = False,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Finish a rollback that failed, was interrupted or whose process died, without redoing the steps done; or
    go on with a paused deployment (or one whose process died) from its current step, in this process."""
    if rollback_id.startswith("dp-"):
        from lastgood.cli.deploy_cmd import resume_deployment

        resume_deployment(rollback_id, wait, yes, file, output)
        return
    ctx = open_env(file, rollback_env(open_runbook(file), rollback_id), parallel)
    outcome = run_with_console(
        ctx, True, output, lambda hooks: resume_rollback(ctx, rollback_id, parse_wait(wait), hooks)
    )
    finish(outcome, output)


def lease_owner(owner: Holder) -> str:
    return (
        f"{owner.actor} via {owner.via} on {owner.host} pid {owner.pid} "
        f"(heartbeat {owner.heartbeat_age_seconds}s ago, lease {owner.lease_expires_in_seconds}s left)"
    )


def render_timeline(timeline: list[dict[str, Any]]) -> None:
    table = Table(title="timeline", title_justify="left")
    table.add_column("at (UTC)")
    table.add_column("event")
    table.add_column("detail")
    for event in timeline:
        table.add_row(event["at"][11:23], event["type"], event["message"])
    print_table(stdout, table)
