"""lastgood drill ENV."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from lastgood.cli.common import (
    FileOption,
    OutputFormat,
    OutputOption,
    ask,
    confirmation_phrase,
    emit,
    open_app_ctx,
    open_env,
    stderr,
    stdout,
)
from lastgood.cli.tables import print_table
from lastgood.config.durations import format_duration
from lastgood.errors import BadInput, ExitCode
from lastgood.service.drill import DrillResult, check_allowed, run_drill
from lastgood.service.drill_schedule import DueDrill, due_drills
from lastgood.sources.cloudwatch import CloudWatchSource

DRILLS_DUE = int(ExitCode.DRILLS_DUE)
OptionalEnv = Annotated[str | None, typer.Argument(help="The environment to drill", metavar="ENV", show_default=False)]


def register(app: typer.Typer) -> None:
    app.command("drill")(drill)


def drill(
    env: OptionalEnv = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    due: Annotated[
        bool,
        typer.Option(
            "--due", help=f"List the file's drill schedules (drills:) and which are due; exit {DRILLS_DUE} when any is"
        ),
    ] = False,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """A rollback drill: record, make the file's bad change, let the guard catch it, roll back, compare times.

    Asks first (type 'yes', or a protected environment's phrase; --yes skips). Refused on protected environments
    unless policy.drills.allow_protected. Exit 0 when the drill passed, 1 when it did not, 3 refused.
    With --due: the schedules and the last drill of each environment, exit 10 when a drill is due, else 0.
    """
    if due:
        list_due(file, output)
        return
    if env is None:
        raise BadInput("name the environment to drill (lastgood drill ENV), or list the due drills: --due")
    ctx = open_env(file, env)
    check_allowed(ctx)
    if not yes:
        ask(
            f"Drill in {env}: make the file's bad change, let the guard catch it and roll back?",
            confirmation_phrase(ctx.runbook, env),
        )
    if output == OutputFormat.text:
        stderr.print(
            f"drill in {env}: making the bad change, then guarding for "
            f"{format_duration(ctx.runbook.policy.drills.guard_for)}"
        )
    result = run_drill(ctx, CloudWatchSource(ctx.aws))
    file_sets = ctx.runbook.policy.targets.model_fields_set
    defaults = {what for what, key in _TARGET_KEYS.items() if key not in file_sets}
    emit(output, result.to_dict(), lambda: render(result, defaults))
    if result.status != "passed":
        raise typer.Exit(1)


_TARGET_KEYS = {"detect": "mean_time_to_detect", "restore": "mean_time_to_restore"}


def render(result: DrillResult, defaults: set[str] | None = None) -> None:
    """`defaults`: the figures whose target is lastgood's default, not the file's (said so)."""
    colour = "green" if result.status == "passed" else "red"
    stdout.print(f"{result.id}: [{colour}]{result.status}[/] — {result.notes}")
    for what, actual in (("detect", result.detect_seconds), ("restore", result.restore_seconds)):
        target = result.targets.get(f"{what}_seconds")
        shown = "-" if actual is None else format_duration(actual)
        default = ", the default: policy.targets does not set it" if what in (defaults or set()) else ""
        goal = "" if target is None else f" (target {format_duration(target)}{default})"
        stdout.print(f"  time to {what}: {shown}{goal}")
    results = result.targets.get("results") or {}
    maximum = result.targets.get("rollback_time_seconds")
    if maximum is not None:
        severity = result.targets.get("severity") or "its severity"
        stdout.print(
            f"  maximum rollback time of a {severity} incident ({format_duration(maximum)}): "
            f"{results.get('rollback_time', 'no data')}"
        )
    if result.targets.get("rto_seconds") is not None:
        stdout.print(f"  {result.env}'s recovery-time objective: {results.get('rto', 'no data')}")


def list_due(file: FileOption, output: OutputFormat) -> None:
    found = due_drills(open_app_ctx(file))
    emit(output, [d.model_dump(mode="json") for d in found], lambda: render_due(found))
    if any(d.due for d in found):
        raise typer.Exit(DRILLS_DUE)


def render_due(found: list[DueDrill]) -> None:
    if not found:
        stdout.print("no drill schedules in the file (drills: {staging: monthly})")
        return
    table = Table(title="drill schedules", title_justify="left")
    for column in ("environment", "schedule", "last drill", "next due", "due", "note"):
        table.add_column(column, overflow="fold")
    for d in found:
        last = d.last_drill_at.strftime("%Y-%m-%d %H:%M UTC") if d.last_drill_at else "never"
        next_ = d.due_at.strftime("%Y-%m-%d %H:%M UTC") if d.due_at else "now"
        table.add_row(d.env, d.schedule, last, next_, "[bold yellow]due[/]" if d.due else "no", d.note)
    print_table(stdout, table)
