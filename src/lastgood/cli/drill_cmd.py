"""lastgood drill ENV."""

from __future__ import annotations

import typer

from lastgood.cli.common import EnvArgument, FileOption, OutputFormat, OutputOption, emit, open_env, stderr, stdout
from lastgood.config.durations import format_duration
from lastgood.service.drill import DrillResult, check_allowed, run_drill
from lastgood.sources.cloudwatch import CloudWatchSource


def register(app: typer.Typer) -> None:
    app.command("drill")(drill)


def drill(env: EnvArgument, file: FileOption = None, output: OutputOption = OutputFormat.text) -> None:
    """A rollback drill: record, make the file's bad change, let the guard catch it, roll back, compare times.

    Refused on protected environments unless policy.drills.allow_protected. Exit 0 when the drill passed.
    """
    ctx = open_env(file, env)
    check_allowed(ctx)
    if output == OutputFormat.text:
        stderr.print(
            f"drill in {env}: making the bad change, then guarding for "
            f"{format_duration(ctx.runbook.policy.drills.guard_for)}"
        )
    result = run_drill(ctx, CloudWatchSource(ctx.aws))
    emit(output, result.to_dict(), lambda: render(result))
    if result.status != "passed":
        raise typer.Exit(1)


def render(result: DrillResult) -> None:
    colour = "green" if result.status == "passed" else "red"
    stdout.print(f"{result.id}: [{colour}]{result.status}[/] — {result.notes}")
    for what, actual in (("detect", result.detect_seconds), ("restore", result.restore_seconds)):
        target = result.targets.get(f"{what}_seconds")
        shown = "-" if actual is None else format_duration(actual)
        goal = "" if target is None else f" (target {format_duration(target)})"
        stdout.print(f"  time to {what}: {shown}{goal}")
