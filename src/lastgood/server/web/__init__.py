"""The dashboard: server-rendered pages (Jinja2) for people, sign-in by token into a session cookie, live
updates over Server-Sent Events. Every page calls the service layer as the signed-in user; forms post back to
the dashboard's own routes with the session's CSRF token."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from lastgood.server.web import routes

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(routes.router)
