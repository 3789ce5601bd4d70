"""lastgood guard."""

from __future__ import annotations

import threading
from typing import Annotated

import typer
from rich.markup import escape

from lastgood.cli.common import (
    EnvArgument,
    FileOption,
    OutputFormat,
    OutputOption,
    ParallelOption,
    emit,
    open_env,
    option_duration,
    stderr,
    stdout,
)
from lastgood.cli.interrupts import exit_now, interruptible
from lastgood.guard.loop import GuardOutcome
from lastgood.guard.verdicts import short_windows
from lastgood.judge.base import TriggerVerdict
from lastgood.service.guard import readiness_warnings, watch

_COLOURS = {"ok": "green", "breaching": "yellow", "firing": "red", "no-data": "dim", "error": "magenta"}


class ConsoleGuardListener:
    """Prints a trigger's line when its state changes, not every period."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def evaluated(self, verdicts: list[TriggerVerdict]) -> None:
        for v in verdicts:
            line = f"{v.state}:{v.breaching_periods}"
            if self._last.get(v.trigger) != line:
                self._last[v.trigger] = line
                colour = _COLOURS[v.state]
                stderr.print(f"  [{colour}]{v.state:<9}[/] {v.trigger} ({v.action}): {v.detail}")

    def rollback_started(self, rollback_id: str, verdict: TriggerVerdict) -> None:
        stderr.print(f"[bold red]{verdict.trigger} fired[/]: rolling back ({rollback_id})")


def register(app: typer.Typer) -> None:
    app.command("guard")(guard)


def guard(
    env: EnvArgument,
    for_: Annotated[str, typer.Option("--for", help="How long to watch, e.g. 30m")] = "30m",
    force: Annotated[
        bool, typer.Option("--force", help="Guard even when a rollback to the previous release is impossible")
    ] = False,
    parallel: ParallelOption = 16,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Watch the file's triggers (CloudWatch, Prometheus, probes); a rollback trigger that holds rolls back.

    Exit codes: 0 healthy (every rollback trigger judged on data over its whole window, none fired); 1 judged
    bad (rolled back, or the rollback failed); 3 a trigger fired but there was no release to roll back to, or
    (without --force) rolling back to the previous release is impossible (`lastgood readiness` says why), so
    nothing was watched; 4 blind (a rollback trigger had no data or its source failed); 5 inconclusive (the
    watch ended before a rollback trigger's window could complete); 130 interrupted.
    """
    duration = option_duration("--for", for_)
    ctx = open_env(file, env, parallel)
    warnings = readiness_warnings(ctx, force) + short_windows(ctx.runbook.triggers_for(env), duration)
    for warning in warnings:
        stderr.print(f"[yellow]warning[/]: {escape(warning)}")
    listener = ConsoleGuardListener() if output == OutputFormat.text else None
    if output == OutputFormat.text:
        judge = " and the canary judge (on an alias with a canary in flight)" if ctx.runbook.canary else ""
        stderr.print(f"guarding {ctx.app}/{env} for {for_}: {len(ctx.runbook.triggers)} triggers{judge}")
    stop = threading.Event()
    with interruptible(
        stop, lambda: stderr.print("[yellow]interrupt[/]: the guard stops (Ctrl-C again exits at once)")
    ):
        outcome = watch(ctx, duration, listener=listener, stop=stop)
    emit(output, outcome.to_dict(), lambda: render(outcome))
    exit_now(outcome)


_VERDICT_COLOURS = {"healthy": "green", "blind": "magenta", "inconclusive": "yellow"}


def render(outcome: GuardOutcome) -> None:
    colour = _VERDICT_COLOURS.get(outcome.status, "red")
    stdout.print(f"[{colour}]{outcome.status}[/]: {escape(outcome.message)}")
    for canary in outcome.canary:
        stdout.print(f"canary {canary['label']}: {escape(canary['detail'])}")
    for blind in outcome.blind:
        stdout.print(f"[yellow]alert[/]: {escape(blind)}")
