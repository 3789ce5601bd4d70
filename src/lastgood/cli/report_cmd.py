"""lastgood report ID: the incident record of a rollback, as Markdown and as a self-contained HTML page."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel

from lastgood.cli.common import FileOption, OutputFormat, OutputOption, emit, open_app_ctx, stdout
from lastgood.errors import BadInput
from lastgood.service.reports import ChecklistEntry, Format, IncidentReportContent, incident_report


class ReportFormat(StrEnum):
    md = "md"
    html = "html"
    both = "both"


FORMATS: dict[ReportFormat, tuple[Format, ...]] = {
    ReportFormat.md: ("md",),
    ReportFormat.html: ("html",),
    ReportFormat.both: ("md", "html"),
}


class WrittenReport(BaseModel):
    id: str
    status: str
    paths: dict[Format, str]
    checklist: list[ChecklistEntry]


def register(app: typer.Typer) -> None:
    app.command("report")(report)


def write_report(content: IncidentReportContent, out: Path) -> WrittenReport:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInput(f"--out: cannot create {out}: {error.strerror}") from None
    paths = {fmt: _write(out / f"report-{content.id}.{fmt}", text) for fmt, text in content.documents.items()}
    return WrittenReport(id=content.id, status=content.status, paths=paths, checklist=content.checklist)


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
    written = write_report(incident_report(open_app_ctx(file), rollback_id, FORMATS[fmt]), out)

    def render() -> None:
        for path in written.paths.values():
            stdout.print(path, soft_wrap=True)

    emit(output, written, render)
