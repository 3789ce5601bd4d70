"""Ticking a checklist item by hand (`lastgood check ID ITEM`, `POST /api/v1/rollbacks/{id}/checklist/{item}`):
one `checklist-ticked` event in the rollback's timeline, with the actor and the note; the report and `show`
count it. Items are the file's checklists, else the built-in list."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.orm import Session

from lastgood.config.comms import Checklists
from lastgood.errors import BadInput
from lastgood.ledger import store
from lastgood.report import ChecklistItem
from lastgood.report.checklist import TICKED, builtin_specs, checklist, file_specs
from lastgood.report.model import load_incident
from lastgood.service.session import AppContext


class CheckedItem(BaseModel):
    rollback_id: str
    item: str
    phase: str
    text: str
    by: str
    note: str
    message: str


class ChecklistView(BaseModel):
    phase: str
    key: str
    item: str
    source: str
    tick: str
    evidence: str


def check_item(ctx: AppContext, rollback_id: str, item: str, note: str = "") -> CheckedItem:
    """Record that `ctx.actor` did the item; an unknown rollback or item is bad input (exit 2), nothing written."""
    lists = ctx.runbook.checklists
    specs = builtin_specs() if lists is None else file_specs(lists)
    spec = next((s for s in specs if s.key == item), None)
    if spec is None:
        known = ", ".join(s.key for s in specs)
        raise BadInput(f"no checklist item {item!r} (the items: {known})")
    with ctx.session() as session:
        row = store.get_rollback(session, rollback_id)
        text = f"checked by {ctx.actor.name}: {spec.text}" + (f" ({note})" if note else "")
        data = {"item": spec.key, "phase": spec.phase, "note": note}
        store.add_event(session, row.app, row.env, TICKED, text, ctx.clock.now(), row.id, data, actor=ctx.actor.name)
    return CheckedItem(
        rollback_id=rollback_id,
        item=spec.key,
        phase=spec.phase,
        text=spec.text,
        by=ctx.actor.name,
        note=note,
        message=f"{rollback_id}: {spec.phase} item {spec.key!r} checked by {ctx.actor.name}",
    )


def rollback_checklist(ctx: AppContext, rollback_id: str) -> list[ChecklistView]:
    """The rollback's checklist (the file's, else the built-in one), ticked by the ledger and by hand."""
    with ctx.session() as session:
        return checklist_views(session, rollback_id, ctx.runbook.checklists)


def checklist_views(session: Session, rollback_id: str, lists: Checklists | None) -> list[ChecklistView]:
    return [_view(i) for i in checklist(load_incident(session, rollback_id), lists)]


def _view(item: ChecklistItem) -> ChecklistView:
    return ChecklistView(
        phase=item.phase, key=item.key, item=item.text, source=item.source, tick=item.tick, evidence=item.evidence
    )
