"""The app's audit log and the check of its hash chain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from lastgood.server.api.params import AppName
from lastgood.server.auth import Viewer
from lastgood.server.deps import State
from lastgood.service import audit
from lastgood.service.audit import AuditLog, AuditVerification

router = APIRouter(tags=["audit"])


@router.get("/apps/{app}/audit")
def get_audit(app: AppName, state: State, caller: Viewer, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> AuditLog:
    """The app's newest `limit` entries, oldest of them first: who did what, when."""
    return audit.log(state.apps.app_context(app, caller.user), limit, only_app=True)


@router.get("/apps/{app}/audit/verify")
def verify_audit(app: AppName, state: State, caller: Viewer) -> AuditVerification:
    """Every entry's hash and link checked (the whole ledger's chain); the first edited or deleted one named."""
    return audit.verify(state.apps.app_context(app, caller.user))
