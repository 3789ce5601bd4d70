"""lastgood deploy | promote | abort: progressive delivery of a weighted component, judged by the guard at each step."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lastgood.cli.common import (
    EnvArgument,
    FileOption,
    OutputFormat,
    OutputOption,
    ask,
    confirmation_phrase,
    emit,
    open_env,
    open_runbook,
    option_duration,
    stderr,
    stdout,
)
from lastgood.cli.interrupts import WaitOption as QueueOption
from lastgood.cli.interrupts import exit_now, interruptible, parse_wait
from lastgood.cli.tables import print_table
from lastgood.errors import BadInput
from lastgood.judge.base import TriggerVerdict
from lastgood.runtime.context import EnvContext
from lastgood.service.deploy import (
    Deployer,
    Deployment,
    DeployRequest,
    DeployResult,
    act,
    act_on,
    deployment_where,
    parse_steps,
)
from lastgood.sources.cloudwatch import CloudWatchSource

_COLOURS = {"ok": "green", "breaching": "yellow", "firing": "red", "no-data": "dim", "error": "magenta"}
_DECISION_COLOURS = {
    "healthy": "green",
    "fired": "red",
    "canary-rollback": "red",
    "unjudgeable": "magenta",
    "not-the-cause": "yellow",
}
_CANARY_COLOURS = {
    "continue": "green",
    "rollback": "red",
    "not-the-cause": "yellow",
    "warming-up": "dim",
    "blind": "yellow",
}

ComponentOption = Annotated[
    str | None, typer.Option("--component", "-c", help="The component [default: the only one deploying]")
]
ForceOption = Annotated[
    bool,
    typer.Option("--force", help="Act from this process (when the `deploy` process is gone) instead of asking it"),
]
WaitOption = Annotated[str, typer.Option("--wait", help="How long to wait for the `deploy` process to act")]


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.command("promote")(promote)
    app.command("abort")(abort)
    app.command("pause")(pause)


class ConsoleDeployListener:
    """Prints each shift, each trigger's state when it changes, and each step's decision."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}
        self._canary_seen = 0

    def shifted(self, deployment: Deployment, step: int, percent: float) -> None:
        self._last.clear()
        stderr.print(
            f"[bold]step {step + 1}/{len(deployment.steps)}[/]: {percent:g}% of {deployment.component} "
            f"on version {deployment.to_version}"
        )

    def evaluated(self, verdicts: list[TriggerVerdict]) -> None:
        for v in verdicts:
            line = f"{v.state}:{v.breaching_periods}"
            if self._last.get(v.trigger) != line:
                self._last[v.trigger] = line
                stderr.print(f"  [{_COLOURS[v.state]}]{v.state:<9}[/] {v.trigger} ({v.action}): {escape(v.detail)}")

    def judged(self, decision: dict[str, Any]) -> None:
        colour = _DECISION_COLOURS.get(decision["decision"], "yellow")
        stderr.print(f"  decision at {decision['percent']:g}%: [{colour}]{decision['decision']}[/]")

    def canary(self, state: dict[str, Any]) -> None:
        """One line per period judged (the judge's state, e-value against its threshold, ratio)."""
        seen = state["periods_judged"] + state["periods_missing"]
        if seen != self._canary_seen:
            self._canary_seen = seen
            colour = _CANARY_COLOURS.get(state["state"], "white")
            stderr.print(f"  [{colour}]canary[/] {escape(state['detail'])}")

    def message(self, text: str) -> None:
        stderr.print(escape(text))


class StepListener:
    def step_started(self, component: str) -> None:
        stderr.print(f"  rolling back {component}")

    def step_progress(self, component: str, message: str) -> None:
        stderr.print(f"  [dim]{component}: {escape(message)}[/]")

    def step_finished(self, component: str, status: str, detail: str) -> None:
        colour = "green" if status in ("succeeded", "unchanged") else "red"
        stderr.print(f"  [{colour}]{status}[/] {component}: {escape(detail)}")


def _confirm(ctx: EnvContext, question: str, yes: bool) -> None:
    if not yes:
        ask(f"{question}?", confirmation_phrase(ctx.runbook, ctx.env))


def deploy(
    env: EnvArgument,
    component: Annotated[
        str | None,
        typer.Option(
            "--component",
            "-c",
            help="The component to shift: a lambda-alias, stepfunctions-alias, elbv2-listener or route53-weighted",
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            help="Where to shift traffic to: a Lambda version, a state machine version (number or ARN), "
            "a target group (name or ARN), a record set's SetIdentifier",
        ),
    ] = None,
    steps: Annotated[str, typer.Option("--steps", help="Percentages of traffic, in order")] = "10,50,100",
    pause: Annotated[str, typer.Option("--pause", help="How long each step is watched, e.g. 5m")] = "5m",
    release: Annotated[str | None, typer.Option("--release", help="The release label [default: the version]")] = None,
    resume: Annotated[
        str | None,
        typer.Option("--resume", help="Go on with deployment ID (paused, or its process gone) from its current step"),
    ] = None,
    allow_bad: Annotated[
        bool, typer.Option("--allow-bad", help="Deploy a version whose release was marked bad")
    ] = False,
    wait: QueueOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Shift a weighted component's traffic to VERSION step by step; the file's triggers judge each step.

    The release is recorded first. A rollback trigger that fires aborts: the component goes back to the old
    version (a verified rollback) and the release is marked bad. With a `canary:` block in the file, the canary judge
    compares the new version with the old one every period: it aborts when the new one is worse, and a rollback
    trigger that fires while both versions are equally bad is an alert, not an abort. `lastgood promote ENV` /
    `lastgood abort ENV` act on a running deployment from anywhere, within a second or two. The deployment holds
    ENV while it runs. Ctrl-C pauses it (`--resume ID` goes on). Exit codes: 0 promoted, 1 aborted or failed,
    3 refused (ENV held, a version marked bad without --allow-bad), 130 paused.
    """
    ask = None if resume else _request(component, version, steps, pause, release, allow_bad)
    queue = parse_wait(wait)
    ctx = open_env(file, env)
    text = output == OutputFormat.text
    stop = threading.Event()
    deployer = Deployer(
        ctx,
        CloudWatchSource(ctx.aws),
        listener=ConsoleDeployListener() if text else None,
        rollback_listener=StepListener() if text else None,
        stop=stop,
        wait=queue,
    )
    note = "\npausing: no new shift; the traffic stays where it is (Ctrl-C again to exit at once)"
    # Asked before Ctrl-C is taken over (at the prompt it interrupts, exit 130), and only for a deployable component.
    if ask is None:
        assert resume is not None
        _confirm(ctx, f"Resume deployment {resume} in {ctx.env}", yes)
    else:
        deployer.check(ask)
        shown = ",".join(f"{s:g}" for s in ask.steps)
        _confirm(ctx, f"Deploy version {ask.version} of {ask.component} to {ctx.env} in steps {shown}%", yes)
    with interruptible(stop, lambda: stderr.print(note)):
        result = deployer.deploy(ask) if ask is not None else deployer.resume(resume or "")
    emit(output, result.to_dict(), lambda: render(result))
    if result.status == "paused":
        stderr.print(f"paused: go on with {result.resume_command()}, or: lastgood promote {env} / lastgood abort {env}")
    exit_now(result)


def _request(
    component: str | None, version: str | None, steps: str, pause: str, release: str | None, allow_bad: bool
) -> DeployRequest:
    if component is None or version is None:
        raise BadInput("deploy needs --component and --version (or --resume ID to go on with a deployment)")
    return DeployRequest(
        component=component,
        version=version,
        steps=parse_steps(steps),
        pause_seconds=option_duration("--pause", pause),
        label=release,
        allow_bad=allow_bad,
    )


def promote(
    env: EnvArgument,
    component: ComponentOption = None,
    force: ForceOption = False,
    wait: WaitOption = "2m",
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Promote the running (or paused) deployment now: all traffic to the new version, its release live."""
    _act_and_report(env, component, "promote", force, wait, file, output, "promoted")


def abort(
    env: EnvArgument,
    component: ComponentOption = None,
    force: ForceOption = False,
    wait: WaitOption = "2m",
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Abort the running (or paused) deployment: all traffic back on the old version, the release bad."""
    _act_and_report(env, component, "abort", force, wait, file, output, "aborted")


def pause(
    deployment_id: Annotated[str, typer.Argument(help="The deployment id, e.g. dp-1a2b3c4d5e", metavar="ID")],
    force: ForceOption = False,
    wait: WaitOption = "2m",
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Pause a running deployment: no further shift and no promotion, the traffic left where its step put it.
    Its `deploy` process (or the server) pauses within a second or two and ends; one whose process is gone is
    paused here. Go on with `lastgood resume ID`; `promote` / `abort` still finish it. Exit 3 when it is not
    running (paused already, or finished)."""
    seconds = option_duration("--wait", wait)
    runbook = open_runbook(file)
    ctx = open_env(file, deployment_where(runbook, deployment_id)[1])
    listener = ConsoleDeployListener() if output == OutputFormat.text else None
    result = act_on(ctx, deployment_id, "pause", force, seconds, listener)
    emit(output, result.to_dict(), lambda: render(result))
    if result.status != "paused":
        raise typer.Exit(1)


def resume_deployment(deployment_id: str, wait: str | None, yes: bool, file: Path | None, output: OutputFormat) -> None:
    """`lastgood resume dp-...`: the paused deployment goes on in this process, as `deploy ENV --resume ID`."""
    env = deployment_where(open_runbook(file), deployment_id)[1]
    deploy(env, resume=deployment_id, wait=wait, yes=yes, file=file, output=output)


def _act_and_report(
    env: str, component: str | None, what: str, force: bool, wait: str, file: Any, output: OutputFormat, ok: str
) -> None:
    seconds = option_duration("--wait", wait)
    ctx = open_env(file, env)
    text = output == OutputFormat.text
    listener = ConsoleDeployListener() if text else None
    result = act(ctx, component, what, force, seconds, listener, StepListener() if text else None)
    emit(output, result.to_dict(), lambda: render(result))
    if result.status != ok:
        raise typer.Exit(1)


def render(result: DeployResult) -> None:
    if result.decisions:
        table = Table(title=f"deployment {result.id}: decisions", title_justify="left")
        for column in ("step", "traffic", "decision", "trigger", "state", "values", "detail"):
            table.add_column(column, overflow="fold")
        for decision in result.decisions:
            colour = _DECISION_COLOURS.get(decision["decision"], "yellow")
            verdicts = decision["verdicts"] or [{"trigger": "-", "state": "-", "values": [], "detail": "no triggers"}]
            for index, verdict in enumerate(verdicts):
                values = ", ".join("-" if v is None else f"{v:.3g}" for v in verdict["values"])
                table.add_row(
                    str(decision["step"] + 1) if index == 0 else "",
                    f"{decision['percent']:g}%" if index == 0 else "",
                    f"[{colour}]{decision['decision']}[/]" if index == 0 else "",
                    verdict["trigger"],
                    f"[{_COLOURS.get(verdict['state'], 'white')}]{verdict['state']}[/]",
                    values,
                    escape(verdict["detail"]),
                )
        print_table(stdout, table)
        for decision in result.decisions:
            if decision.get("canary"):
                canary = decision["canary"]
                colour = _CANARY_COLOURS.get(canary["state"], "white")
                stdout.print(
                    f"canary judge at {decision['percent']:g}% (version {canary['canary_version']} against "
                    f"{canary['baseline_version']}): [{colour}]{escape(canary['detail'])}[/]"
                )
    colour = {"promoted": "green", "paused": "yellow"}.get(result.status, "red")
    stdout.print(f"[{colour}]{result.status}[/]: {escape(result.message)}")
    if result.rollback is not None:
        stdout.print(
            f"rollback {result.rollback.id}: {result.rollback.status} (timeline: lastgood show {result.rollback.id})"
        )
