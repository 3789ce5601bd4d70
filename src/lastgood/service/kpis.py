"""The KPIs report over the ledger's rollbacks, and a person's review of one rollback (needed or not)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, select

from lastgood.errors import UnknownRollback
from lastgood.kpis import Section, compute, load_records, targets_dict
from lastgood.ledger import store
from lastgood.ledger.tables import EventRow
from lastgood.service.models import IsoTime
from lastgood.service.session import AppContext


class KpisResult(BaseModel):
    """Real incidents and drills apart; each section overall, per environment and per component kind."""

    env: str | None
    since: IsoTime | None
    targets: dict[str, float | None]
    incidents: Section
    drills: Section


class RollbackReview(BaseModel):
    id: str
    env: str
    reviewed_by: str
    unnecessary: bool
    note: str
    previous: bool | None


_CACHE_SIZE = 64
_cache: OrderedDict[tuple[object, ...], KpisResult] = OrderedDict()
_cache_lock = threading.Lock()


def kpis_report(ctx: AppContext, env: str | None, since: datetime) -> KpisResult:
    """The KPIs of the rollbacks created since `since` (to the minute), in `env` or every environment.

    A dashboard asks for this on every view, and it reads every rollback in the window; the answer is kept
    until the app's audit log moves on (every change to a rollback is an event) or the minute turns."""
    if env is not None:
        ctx.runbook.environment(env)  # an unknown name is bad input, with a hint
    since = since.replace(second=0, microsecond=0)
    targets = ctx.runbook.policy.targets
    with ctx.session() as session:
        newest = session.scalar(select(func.max(EventRow.id)).where(EventRow.app == ctx.app))
        key = (ctx.ledger.url, ctx.app, env, since, newest, targets.model_dump_json())
        with _cache_lock:
            cached = _cache.get(key)
        if cached is not None:
            return cached
        records = load_records(session, ctx.app, env, since)
    report = compute(records, targets, env, since)
    result = KpisResult(
        env=env, since=since, targets=targets_dict(targets), incidents=report.incidents, drills=report.drills
    )
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return result


def review_rollback(ctx: AppContext, rollback_id: str, unnecessary: bool, note: str = "") -> RollbackReview:
    """Record, as the context's actor, whether a rollback was needed; the false rollback rate counts the
    unnecessary ones. Reviewing again replaces the verdict (the audit log keeps both)."""
    who = ctx.actor.name
    with ctx.session() as session:
        row = store.get_rollback(session, rollback_id)
        if row.app != ctx.app:
            raise UnknownRollback(f"no rollback {rollback_id!r} in app {ctx.app!r} (it belongs to {row.app!r})")
        previous = row.unnecessary
        row.unnecessary, row.review_note, row.reviewed_by = unnecessary, note or None, who
        verdict = "unnecessary" if unnecessary else "necessary"
        message = f"rollback {row.id} reviewed by {who}: {verdict}" + (f": {note}" if note else "")
        details = {"unnecessary": unnecessary, "note": note, "previous": previous}
        store.add_event(session, row.app, row.env, "rollback-reviewed", message, ctx.clock.now(), row.id, details)
    return RollbackReview(
        id=row.id, env=row.env, reviewed_by=who, unnecessary=unnecessary, note=note, previous=previous
    )
