"""Who may use the server: users and their roles, API tokens, browser sessions.

The server's own state lives in the ledger the server was started on; every use case here takes that ledger.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from lastgood.clock import Clock, SystemClock
from lastgood.domain.actor import SERVER_ROLES
from lastgood.errors import BadInput
from lastgood.ledger import access
from lastgood.ledger.db import Ledger

SESSION_HOURS = 12


class User(BaseModel):
    name: str
    role: str


class IssuedToken(BaseModel):
    user: str
    role: str
    token: str  # shown once; only its digest is kept
    expires_at: datetime | None


class TokenInfo(BaseModel):
    id: str
    user: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked: bool


class WebSession(BaseModel):
    user: User
    secret: str
    csrf: str
    expires_at: datetime


def create_token(
    ledger: Ledger,
    user: str,
    role: str,
    created_by: str,
    expires_in: float | None = None,
    label: str = "",
    clock: Clock | None = None,
) -> IssuedToken:
    """Create the user (or set its role) and a new API token for it."""
    if role not in SERVER_ROLES:
        raise BadInput(f"--role: {role!r} is not a role; one of: {', '.join(SERVER_ROLES)}")
    if not user.strip() or len(user) > 256:
        raise BadInput("--user: a name of 1 to 256 characters")
    now = (clock or SystemClock()).now()
    expires_at = now + timedelta(seconds=expires_in) if expires_in else None
    with ledger.session(created_by) as session:
        access.put_user(session, user, role, now, created_by)
        token = access.new_token(session, user, now, expires_at, label)
    return IssuedToken(user=user, role=role, token=token, expires_at=expires_at)


def authenticate(ledger: Ledger, token: str, clock: Clock | None = None) -> User | None:
    now = (clock or SystemClock()).now()
    with ledger.session() as session:
        row = access.token_user(session, token, now)
        return User(name=row.name, role=row.role) if row is not None else None


def user_named(ledger: Ledger, name: str) -> User | None:
    with ledger.session() as session:
        row = access.get_user(session, name)
        return User(name=row.name, role=row.role) if row is not None and not row.disabled else None


def list_tokens(ledger: Ledger, user: str | None = None) -> list[TokenInfo]:
    with ledger.session() as session:
        return [
            TokenInfo(
                id=row.id,
                user=row.user,
                label=row.label,
                created_at=row.created_at,
                expires_at=row.expires_at,
                last_used_at=row.last_used_at,
                revoked=row.revoked_at is not None,
            )
            for row in access.list_tokens(session, user)
        ]


def revoke_token(ledger: Ledger, token_id: str, by: str, clock: Clock | None = None) -> None:
    now = (clock or SystemClock()).now()
    with ledger.session(by) as session:
        if not access.revoke_token(session, token_id, now):
            raise BadInput(f"no live token with id {token_id!r}")


def sign_in(ledger: Ledger, token: str, clock: Clock | None = None) -> WebSession | None:
    """A browser session for the token's user, or None when the token is not valid."""
    now = (clock or SystemClock()).now()
    expires_at = now + timedelta(hours=SESSION_HOURS)
    with ledger.session() as session:
        row = access.token_user(session, token, now)
        if row is None:
            return None
        secret, csrf = access.open_web_session(session, row.name, now, expires_at)
        return WebSession(user=User(name=row.name, role=row.role), secret=secret, csrf=csrf, expires_at=expires_at)


def session_user(ledger: Ledger, secret: str, clock: Clock | None = None) -> tuple[User, str] | None:
    """(the user, the CSRF token) of a live browser session."""
    now = (clock or SystemClock()).now()
    with ledger.session() as session:
        found = access.web_session(session, secret, now)
        if found is None:
            return None
        row, csrf = found
        return User(name=row.name, role=row.role), csrf


def sign_out(ledger: Ledger, secret: str, clock: Clock | None = None) -> None:
    now = (clock or SystemClock()).now()
    with ledger.session() as session:
        access.close_web_session(session, secret, now)
