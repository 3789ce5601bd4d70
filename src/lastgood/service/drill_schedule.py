"""Drills on a schedule (`drills: {staging: monthly}`): which environments' drills are due, from the last drill
in the ledger, and running a due one exactly once however many server replicas notice it.

The claim is the drill's own row: a scheduled drill's id is derived from (app, environment, the time it fell
due), so every replica that finds it due derives the same id, and the `drills` primary key lets one insert win
(`run_drill` turns the loser's IntegrityError into `DrillClaimed`). The next due time is counted from the last
drill of any kind (by hand, scheduled, passed or failed), so a drill run by hand also satisfies the schedule.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, select

from lastgood.config.schedules import due_at, is_due
from lastgood.ledger.tables import DrillRow
from lastgood.runtime.context import EnvContext
from lastgood.service.drill import DrillResult, run_drill
from lastgood.service.models import IsoTime
from lastgood.service.session import AppContext
from lastgood.sources.base import MetricSource


class DueDrill(BaseModel):
    env: str
    schedule: str
    last_drill_at: IsoTime | None
    due_at: IsoTime | None  # None: never drilled, due now
    due: bool
    claim: str  # the id the drill will have: one run per due time across replicas
    note: str = ""


def scheduled_id(app: str, env: str, due: datetime | None) -> str:
    slot = due.isoformat() if due is not None else "first"
    return "drill-s" + hashlib.sha256(f"{app}/{env}/{slot}".encode()).hexdigest()[:16]


def due_drills(ctx: AppContext, now: datetime | None = None) -> list[DueDrill]:
    """Every scheduled environment, due or not, in the file's order."""
    now = now or ctx.clock.now()
    runbook = ctx.runbook
    with ctx.session() as session:
        rows = session.execute(
            select(DrillRow.env, func.max(DrillRow.started_at)).where(DrillRow.app == ctx.app).group_by(DrillRow.env)
        )
        last = {env: _aware(at) for env, at in rows}
    out = []
    for env, schedule in runbook.drills.items():
        when = due_at(schedule, last.get(env))
        protected = runbook.environment(env).protected and not runbook.policy.drills.allow_protected
        note = "protected: refused unless policy.drills.allow_protected" if protected else ""
        out.append(
            DueDrill(
                env=env,
                schedule=schedule,
                last_drill_at=last.get(env),
                due_at=when,
                due=is_due(schedule, last.get(env), now),
                claim=scheduled_id(ctx.app, env, when),
                note=note,
            )
        )
    return out


def run_due_drill(ctx: EnvContext, source: MetricSource, claim: str) -> DrillResult | None:
    """Run the drill under its claimed id; None when that drill exists already (another replica ran it)."""
    with ctx.session() as session:
        if session.get(DrillRow, claim) is not None:
            return None
    return run_drill(ctx, source, drill_id=claim)


def _aware(at: datetime) -> datetime:
    """SQLite hands back naive datetimes; the ledger stores UTC."""
    from datetime import UTC

    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
