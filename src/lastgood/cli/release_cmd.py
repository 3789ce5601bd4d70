"""lastgood release record | list | mark-bad."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from lastgood.cli.common import EnvArgument, FileOption, OutputFormat, OutputOption, emit, open_env, stdout
from lastgood.engine.record import record_release, warnings_for
from lastgood.kinds.registry import get_kind
from lastgood.ledger import store
from lastgood.ledger.tables import ReleaseRow

release_app = typer.Typer(help="Record and list releases: the exact state of every component.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(release_app, name="release")


def release_dict(release: ReleaseRow, live_id: int | None, with_components: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "label": release.label,
        "recorded_at": release.recorded_at.isoformat(),
        "recorded_by": release.recorded_by,
        "live": release.id == live_id,
        "bad": release.bad,
        "bad_reason": release.bad_reason,
    }
    if with_components:
        data["components"] = {c.component: {"kind": c.kind, "state": c.state} for c in release.components}
    return data


@release_app.command("record")
def record(
    env: EnvArgument,
    version: Annotated[str, typer.Option("--version", help="The release label, e.g. v42 or a git sha")],
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Read the live state of every component from AWS and store it as a release (it becomes the live one)."""
    ctx = open_env(file, env)
    release = record_release(ctx, version)
    warnings = warnings_for(ctx, release)

    def render() -> None:
        table = Table(title=f"release {release.label} recorded in {env}", title_justify="left")
        for column in ("component", "kind", "state"):
            table.add_column(column)
        for row in release.components:
            table.add_row(row.component, row.kind, get_kind(row.kind).describe(row.state))
        stdout.print(table)
        for warning in warnings:
            stdout.print(f"[yellow]warning[/]: {warning}")

    emit(output, {**release_dict(release, release.id, with_components=True), "warnings": warnings}, render)


@release_app.command("list")
def list_(
    env: EnvArgument,
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Releases, newest first, with the live one and those marked bad."""
    ctx = open_env(file, env)
    with ctx.session() as session:
        releases = store.list_releases(session, ctx.app, env)
        live = store.live_release(session, ctx.app, env)
    live_id = live.id if live else None

    def render() -> None:
        if not releases:
            stdout.print(f"no releases recorded in {env} yet: lastgood release record {env} --version LABEL")
            return
        table = Table(title=f"{ctx.app} releases in {env}", title_justify="left")
        for column in ("release", "recorded", "by", "status"):
            table.add_column(column)
        for release in releases:
            status = "[bold green]live[/]" if release.id == live_id else ""
            if release.bad:
                status = (status + " " if status else "") + f"[red]bad[/] ({release.bad_reason})"
            table.add_row(release.label, release.recorded_at.strftime("%Y-%m-%d %H:%M:%S"), release.recorded_by, status)
        stdout.print(table)

    emit(output, {"env": env, "releases": [release_dict(r, live_id) for r in releases]}, render)


@release_app.command("mark-bad")
def mark_bad(
    env: EnvArgument,
    label: Annotated[str, typer.Argument(help="The release to mark")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is bad")] = "marked bad by hand",
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Mark a release bad, so that automatic rollbacks never return to it."""
    ctx = open_env(file, env)
    with ctx.session() as session:
        release = store.get_release(session, ctx.app, env, label)
        store.mark_bad(session, release, reason, ctx.clock.now())
    emit(
        output,
        {"env": env, "label": label, "bad": True, "reason": reason},
        lambda: stdout.print(f"{label}: marked bad"),
    )
