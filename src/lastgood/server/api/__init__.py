"""The REST API, one module per resource; every handler calls the service layer as the authenticated caller."""

from __future__ import annotations

from fastapi import APIRouter

from lastgood.server.api import (
    audit,
    checklists,
    deployments,
    drills,
    environments,
    kpis,
    readiness,
    releases,
    reports,
    rollbacks,
    stop,
)

router = APIRouter()
for module in (
    environments,
    releases,
    rollbacks,
    deployments,
    stop,
    audit,
    kpis,
    readiness,
    drills,
    reports,
    checklists,
):
    router.include_router(module.router)
