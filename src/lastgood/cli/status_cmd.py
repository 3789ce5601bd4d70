"""lastgood status [ENV]."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape

from lastgood.cli.common import FileOption, OutputFormat, OutputOption, cli_actor, emit, open_env, open_runbook, stdout
from lastgood.service.status import EnvironmentStatus, all_environments_status, environment_status

OptionalEnv = Annotated[
    str | None,
    typer.Argument(help="Environment name from the file [default: every environment]", metavar="[ENV]"),
]


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(env: OptionalEnv = None, file: FileOption = None, output: OutputOption = OutputFormat.text) -> None:
    """What is live, running, held and awaiting approval: each environment's live release, the operation holding
    it, the deployments running or paused, the rollbacks running, awaiting approval, planned or resumable, the
    last rollback and an active stop. Reads the ledger only. Follow one with `lastgood watch ID`."""
    if env is not None:
        result = environment_status(open_env(file, env))
        emit(output, result, lambda: render(result))
        return
    runbook = open_runbook(file)
    results = all_environments_status(runbook, cli_actor(runbook))
    emit(output, [r.model_dump(mode="json") for r in results], lambda: render_all(results))


def render_all(results: list[EnvironmentStatus]) -> None:
    for index, result in enumerate(results):
        if index:
            stdout.print()
        render(result)


def render(result: EnvironmentStatus) -> None:
    for label, value in lines(result):
        stdout.print(f"{label:<14} {value}")


def lines(result: EnvironmentStatus) -> list[tuple[str, str]]:
    live, holder, last, stop = result.live, result.holder, result.last_rollback, result.active_stop
    out = [("environment", escape(f"{result.app}/{result.env}"))]
    if live is None:
        out.append(("live release", f"none recorded: lastgood release record {result.env} --version LABEL"))
    else:
        bad = f" [red]marked bad[/] ({escape(live.bad_reason or '')})" if live.bad else ""
        out.append(
            (
                "live release",
                f"{escape(live.label)}, recorded {_at(live.recorded_at)} by {escape(live.recorded_by)}{bad}",
            )
        )
    if holder is None:
        out.append(("held by", "nobody"))
    else:
        who = f"{holder.operation} {holder.id} of {holder.actor} (via {holder.via}) on {holder.host} pid {holder.pid}"
        out.append(("held by", f"[yellow]{escape(who)}[/], since {holder.since[:19]}Z"))
    out += work_lines(result)
    if last is None:
        out.append(("last rollback", "none"))
    else:
        route = f"{last.from_release or '?'} -> {last.to_release or '?'}"
        drill = " (drill)" if last.drill else ""
        out.append(("last rollback", escape(f"{last.id} {route}: {last.status}{drill}, {_at(last.created_at)}")))
    if stop is not None:
        parts = ", ".join(stop.components) or "nothing yet"
        out.append(
            ("stopped", f"[red]{escape(f'{stop.id} by {stop.created_by} since {_at(stop.created_at)}: {parts}')}[/]")
        )
    return out


_NEXT = {
    "awaiting-approval": "lastgood approve {id}",
    "planned": "lastgood resume {id}",
    "failed": "lastgood resume {id}",
    "interrupted": "lastgood resume {id}",
    "running": "lastgood watch {id}",
    "paused": "lastgood resume {id}",
    "restored-unhealthy": "lastgood ack {id} (then fix forward; lastgood show {id} names the failing checks)",
}


def work_lines(result: EnvironmentStatus) -> list[tuple[str, str]]:
    """The work in flight, one line each, with the command that follows or acts on it."""
    out = []
    for d in result.deployments:
        asked = f", {d.requested} requested" if d.requested else ""
        text = (
            f"{d.id} {d.component} {d.from_version} -> {d.to_version}: {d.status} at {d.percent:g}% "
            f"(step {max(d.step, 0)} of {d.steps}){asked}, by {d.started_by}"
        )
        out.append(("deployment", f"{_colour(d.status, escape(text))}; next: {_NEXT[d.status].format(id=d.id)}"))
    for r in result.rollbacks:
        text = f"{r.id} {r.from_release or '?'} -> {r.to_release or '?'}: {r.status}, by {r.requested_by}"
        out.append(("rollback", f"{_colour(r.status, escape(text))}; next: {_NEXT[r.status].format(id=r.id)}"))
    if not out:
        out.append(("in flight", "nothing running, paused or awaiting approval"))
    return out


def _colour(status: str, text: str) -> str:
    colour = {"running": "cyan", "awaiting-approval": "yellow", "paused": "yellow"}.get(status, "red")
    return f"[{colour}]{text}[/]"


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
