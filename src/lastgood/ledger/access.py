"""Users, API tokens and browser sessions of the server: secrets are stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lastgood.ledger.tables import ApiTokenRow, UserRow, WebSessionRow

TOKEN_PREFIX = "lg_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def put_user(session: Session, name: str, role: str, now: datetime, created_by: str) -> UserRow:
    """Create the user, or change the role of an existing one."""
    row = session.get(UserRow, name)
    if row is None:
        row = UserRow(name=name, role=role, created_at=now, created_by=created_by, disabled=False)
        session.add(row)
        session.flush()  # the user before its tokens (no ORM relationship orders them)
    row.role = role
    return row


def get_user(session: Session, name: str) -> UserRow | None:
    return session.get(UserRow, name)


def list_users(session: Session) -> list[UserRow]:
    return list(session.scalars(select(UserRow).order_by(UserRow.name)))


def new_token(session: Session, user: str, now: datetime, expires_at: datetime | None, label: str) -> str:
    """A new token for `user`, returned once in full: lg_<id>_<secret>."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiTokenRow(
            id=token_id, user=user, secret_hash=digest(secret), created_at=now, expires_at=expires_at, label=label
        )
    )
    return f"{TOKEN_PREFIX}{token_id}_{secret}"


def token_user(session: Session, token: str, now: datetime) -> UserRow | None:
    """The enabled user a live token belongs to, or None; marks the token used."""
    if not token.startswith(TOKEN_PREFIX) or token.count("_") < 2:
        return None
    token_id, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
    row = session.get(ApiTokenRow, token_id)
    if row is None or row.revoked_at is not None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if not hmac.compare_digest(row.secret_hash, digest(secret)):
        return None
    user = session.get(UserRow, row.user)
    if user is None or user.disabled:
        return None
    row.last_used_at = now
    return user


def revoke_token(session: Session, token_id: str, now: datetime) -> bool:
    row = session.get(ApiTokenRow, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now
    return True


def list_tokens(session: Session, user: str | None = None) -> list[ApiTokenRow]:
    query = select(ApiTokenRow).order_by(ApiTokenRow.created_at)
    if user is not None:
        query = query.where(ApiTokenRow.user == user)
    return list(session.scalars(query))


def open_web_session(session: Session, user: str, now: datetime, expires_at: datetime) -> tuple[str, str]:
    """A browser session: (the cookie's secret, the CSRF token)."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    session.add(WebSessionRow(secret_hash=digest(secret), user=user, csrf=csrf, created_at=now, expires_at=expires_at))
    return secret, csrf


def web_session(session: Session, secret: str, now: datetime) -> tuple[UserRow, str] | None:
    """(the enabled user, the CSRF token) of a live browser session, or None."""
    row = session.get(WebSessionRow, digest(secret))
    if row is None or row.expires_at <= now:
        return None
    user = session.get(UserRow, row.user)
    if user is None or user.disabled:
        return None
    return user, row.csrf


def close_web_session(session: Session, secret: str, now: datetime) -> None:
    session.execute(delete(WebSessionRow).where(WebSessionRow.secret_hash == digest(secret)))
    session.execute(delete(WebSessionRow).where(WebSessionRow.expires_at <= now))
