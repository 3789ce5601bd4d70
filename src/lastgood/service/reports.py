"""The incident report of a rollback: Markdown and a self-contained HTML page, and the checklist as data."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from lastgood.report import build_report, render_html, render_markdown
from lastgood.service.session import AppContext

Format = Literal["md", "html"]


class ChecklistEntry(BaseModel):
    phase: str
    item: str
    key: str  # the name `lastgood check ID ITEM` takes
    source: str
    tick: str
    evidence: str


class IncidentReportContent(BaseModel):
    """The report's documents by format (`md`, `html`), as the API returns them."""

    id: str
    status: str
    checklist: list[ChecklistEntry]
    documents: dict[Format, str]


def incident_report(
    ctx: AppContext, rollback_id: str, formats: tuple[Format, ...] = ("md", "html")
) -> IncidentReportContent:
    """Read one rollback from the ledger and render it; the restore time is judged against the file's target."""
    target = ctx.runbook.policy.targets.mean_time_to_restore
    with ctx.session() as session:
        built = build_report(
            session,
            rollback_id,
            restore_target_seconds=target,
            checklists=ctx.runbook.checklists,
            post_rollback=ctx.runbook.post_rollback,
        )
    renderers = {"md": render_markdown, "html": render_html}
    checklist = [ChecklistEntry.model_validate(item) for item in built.to_dict()["checklist"]]
    return IncidentReportContent(
        id=built.incident.id,
        status=built.incident.status,
        checklist=checklist,
        documents={fmt: renderers[fmt](built) for fmt in formats},
    )
