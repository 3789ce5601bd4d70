"""Observer hooks for figures the ledger does not keep (a caller such as the server registers a callback; with
none registered they cost a dict lookup). Callbacks must be quick and never raise into the operation."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("lastgood.telemetry")

# (app, env, operation, seconds waited, outcome: "claimed" | "refused")
LockWait = Callable[[str, str, str, float, str], None]
_lock_waits: list[LockWait] = []


def on_lock_wait(callback: LockWait) -> Callable[[], None]:
    """Call `callback` after every claim of an environment; returns the function that unregisters it."""
    _lock_waits.append(callback)
    return lambda: _lock_waits.remove(callback) if callback in _lock_waits else None


def lock_waited(app: str, env: str, operation: str, seconds: float, outcome: str) -> None:
    for callback in list(_lock_waits):
        try:
            callback(app, env, operation, seconds, outcome)
        except Exception:  # an observer's bug must not fail a rollback
            log.exception("lock-wait observer failed")
