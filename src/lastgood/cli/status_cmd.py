"""lastgood status ENV."""

from __future__ import annotations

from datetime import datetime

import typer
from rich.markup import escape

from lastgood.cli.common import EnvArgument, FileOption, OutputFormat, OutputOption, emit, open_env, stdout
from lastgood.service.status import EnvironmentStatus, environment_status


def register(app: typer.Typer) -> None:
    app.command("status")(status)


def status(env: EnvArgument, file: FileOption = None, output: OutputOption = OutputFormat.text) -> None:
    """The environment now: its live release, the operation holding it, the last rollback, an active stop.
    Reads the ledger only."""
    result = environment_status(open_env(file, env))
    emit(output, result, lambda: render(result))


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


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
