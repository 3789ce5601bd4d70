"""Who is calling: an API token (Authorization: Bearer), a browser session cookie (with its CSRF token on
every unsafe request), or, only from configured proxy addresses, a user header set by an authenticating
proxy. Nobody else gets in, except to /healthz and /readyz."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from lastgood.domain.actor import role_allows
from lastgood.server.state import ServerState, server_state
from lastgood.service.access import User, authenticate, session_user, user_named

SESSION_COOKIE = "lastgood_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Caller:
    """The authenticated user of a request, and how it signed in."""

    def __init__(self, user: User, method: str, csrf: str | None = None) -> None:
        self.user = user
        self.method = method  # token | session | proxy
        self.csrf = csrf

    @property
    def name(self) -> str:
        return self.user.name

    @property
    def role(self) -> str:
        return self.user.role


def identify(request: Request, state: ServerState) -> Caller | None:
    """The caller, or None when the request carries no valid credentials."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        user = authenticate(state.ledger, header[7:].strip())
        return Caller(user, "token") if user else None
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        found = session_user(state.ledger, secret)
        if found is not None:
            return Caller(found[0], "session", csrf=found[1])
    settings = state.settings
    if settings.trusted_proxy_header and settings.proxy_trusted(request.client.host if request.client else None):
        name = request.headers.get(settings.trusted_proxy_header, "").strip()
        user = user_named(state.ledger, name) if name else None
        return Caller(user, "proxy") if user else None
    return None


async def current_caller(request: Request, state: Annotated[ServerState, Depends(server_state)]) -> Caller:
    caller = identify(request, state)
    if caller is None:
        raise HTTPException(401, "sign in: send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
    if caller.method == "session" and request.method not in SAFE_METHODS:
        await _check_csrf(request, caller)
    request.state.caller = caller
    return caller


async def _check_csrf(request: Request, caller: Caller) -> None:
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not caller.csrf or not hmac.compare_digest(sent, caller.csrf):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")


def require(role: str) -> Callable[..., Caller]:
    """A dependency: the caller, who must have at least `role` (viewer < operator < approver < admin)."""

    def check(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
        if not role_allows(caller.role, role):
            raise HTTPException(403, f"{caller.name} is {caller.role}; this needs the {role} role or higher")
        return caller

    return check


Viewer = Annotated[Caller, Depends(require("viewer"))]
Operator = Annotated[Caller, Depends(require("operator"))]
Approver = Annotated[Caller, Depends(require("approver"))]
Admin = Annotated[Caller, Depends(require("admin"))]
