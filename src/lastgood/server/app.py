"""The ASGI app: the API under /api/v1, the dashboard at /, health probes, background work in its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from lastgood import __version__
from lastgood.server import api, problems, slack, web
from lastgood.server.guarding import GuardScheduler
from lastgood.server.jobs import InProcessJobs, Jobs
from lastgood.server.metrics import ServerMetrics
from lastgood.server.metrics import router as metrics_router
from lastgood.server.state import ServerState


def create_app(state: ServerState) -> FastAPI:
    metrics = state.metrics = state.metrics or ServerMetrics(state, lambda: state.guard.watched() if state.guard else 0)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.settings.background and state.jobs is None:
            state.jobs = jobs_for(state)
        if state.settings.works and state.guard is None:
            settings = state.settings
            state.guard = GuardScheduler(
                state, settings.guard_tick, settings.recover_every, escalate_every=settings.escalate_every
            )
            state.guard.start()
        metrics.hook()
        try:
            yield
        finally:
            state.stopping.set()
            metrics.unhook()
            if state.guard is not None:
                state.guard.join()  # submits nothing more
            if state.jobs is not None:
                state.jobs.shutdown(wait=True)  # rollbacks record their calls in flight (up to 20 s)

    app = FastAPI(
        title="lastgood",
        version=__version__,
        description="Rollback runbooks as software: the team service's API.",
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    app.state.lastgood = state
    problems.install(app)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        """The process answers."""
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        """The process can serve: its ledger answers and it is not shutting down."""
        if state.stopping.is_set():
            return JSONResponse({"status": "stopping"}, status_code=503)
        try:
            state.ledger.current_revision()
        except Exception as error:  # any failure to reach the database means not ready
            return JSONResponse({"status": "ledger unreachable", "error": type(error).__name__}, status_code=503)
        if not getattr(state.jobs, "alive", lambda: True)():
            return JSONResponse({"status": "job queue worker stopped"}, status_code=503)
        return JSONResponse({"status": "ready", "role": state.settings.role})

    app.include_router(metrics_router)
    if state.settings.serves_api:
        app.include_router(api.router, prefix="/api/v1")
        app.include_router(slack.router)
        web.install(app)
    return app


def jobs_for(state: ServerState) -> Jobs:
    """PostgreSQL: the job queue, shared by every replica. SQLite: threads of this one process."""
    if state.apps.ledger.engine.dialect.name == "postgresql":
        from lastgood.server.queue import QueuedJobs  # procrastinate: the `postgres` extra

        concurrency = max(state.settings.workers, 16)  # a worker replica's jobs mostly wait on AWS and the database
        return QueuedJobs(state, state.apps.state_url, work=state.settings.works, concurrency=concurrency)
    return InProcessJobs(state, state.settings.workers)
