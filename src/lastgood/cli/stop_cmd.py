"""lastgood stop ENV [--release]."""

from __future__ import annotations

from typing import Annotated

import typer

from lastgood.cli.common import EnvArgument, FileOption, OutputFormat, OutputOption, emit, open_env, stderr, stdout
from lastgood.engine import stop as emergency
from lastgood.errors import Refused


def register(app: typer.Typer) -> None:
    app.command("stop")(stop)


def stop(
    env: EnvArgument,
    release: Annotated[bool, typer.Option("--release", help="Undo the active emergency stop exactly")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Emergency stop: throttle every API Gateway stage in the file to 0 and turn kill-switch flags off."""
    ctx = open_env(file, env)
    if release:
        result = emergency.release(ctx)
    else:
        names = [s.name for s in emergency.stoppable(ctx)]
        if not yes:
            _confirm(ctx.runbook.environment(env).protected, env, names)
        result = emergency.stop(ctx)

    def render() -> None:
        verb = "released" if release else "stopped"
        stdout.print(f"{result.id}: {verb}: {', '.join(result.done) or 'nothing'}")
        for name, error in result.failed.items():
            stdout.print(f"[red]failed[/] {name}: {error}")
        if not release and not result.failed:
            stdout.print(f"undo with: lastgood stop {env} --release")

    emit(output, result.to_dict(), render)
    if result.failed:
        raise typer.Exit(1)


def _confirm(protected: bool, env: str, names: list[str]) -> None:
    import sys

    phrase = f"stop-{env}" if protected else "yes"
    stderr.print(f"Cut all traffic in {env} ({', '.join(names)})? type '{phrase}' to continue: ", end="")
    answer = sys.stdin.readline()
    if answer.strip() != phrase:
        raise Refused("no confirmation; nothing was changed (pass --yes to skip the prompt)")
