"""Browser sign-in: an API token, once, in exchange for a session cookie (HttpOnly, SameSite=Lax, Secure unless
the server runs on plain http); signing out ends the session (with its CSRF token, like every form)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from lastgood.server.auth import SESSION_COOKIE, Caller, current_caller, identify
from lastgood.server.deps import State
from lastgood.server.web.render import PageRoute, local_path, page
from lastgood.service.access import SESSION_HOURS, sign_in, sign_out

router = APIRouter(route_class=PageRoute)


@router.get("/login")
def login_form(request: Request, state: State, next: str = "/") -> Response:
    if identify(request, state) is not None:
        return RedirectResponse(local_path(next), status_code=303)
    return page(request, "login.html", None, next=local_path(next))


@router.post("/login")
def login(
    request: Request, state: State, token: Annotated[str, Form(max_length=512)] = "", next: Annotated[str, Form()] = "/"
) -> Response:
    session = sign_in(state.ledger, token.strip()) if token.strip() else None
    if session is None:
        message = (
            "That token is not valid (wrong, expired or revoked). Ask an admin for one: lastgood server token create"
        )
        return page(request, "login.html", None, 401, next=local_path(next), error=message)
    response = RedirectResponse(local_path(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.secret,
        max_age=SESSION_HOURS * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=state.settings.secure_cookies,
    )
    return response


@router.post("/logout")
def logout(request: Request, state: State, caller: Annotated[Caller, Depends(current_caller)]) -> Response:
    """The CSRF token is checked by `current_caller` (a cross-site form cannot sign anyone out)."""
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        sign_out(state.ledger, secret)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=state.settings.secure_cookies
    )
    return response
