"""Holding an environment for one operation, with a lease its process keeps alive.

`hold(ctx, operation, subject)` claims the environment (refusing with the holder named, or waiting), renews
the lease from a daemon thread every third of its length, and lets go on exit. A process that dies stops
renewing; once the lease has expired, anyone may take the operation over (`resume`). Writes that move an
operation on check `Lease.check()` in their own transaction, so only the claimant moves it on.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lastgood.errors import EnvironmentHeld, LeaseLost
from lastgood.ledger import holds
from lastgood.ledger.holds import describe
from lastgood.runtime import telemetry
from lastgood.runtime.context import EnvContext

POLL_SECONDS = 0.5


def lease_seconds() -> float:
    """How long a claim outlives its last heartbeat (LASTGOOD_LEASE_SECONDS, default 30)."""
    return float(os.environ.get("LASTGOOD_LEASE_SECONDS", "") or 30)


@dataclass
class Lease:
    ctx: EnvContext
    claim: holds.Claim
    ttl: float
    took_over: dict[str, object] | None = None  # the expired holder this claim replaced
    renewed_at: datetime | None = None  # the clock just before the last claim or renewal that was written
    lost: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def check(self, session: Session) -> None:
        if not holds.holds(session, self.ctx.app, self.ctx.env, self.claim.token):
            self.lost.set()
            raise LeaseLost(
                f"{self.claim.subject}: this process's claim on {self.ctx.env} expired and was taken over; "
                "it stops here and leaves the rest to the new owner"
            )

    def surely_held(self, margin: float) -> bool:
        """Still held for `margin` seconds at least, known without the database: no one may take the claim over
        before `ttl` has passed since the heartbeat last written, which was no earlier than `renewed_at`."""
        if self.lost.is_set() or self.renewed_at is None:
            return False
        return (self.ctx.clock.now() - self.renewed_at).total_seconds() < self.ttl - margin

    def renew(self) -> bool:
        now = self.ctx.clock.now()
        with self.ctx.session() as session:
            ok = holds.renew(session, self.ctx.app, self.ctx.env, self.claim.token, now, self.ttl)
        if ok:
            self.renewed_at = now
        else:
            self.lost.set()
        return ok

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self.renew():
                    return
            except Exception:
                continue

    def start(self) -> None:
        threading.Thread(target=self._heartbeat, name=f"lease-{self.claim.subject}", daemon=True).start()

    def release(self) -> None:
        self._stop.set()
        with self.ctx.session() as session:
            holds.let_go(session, self.ctx.app, self.ctx.env, self.claim.token)


def held_message(env: str, holder: dict[str, object]) -> str:
    return (
        f"{env} is held by {holder['operation']} {holder['id']} of {holder['actor']} (via {holder['via']}), "
        f"since {str(holder['since'])[:19]}Z, on host {holder['host']} pid {holder['pid']}; "
        f"last heartbeat {holder['heartbeat_age_seconds']}s ago. Nothing was changed; "
        "try again when it has finished, or add --wait DURATION to queue behind it"
    )


def new_claim(ctx: EnvContext, operation: str, subject: str) -> holds.Claim:
    return holds.Claim(
        operation=operation,
        subject=subject,
        actor=ctx.actor.name,
        via=ctx.actor.via,
        host=socket.gethostname(),
        pid=os.getpid(),
        token=uuid.uuid4().hex,
    )


def try_claim(
    ctx: EnvContext, claim: holds.Claim, ttl: float
) -> tuple[dict[str, object] | None, dict[str, object] | None]:
    """(the live holder, or None when claimed; the expired holder taken over, if any)."""
    for _ in range(3):
        try:
            with ctx.session() as session:
                now = ctx.clock.now()
                live, previous = holds.claim(session, ctx.app, ctx.env, claim, now, ttl)
                return (describe(live, now), None) if live is not None else (None, previous)
        except IntegrityError:  # PostgreSQL: another first claim won the insert; read it next time
            continue
    raise EnvironmentHeld(f"{ctx.env}: could not claim the environment (contended)", {})


@contextmanager
def hold(ctx: EnvContext, operation: str, subject: str, wait: float | None = None) -> Iterator[Lease]:
    """Hold the environment for the block; refused (EnvironmentHeld, exit 3) while another live claim holds it,
    or after `wait` seconds of waiting for it. Under an operation that already holds it (`ctx.holding`: a drill's
    own rollbacks, a deployment's abort), the block runs under that claim."""
    if ctx.holding is not None:
        yield ctx.holding
        return
    lease = acquire(ctx, operation, subject, wait)
    try:
        yield lease
    finally:
        lease.release()


def acquire(ctx: EnvContext, operation: str, subject: str, wait: float | None = None) -> Lease:
    ttl = lease_seconds()
    claim = new_claim(ctx, operation, subject)
    started = time.monotonic()
    deadline = started + (wait or 0)
    while True:
        before = ctx.clock.now()
        holder, previous = try_claim(ctx, claim, ttl)
        if holder is None:
            lease = Lease(ctx, claim, ttl, took_over=previous, renewed_at=before)
            lease.start()
            telemetry.lock_waited(ctx.app, ctx.env, operation, time.monotonic() - started, "claimed")
            return lease
        if time.monotonic() >= deadline:
            telemetry.lock_waited(ctx.app, ctx.env, operation, time.monotonic() - started, "refused")
            raise EnvironmentHeld(held_message(ctx.env, holder), holder)
        time.sleep(POLL_SECONDS)


def current_holder(ctx: EnvContext) -> dict[str, object] | None:
    with ctx.session() as session:
        row = holds.holder(session, ctx.app, ctx.env)
        now = ctx.clock.now()
        return describe(row, now) if row is not None and row.expires_at > now else None
