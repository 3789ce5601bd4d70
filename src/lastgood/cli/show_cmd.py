"""lastgood show ID: a rollback (rb-...), a deployment (dp-...) or a release (its label)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lastgood.cli.common import FileOption, OutputFormat, OutputOption, emit, open_runbook, stdout
from lastgood.cli.rollback_cmd import lease_owner, render_timeline
from lastgood.cli.tables import print_table
from lastgood.config.models import Runbook
from lastgood.service.checklists import ChecklistView
from lastgood.service.follow import WorkRef, find_work, release_detail, work_state
from lastgood.service.views import rollback_detail, trigger_summary

IdArgument = Annotated[
    str, typer.Argument(help="A rollback id (rb-...), a deployment id (dp-...) or a release label", metavar="ID")
]
EnvOption = Annotated[
    str | None, typer.Option("--env", "-e", help="The environment of a release label found in several")
]


def register(app: typer.Typer) -> None:
    app.command("show")(show)


def show(
    id_: IdArgument, env: EnvOption = None, file: FileOption = None, output: OutputOption = OutputFormat.text
) -> None:
    """A rollback's steps, owner and timeline; a deployment's steps and decisions; a release's components and
    the rollbacks and deployments that touched it. Reads the ledger only."""
    runbook = open_runbook(file)
    ref = find_work(runbook, id_, env)
    if ref.kind == "rollback":
        show_rollback(runbook, ref.id, output)
    elif ref.kind == "deployment":
        show_deployment(runbook, ref, output)
    else:
        show_release(runbook, ref, output)


def show_rollback(runbook: Runbook, rollback_id: str, output: OutputFormat) -> None:
    detail = rollback_detail(runbook, rollback_id)

    def render() -> None:
        stdout.print(f"rollback {detail.id} in {detail.env}: [bold]{detail.status}[/] (by {detail.requested_by})")
        if detail.owner is not None:
            stdout.print(f"run by {lease_owner(detail.owner)}")
        if detail.reason:
            stdout.print(f"reason: {escape(detail.reason)}")
        if detail.trigger:
            stdout.print(f"trigger: {escape(trigger_summary(detail.trigger))}")
        table = Table(title="steps", title_justify="left")
        for column in ("component", "action", "from", "to", "status", "attempts"):
            table.add_column(column)
        for s in detail.steps:
            table.add_row(s.component, s.action, s.before, s.after, s.status, str(s.attempts))
        print_table(stdout, table)
        render_validation(detail.validation)
        if detail.acknowledged_by is not None:
            stdout.print(f"acknowledged by {detail.acknowledged_by} at {detail.acknowledged_at}")
        for sent in detail.escalations:
            stdout.print(f"sent {sent['key']} at {sent['at']} ({sent['note'] or ''})")
        render_timeline([e.model_dump(mode="json") for e in detail.timeline])
        render_checklist(detail.checklist)

    emit(output, detail.model_dump(mode="json", by_alias=True), render)


def render_checklist(items: list[ChecklistView]) -> None:
    table = Table(title="checklist (lastgood check ID ITEM ticks one by hand)", title_justify="left")
    for column in ("phase", "item", "key", "tick", "evidence"):
        table.add_column(column, overflow="fold")
    for i in items:
        style = {"done": "green", "not done": "yellow"}.get(i.tick, "dim")
        table.add_row(i.phase, escape(i.item), i.key, f"[{style}]{i.tick}[/]", escape(i.evidence))
    print_table(stdout, table)


def render_validation(validation: dict[str, Any] | None) -> None:
    if not validation:
        return
    table = Table(title=f"validation: {'passed' if validation['passed'] else 'FAILED'}", title_justify="left")
    for column in ("check", "type", "result", "detail"):
        table.add_column(column)
    for check in validation["checks"]:
        table.add_row(check["name"], check["type"], "passed" if check["passed"] else "failed", check["detail"])
    print_table(stdout, table)


def show_deployment(runbook: Runbook, ref: WorkRef, output: OutputFormat) -> None:
    state = work_state(runbook, ref)

    def render() -> None:
        stdout.print(escape(state.summary))
        table = Table(title="steps", title_justify="left")
        for column in ("traffic", "status", "decision"):
            table.add_column(column)
        for step in state.steps:
            table.add_row(step.name, step.status, escape(step.detail) or "-")
        print_table(stdout, table)
        if state.last_event:
            stdout.print(f"last event: {escape(state.last_event)}")

    emit(output, state, render)


def show_release(runbook: Runbook, ref: WorkRef, output: OutputFormat) -> None:
    detail = release_detail(runbook, ref)

    def render() -> None:
        release = detail.release
        flags = (" [green]live[/]" if release.live else "") + (
            f" [red]marked bad[/] ({escape(release.bad_reason or '')})" if release.bad else ""
        )
        stdout.print(f"release {escape(release.label)} in {detail.env}{flags}")
        stdout.print(f"recorded {release.recorded_at:%Y-%m-%d %H:%M:%S} UTC by {escape(release.recorded_by)}")
        stdout.print(f"components: {escape(', '.join(detail.components)) or 'none'}")
        stdout.print(f"rollbacks: {', '.join(detail.rollbacks) or 'none'}")
        stdout.print(f"deployments: {', '.join(detail.deployments) or 'none'}")

    emit(output, detail, render)
