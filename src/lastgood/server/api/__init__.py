"""The REST API, one module per resource; every handler calls the service layer as the authenticated caller."""

from __future__ import annotations

from fastapi import APIRouter

from lastgood.server.api import environments, rollbacks

router = APIRouter()
for module in (environments, rollbacks):
    router.include_router(module.router)
