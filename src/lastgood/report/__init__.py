"""The incident record of a rollback: timeline, trigger values, checklist and post-rollback actions.

with ledger.session() as session:
    report = build_report(session, "rb-1a2b3c4d5e")
markdown = render_markdown(report)
page = render_html(report)          # one self-contained file: inline CSS, the timeline as inline SVG
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from lastgood.config.comms import Checklists, PostAction
from lastgood.report.actions import actions, file_actions
from lastgood.report.checklist import checklist
from lastgood.report.html import render_html
from lastgood.report.markdown import render_markdown
from lastgood.report.model import ChecklistItem, Incident, IncidentReport, durations, load_incident, timeline

__all__ = [
    "ChecklistItem",
    "Incident",
    "IncidentReport",
    "build_report",
    "render_html",
    "render_markdown",
]


def build_report(
    session: Session,
    rollback_id: str,
    *,
    restore_target_seconds: float | None = None,
    generated_at: datetime | None = None,
    checklists: Checklists | None = None,
    post_rollback: Sequence[PostAction] = (),
) -> IncidentReport:
    """Read one rollback from the ledger and tick the checklist (the file's, else the runbooks') by what it shows;
    the file's post-rollback actions follow lastgood's own under their horizon."""
    incident = load_incident(session, rollback_id)
    items = checklist(incident, checklists)
    spans = durations(incident)
    return IncidentReport(
        incident=incident,
        timeline=timeline(incident),
        checklist=items,
        actions=actions(incident, items, spans, restore_target_seconds) + file_actions(post_rollback),
        durations=spans,
        generated_at=generated_at or datetime.now(UTC),
        restore_target_seconds=restore_target_seconds,
    )
