"""Rendering pages: the templates, what every page is given (the caller, its CSRF token, what its role may do),
and errors as a readable page instead of a problem document; an unauthenticated page request goes to /login."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from lastgood.domain.actor import role_allows
from lastgood.errors import LastgoodError
from lastgood.redact import redact
from lastgood.server.auth import Caller
from lastgood.server.problems import status_of
from lastgood.service.dashboard import UnknownDeployment

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.strftime("%Y-%m-%d %H:%M:%S")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


templates.env.filters["when"] = _when
templates.env.filters["percent"] = _percent
templates.env.filters["tojson_compact"] = lambda value: json.dumps(value, default=str, separators=(",", ":"))


def page(request: Request, name: str, caller: Caller | None, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page with the layout's needs: who is signed in, their CSRF token, `can(role)` for buttons."""

    def can(role: str) -> bool:
        return caller is not None and role_allows(caller.role, role)

    base = {"caller": caller, "csrf": caller.csrf if caller else None, "can": can}
    return templates.TemplateResponse(request, name, base | context, status_code=status_code)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    caller: Caller | None = getattr(request.state, "caller", None)
    back = request.headers.get("referer") or "/"
    return page(request, "error.html", caller, status, status=status, message=redact(message), back=back)


def web_status(error: LastgoodError) -> int:
    return 404 if isinstance(error, UnknownDeployment) else status_of(error)


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PageRoute(APIRoute):
    """A dashboard route: errors become a readable page with the API's status codes; no sign-in, /login."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except HTTPException as error:
                if error.status_code == 401:
                    return login_redirect(request)
                return error_page(request, error.status_code, str(error.detail))
            except LastgoodError as error:
                return error_page(request, web_status(error), str(error))
            except RequestValidationError as error:
                fields = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in error.errors())
                return error_page(request, 422, fields or "the form is not valid")

        return route


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path if request.method == "GET" else request.headers.get("referer", "/")
    if request.method == "GET" and request.url.query:
        target += "?" + request.url.query
    return RedirectResponse("/login?next=" + quote(local_path(target)), status_code=303)


def local_path(target: str | None) -> str:
    """Only a path on this site: a `next` of //evil.example or https://... goes to the overview instead."""
    if not target:
        return "/"
    if target.startswith(("http://", "https://")):
        tail = target.split("://", 1)[1]
        target = "/" + tail.split("/", 1)[1] if "/" in tail else "/"
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
