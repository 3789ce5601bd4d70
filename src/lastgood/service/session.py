"""Opening what a use case works on: one environment (`EnvContext`) or the whole app (`AppContext`).

Callers (the CLI, the server, workers) come here rather than to the ledger: they hold a context, never a
database handle.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from lastgood.aws.clients import AwsClients
from lastgood.clock import Clock, SystemClock
from lastgood.config.models import Runbook
from lastgood.domain.actor import Actor
from lastgood.ledger.db import Ledger, open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.runtime.notifications import dispatcher_for

__all__ = [  # Ledger and resolve_url: the server names its state through here, never through the ledger
    "AppContext",
    "Ledger",
    "forget_ledgers",
    "ledger_for",
    "open_app",
    "open_environment",
    "resolve_url",
    "shared_ledger",
]


_ledgers: dict[str, Ledger] = {}
_ledgers_lock = threading.Lock()


def ledger_for(runbook: Runbook) -> Ledger:
    """The file's ledger (LASTGOOD_STATE, else `state:`), migrated to head; one per URL and process, so a
    server opening it on every request migrates and pools once."""
    return shared_ledger(resolve_url(runbook.state, runbook.base_dir))


def shared_ledger(url: str) -> Ledger:
    with _ledgers_lock:
        ledger = _ledgers.get(url)
        if ledger is None:
            ledger = _ledgers[url] = open_ledger(url)
        return ledger


def forget_ledgers() -> None:
    """Close every shared ledger (tests that drop their databases, a server shutting down)."""
    with _ledgers_lock:
        for ledger in _ledgers.values():
            ledger.close()
        _ledgers.clear()


@dataclass
class AppContext:
    """The app-wide use cases' context (audit, KPIs, reports, reviews): no environment, no AWS."""

    runbook: Runbook
    ledger: Ledger
    actor: Actor
    clock: Clock = field(default_factory=SystemClock)

    @property
    def app(self) -> str:
        return self.runbook.app

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.ledger.session(self.actor.name) as session:
            yield session


def open_app(runbook: Runbook, actor: Actor) -> AppContext:
    return AppContext(runbook=runbook, ledger=ledger_for(runbook), actor=actor)


def open_environment(
    runbook: Runbook, env: str, actor: Actor, parallel: int = 16, aws: AwsClients | None = None
) -> EnvContext:
    """`aws`: clients to reuse (a server keeps one set per environment; boto3 clients are thread-safe)."""
    environment = runbook.environment(env)
    ctx = EnvContext(
        runbook=runbook,
        env=env,
        ledger=ledger_for(runbook),
        aws=aws or AwsClients(environment.aws, max_pool_connections=parallel + 4),
        concurrency=parallel,
        actor=actor,
    )
    ctx.dispatch = dispatcher_for(ctx)
    return ctx
