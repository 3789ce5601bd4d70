"""lastgood drill ENV."""

from __future__ import annotations

from typing import Annotated

import typer

from lastgood.cli.common import (
    EnvArgument,
    FileOption,
    OutputFormat,
    OutputOption,
    ask,
    confirmation_phrase,
    emit,
    open_env,
    stderr,
    stdout,
)
from lastgood.config.durations import format_duration
from lastgood.service.drill import DrillResult, check_allowed, run_drill
from lastgood.sources.cloudwatch import CloudWatchSource


def register(app: typer.Typer) -> None:
    app.command("drill")(drill)


def drill(
    env: EnvArgument,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """A rollback drill: record, make the file's bad change, let the guard catch it, roll back, compare times.

    Asks first (type 'yes', or a protected environment's phrase; --yes skips). Refused on protected environments
    unless policy.drills.allow_protected. Exit 0 when the drill passed, 1 when it did not, 3 refused.
    """
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
