"""lastgood stop ENV [--release]."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from lastgood.cli.common import EnvArgument, FileOption, OutputFormat, OutputOption, ask, emit, open_env, stdout
from lastgood.cli.interrupts import WaitOption, parse_wait
from lastgood.service import stop as emergency


def register(app: typer.Typer) -> None:
    app.command("stop")(stop)


def stop(
    env: EnvArgument,
    release: Annotated[bool, typer.Option("--release", help="Undo the active emergency stop exactly")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    wait: WaitOption = None,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Emergency stop: throttle every API Gateway stage in the file to 0 and turn kill-switch flags off.
    Refused (exit 3) while a rollback, deployment or drill holds the environment."""
    ctx = open_env(file, env)
    seconds = parse_wait(wait)
    if release:
        result = emergency.release(ctx, seconds)
    else:
        names = emergency.check_stop(ctx)  # nothing to stop is said before anything is asked
        if not yes:
            phrase = f"stop-{env}" if ctx.runbook.environment(env).protected else "yes"
            ask(f"Cut all traffic in {env} ({', '.join(names)})?", phrase)
        result = emergency.stop(ctx, seconds)

    def render() -> None:
        verb = "released" if release else "stopped"
        stdout.print(f"{result.id}: {verb}: {', '.join(result.done) or 'nothing'}")
        for name, error in result.failed.items():
            stdout.print(f"[red]failed[/] {name}: {escape(error)}")
        if not release and not result.failed:
            stdout.print(f"undo with: lastgood stop {env} --release")

    emit(output, result, render)
    if result.failed:
        raise typer.Exit(1)
