"""lastgood report ID: the incident record of a rollback, as Markdown and as a self-contained HTML page."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from lastgood.cli.common import FileOption, OutputFormat, OutputOption, emit, ledger_for, open_runbook, stdout
from lastgood.errors import BadInput
from lastgood.report import IncidentReport, build_report, render_html, render_markdown


class ReportFormat(StrEnum):
    md = "md"
    html = "html"
    both = "both"


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def write_report(report: IncidentReport, out: Path, fmt: ReportFormat) -> dict[str, str]:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInput(f"--out: cannot create {out}: {error.strerror}") from None
    paths: dict[str, str] = {}
    if fmt in (ReportFormat.md, ReportFormat.both):
        paths["md"] = _write(out / f"report-{report.incident.id}.md", render_markdown(report))
    if fmt in (ReportFormat.html, ReportFormat.both):
        paths["html"] = _write(out / f"report-{report.incident.id}.html", render_html(report))
    return paths


def _write(path: Path, content: str) -> str:
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as error:
        raise BadInput(f"--out: cannot write {path}: {error.strerror}") from None
    return str(path.resolve())


def report(
    rollback_id: Annotated[str, typer.Argument(help="The rollback id, e.g. rb-1a2b3c4d5e")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write report-ID.md / .html into")] = Path("."),
    fmt: Annotated[ReportFormat, typer.Option("--format", help="md, html or both", case_sensitive=False)] = (
        ReportFormat.both
    ),
    file: FileOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Write a rollback's incident record: timeline, trigger values, checklist ticks and post-rollback actions."""
    runbook = open_runbook(file)
    target = runbook.policy.targets.mean_time_to_restore
    with ledger_for(runbook).session() as session:
        built = build_report(session, rollback_id, restore_target_seconds=target)
    paths = write_report(built, out, fmt)
    data: dict[str, Any] = {"id": built.incident.id, "status": built.incident.status, "paths": paths}
    data["checklist"] = built.to_dict()["checklist"]

    def render() -> None:
        for path in paths.values():
            stdout.print(path, soft_wrap=True)

    emit(output, data, render)
