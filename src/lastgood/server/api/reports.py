"""A rollback's incident record: Markdown, and a self-contained HTML page."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, PlainTextResponse

from lastgood.server.api.params import Id
from lastgood.server.auth import Viewer
from lastgood.server.deps import State
from lastgood.service.reports import Format, incident_report

router = APIRouter(tags=["reports"])


def _document(state: State, rollback_id: str, caller: Viewer, fmt: Format) -> str:
    app, _ = state.apps.find_rollback(rollback_id)
    return incident_report(state.apps.app_context(app, caller.user), rollback_id, (fmt,)).documents[fmt]


@router.get("/rollbacks/{rollback_id}/report.md", response_class=PlainTextResponse)
def report_markdown(rollback_id: Id, state: State, caller: Viewer) -> PlainTextResponse:
    """The incident record as Markdown: trigger values, releases, timeline, checklist, follow-up tasks."""
    text = _document(state, rollback_id, caller, "md")
    return PlainTextResponse(text, media_type="text/markdown; charset=utf-8")


@router.get("/rollbacks/{rollback_id}/report.html", response_class=HTMLResponse)
def report_html(rollback_id: Id, state: State, caller: Viewer) -> HTMLResponse:
    """The same record as one self-contained page (inline CSS, an SVG timeline, no script)."""
    return HTMLResponse(_document(state, rollback_id, caller, "html"))
