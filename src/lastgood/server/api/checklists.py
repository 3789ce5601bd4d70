"""A rollback's checklist: read it (the file's, else the built-in list), tick an item by hand as the caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from lastgood.server.api.params import Id
from lastgood.server.auth import Operator, Viewer
from lastgood.server.deps import State
from lastgood.service.checklists import CheckedItem, ChecklistView, check_item, rollback_checklist

router = APIRouter(tags=["checklists"])

Item = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]


class CheckBody(BaseModel):
    note: str = Field(default="", max_length=2000, description="What was checked, and what it showed.")


@router.get("/rollbacks/{rollback_id}/checklist")
def get_checklist(rollback_id: Id, state: State, caller: Viewer) -> list[ChecklistView]:
    """Each item with its tick (done, not done, not applicable) and the evidence: the ledger's or a person's."""
    app, _ = state.apps.find_rollback(rollback_id)
    return rollback_checklist(state.apps.app_context(app, caller.user), rollback_id)


@router.post("/rollbacks/{rollback_id}/checklist/{item}")
def post_check(rollback_id: Id, item: Item, body: CheckBody, state: State, caller: Operator) -> CheckedItem:
    """Tick the item by hand, as the caller, with a note (`lastgood check ID ITEM --note`)."""
    app, _ = state.apps.find_rollback(rollback_id)
    return check_item(state.apps.app_context(app, caller.user), rollback_id, item, body.note)
