"""The dashboard's pages (GET): overview, environment, rollback, deployment, audit, KPIs, and the fragments a
page loads lazily because they ask AWS (readiness, the plan). Forms, sign-in and the live feed are included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from lastgood.server.auth import Viewer
from lastgood.server.deps import State
from lastgood.server.web import events, forms, login
from lastgood.server.web.render import PageRoute, page
from lastgood.service import audit, dashboard, kpis, readiness, releases
from lastgood.service.events import events_after, latest_event_id
from lastgood.service.reports import incident_report
from lastgood.service.rollbacks import preview_plan
from lastgood.service.status import environment_status
from lastgood.service.stop import stoppable
from lastgood.service.views import rollback_detail

KPI_DAYS = 90

router = APIRouter(route_class=PageRoute, include_in_schema=False)
for module in (login, forms, events):
    router.include_router(module.router)


@router.get("/")
def overview(request: Request, state: State, caller: Viewer) -> HTMLResponse:
    """Every app and environment: the live release, guard health, the operation holding it, the last rollback."""
    apps = {
        app: [environment_status(state.apps.env_context(app, env, caller.user)) for env in state.apps.environments(app)]
        for app in state.apps.runbooks
    }
    return page(request, "overview.html", caller, apps=apps)


@router.get("/apps/{app}/environments/{env}")
def environment(request: Request, app: str, env: str, state: State, caller: Viewer) -> HTMLResponse:
    ctx = state.apps.env_context(app, env, caller.user)
    settings = ctx.runbook.environment(env)
    return page(
        request,
        "environment.html",
        caller,
        app=app,
        env=env,
        status=environment_status(ctx),
        releases=releases.list_releases(ctx, limit=20),
        rollbacks=dashboard.recent_rollbacks(ctx),
        deployments=dashboard.deployments(ctx),
        protected=settings.protected,
        phrase=settings.phrase(env),
        stoppable=stoppable(ctx),
        manual_triggers=ctx.runbook.manual_triggers,
    )


@router.get("/apps/{app}/environments/{env}/readiness")
def readiness_fragment(request: Request, app: str, env: str, state: State, caller: Viewer) -> HTMLResponse:
    """Asks AWS (each kind's checks), so the environment page loads it after it has shown."""
    result = readiness.readiness(state.apps.env_context(app, env, caller.user))
    return page(request, "_readiness.html", caller, readiness=result)


@router.get("/apps/{app}/environments/{env}/plan")
def plan_fragment(request: Request, app: str, env: str, state: State, caller: Viewer) -> HTMLResponse:
    """What a rollback would change now (reads every component's live state); changes nothing."""
    plan = preview_plan(state.apps.env_context(app, env, caller.user))
    return page(request, "_plan.html", caller, plan=plan.to_dict())


@router.get("/rollbacks/{rollback_id}")
def rollback(request: Request, rollback_id: str, state: State, caller: Viewer) -> HTMLResponse:
    app, env = state.apps.find_rollback(rollback_id)
    runbook = state.apps.runbook(app)
    timeline = events_after(runbook, 0, rollback_id=rollback_id, limit=1000)  # with ids: the feed goes on from them
    detail = rollback_detail(runbook, rollback_id)
    return page(
        request,
        "rollback.html",
        caller,
        app=app,
        env=env,
        rollback=detail,
        approvals=dashboard.approvals(runbook, rollback_id),
        timeline=timeline,
        last_event=timeline[-1].id if timeline else latest_event_id(runbook),
    )


@router.get("/rollbacks/{rollback_id}/report")
def report(rollback_id: str, state: State, caller: Viewer) -> HTMLResponse:
    """The incident record as its self-contained HTML page."""
    app, _ = state.apps.find_rollback(rollback_id)
    content = incident_report(state.apps.app_context(app, caller.user), rollback_id, ("html",))
    return HTMLResponse(content.documents["html"])


@router.get("/deployments/{deployment_id}")
def deployment(request: Request, deployment_id: str, state: State, caller: Viewer) -> HTMLResponse:
    app = next(
        (a for a, rb in state.apps.runbooks.items() if dashboard.deployment_where(rb, deployment_id) is not None), None
    )
    if app is None:
        raise dashboard.UnknownDeployment(f"no deployment {deployment_id!r} in the apps this server serves")
    view = dashboard.deployment_view(state.apps.runbook(app), deployment_id)
    return page(request, "deployment.html", caller, view=view, d=view.deployment)


@router.get("/audit")
def audit_log(request: Request, state: State, caller: Viewer) -> HTMLResponse:
    """The newest entries of each ledger (apps sharing a ledger share its log); the chain's verification reads
    every entry, so the page loads it after it has shown (`/audit/verify`)."""
    ledgers: dict[int, str] = {}
    for app in state.apps.runbooks:
        ledgers.setdefault(id(state.apps.ledger_of(app)), app)
    sections = [(app, audit.log(state.apps.app_context(app, caller.user), limit=200)) for app in ledgers.values()]
    return page(request, "audit.html", caller, sections=sections)


@router.get("/audit/verify")
def audit_verify(request: Request, app: str, state: State, caller: Viewer) -> HTMLResponse:
    verification = audit.verify(state.apps.app_context(app, caller.user))
    return page(request, "_verify.html", caller, app=app, verification=verification)


@router.get("/kpis")
def kpis_page(request: Request, state: State, caller: Viewer) -> HTMLResponse:
    since = datetime.now(UTC) - timedelta(days=KPI_DAYS)
    reports = {
        app: kpis.kpis_report(state.apps.app_context(app, caller.user), None, since) for app in state.apps.runbooks
    }
    return page(request, "kpis.html", caller, reports=reports, days=KPI_DAYS)
