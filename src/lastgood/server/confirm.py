"""The typed phrase a protected environment asks of whoever changes it, sent with the request."""

from __future__ import annotations

from lastgood.config.models import Runbook
from lastgood.errors import ConfirmationNeeded


def check_phrase(runbook: Runbook, env: str, given: str | None, what: str, phrase: str | None = None) -> None:
    """Refused (409, nothing changed) on a protected environment unless `given` is its phrase (or `phrase`)."""
    environment = runbook.environment(env)
    wanted = phrase or environment.phrase(env)
    if environment.protected and given != wanted:
        raise ConfirmationNeeded(
            f"{env} is protected: send confirm={wanted!r} to {what}. Nothing was changed.", f"type '{wanted}'"
        )
