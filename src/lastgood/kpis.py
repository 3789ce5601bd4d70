"""000's KPIs over the rollbacks in the ledger: how fast bad releases are caught, decided on and undone.

Every figure is computed from one `RollbackRecord` per rollback (built from its RollbackRow, its StepRows and
the release it left). Definitions, in seconds:

- deployment time = `recorded_at` of the release the rollback left (`from_release`); none if unrecorded.
- detected = `detected_at` (the guard's detection, or the decision's time), else `created_at` when nothing
  recorded it.
- time to detect  = detected - deployment time. Only when the deployment time is known.
- time to decide  = (`decided_at`, else `started_at`) - detected. Only when one of the two is set.
- time to restore = `finished_at` - detected, for rollbacks that succeeded. This is 000's "mean rollback time".
An interval that comes out negative (times recorded out of order) is not a measurement and is left out.

Per figure: the sample count, the mean, and the 95th percentile by the nearest-rank method (the smallest sample
with at least 95% of the samples at or below it: the ceil(0.95 n)-th smallest). NumPy computes them when it is
installed (`percentile(method="inverted_cdf")` is the nearest-rank method); otherwise the standard library does.

- rollbacks = every rollback record in the group, including those declined (fix forward), denied, awaiting
  approval or planned; ran = those that started (running, succeeded or failed).
- success rate = succeeded / finished, where finished = succeeded, failed or restored-unhealthy (planned and
  running rollbacks are still undecided; a failed rollback that is later resumed and succeeds counts as succeeded
  from then on).
- restored-unhealthy = rollbacks that restored every component but failed the environment's `validate:` checks;
  their share is of those finished. They are not successes, and their time is not a time to restore (the
  service was not restored).
- false rollback rate = rollbacks that ran and were reviewed as unnecessary (`lastgood rollback-review ID
  --unnecessary`) / ALL rollbacks that ran, reviewed or not: a rollback nobody questioned counts as necessary.
  The number reviewed is reported beside it, so a rate over few reviews can be read for what it is.
- data-loss incidents = rollbacks with at least one step that succeeded with `data_loss_window_seconds` > 0
  (a restore into a copy that went through; the window is written when the step is planned, so a restore
  that never ran, failed, or found nothing to do lost nothing).

Groups: overall, per environment, and per component kind (a rollback counts once in the group of every kind
among its steps). Drills (`drill` set) and real incidents are two separate sections and never mix.

Each figure with a target in the file (`policy.targets`) is "met" when it is at least as good as the target
(the target is the worst acceptable value: times and false rollback rate <= target, success rate >= target,
data-loss incidents <= target), "missed" otherwise, "no data" when there is nothing to measure, and
"no target" when the file sets none (mean time to detect is optional).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from lastgood.config.policy import Targets
from lastgood.ledger.tables import ReleaseRow, RollbackRow, StepRow

CheckStatus = Literal["met", "missed", "no data", "no target"]
PERCENTILE = 95
FINISHED = ("succeeded", "failed", "restored-unhealthy")
RAN = ("running", "succeeded", "failed", "restored-unhealthy")
HIGHER_IS_BETTER = {"success_rate"}


@dataclass(frozen=True)
class RollbackRecord:
    """What the KPIs need to know about one rollback."""

    id: str
    env: str
    kinds: tuple[str, ...]
    drill: bool
    status: str
    created_at: datetime
    deployed_at: datetime | None = None
    detected_at: datetime | None = None
    decided_at: datetime | None = None
    approved_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    unnecessary: bool | None = None
    data_loss: bool = False
    severity: str | None = None

    @property
    def detected(self) -> datetime:
        return self.detected_at or self.created_at

    def time_to_detect(self) -> float | None:
        return _elapsed(self.deployed_at, self.detected)

    def time_to_decide(self) -> float | None:
        return _elapsed(self.detected, self.decided_at or self.started_at)

    def time_to_restore(self) -> float | None:
        return _elapsed(self.detected, self.finished_at) if self.status == "succeeded" else None


def _elapsed(start: datetime | None, end: datetime | None) -> float | None:
    """Seconds from start to end; None when either is unknown or they are out of order."""
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


def record_of(row: RollbackRow, deployed_at: datetime | None) -> RollbackRecord:
    """A RollbackRow (with its steps loaded) and the recorded_at of the release it left."""
    return RollbackRecord(
        id=row.id,
        env=row.env,
        kinds=tuple(sorted({s.kind for s in row.steps})),
        drill=bool(row.drill),
        status=row.status,
        created_at=row.created_at,
        deployed_at=deployed_at,
        detected_at=row.detected_at,
        decided_at=row.decided_at,
        approved_at=row.approved_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        unnecessary=row.unnecessary,
        data_loss=any(s.status == "succeeded" and (s.data_loss_window_seconds or 0) > 0 for s in row.steps),
        severity=row.severity,
    )


def load_records(
    session: Session, app: str, env: str | None = None, since: datetime | None = None
) -> list[RollbackRecord]:
    """The app's rollbacks created at or after `since` (in `env` if given), oldest first. Plain columns, not
    ORM objects: a dashboard asks for thousands of them on every view."""
    left = aliased(ReleaseRow)
    wanted = [RollbackRow.app == app]
    if env is not None:
        wanted.append(RollbackRow.env == env)
    if since is not None:
        wanted.append(RollbackRow.created_at >= since)
    steps: dict[str, list[tuple[str, str, float | None]]] = {}
    step_query = (
        select(StepRow.rollback_id, StepRow.kind, StepRow.status, StepRow.data_loss_window_seconds)
        .join(RollbackRow, RollbackRow.id == StepRow.rollback_id)
        .where(*wanted)
    )
    for rollback_id, kind, status, window in session.execute(step_query):
        steps.setdefault(rollback_id, []).append((kind, status, window))
    query = (
        select(*(RollbackRow.__table__.c[name] for name in _COLUMNS), left.recorded_at)
        .outerjoin(left, left.id == RollbackRow.from_release_id)
        .where(*wanted)
        .order_by(RollbackRow.created_at, RollbackRow.id)
    )
    records = []
    for row in session.execute(query):
        own = steps.get(row.id, [])
        records.append(
            RollbackRecord(
                id=row.id,
                env=row.env,
                kinds=tuple(sorted({kind for kind, _, _ in own})),
                drill=bool(row.drill),
                status=row.status,
                created_at=row.created_at,
                deployed_at=row.recorded_at,
                detected_at=row.detected_at,
                decided_at=row.decided_at,
                approved_at=row.approved_at,
                started_at=row.started_at,
                finished_at=row.finished_at,
                unnecessary=row.unnecessary,
                data_loss=any(status == "succeeded" and (window or 0) > 0 for _, status, window in own),
                severity=row.severity,
            )
        )
    return records


_COLUMNS = (
    "id",
    "env",
    "drill",
    "status",
    "created_at",
    "detected_at",
    "decided_at",
    "approved_at",
    "started_at",
    "finished_at",
    "unnecessary",
    "severity",
)


# --- statistics -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stats:
    """Durations in seconds: how many, their mean and nearest-rank 95th percentile (None when there are none)."""

    count: int
    mean: float | None
    p95: float | None


def nearest_rank(values: Sequence[float], percent: int = PERCENTILE) -> float:
    """The ceil(percent/100 * n)-th smallest value (integer arithmetic: no rounding at the boundaries)."""
    ordered = sorted(values)
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


@cache
def _numpy() -> Any:
    """NumPy if installed (it comes with the demo extra), imported on first use: not at every CLI start-up."""
    try:
        import numpy
    except ImportError:  # pragma: no cover - exercised where NumPy is absent
        return None
    return numpy


def stats_of(values: Sequence[float]) -> Stats:
    if not values:
        return Stats(0, None, None)
    numpy = _numpy()
    if numpy is not None:
        mean = float(numpy.mean(values))
        p95 = float(numpy.percentile(values, PERCENTILE, method="inverted_cdf"))
        return Stats(len(values), mean, p95)
    return Stats(len(values), statistics.fmean(values), nearest_rank(values))


def _samples(records: Iterable[RollbackRecord], measure: Callable[[RollbackRecord], float | None]) -> list[float]:
    return [value for value in (measure(r) for r in records) if value is not None]


# --- groups and targets -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One figure against its target."""

    value: float | None
    target: float | None
    status: CheckStatus


@dataclass(frozen=True)
class GroupKpis:
    rollbacks: int
    ran: int
    time_to_detect: Stats
    time_to_decide: Stats
    time_to_restore: Stats
    finished: int
    succeeded: int
    success_rate: float | None
    reviewed: int
    unnecessary: int
    false_rollback_rate: float | None
    data_loss_incidents: int
    restored_unhealthy: int = 0
    restored_unhealthy_share: float | None = None  # of the finished rollbacks
    checks: dict[str, Check] = field(default_factory=dict)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def group_kpis(records: Sequence[RollbackRecord], targets: Targets) -> GroupKpis:
    finished = [r for r in records if r.status in FINISHED]
    succeeded = sum(1 for r in finished if r.status == "succeeded")
    ran = [r for r in records if r.status in RAN]
    unnecessary = sum(1 for r in ran if r.unnecessary)
    kpis = GroupKpis(
        rollbacks=len(records),
        ran=len(ran),
        time_to_detect=stats_of(_samples(records, RollbackRecord.time_to_detect)),
        time_to_decide=stats_of(_samples(records, RollbackRecord.time_to_decide)),
        time_to_restore=stats_of(_samples(records, RollbackRecord.time_to_restore)),
        finished=len(finished),
        succeeded=succeeded,
        success_rate=_ratio(succeeded, len(finished)),
        reviewed=sum(1 for r in ran if r.unnecessary is not None),
        unnecessary=unnecessary,
        false_rollback_rate=_ratio(unnecessary, len(ran)),
        data_loss_incidents=sum(1 for r in records if r.data_loss),
        restored_unhealthy=(unhealthy := sum(1 for r in finished if r.status == "restored-unhealthy")),
        restored_unhealthy_share=_ratio(unhealthy, len(finished)),
    )
    return replace(kpis, checks=checks_of(kpis, targets))


def check(value: float | None, target: float | None, higher_is_better: bool = False) -> Check:
    if target is None:
        return Check(value, None, "no target")
    if value is None:
        return Check(None, target, "no data")
    met = value >= target if higher_is_better else value <= target
    return Check(value, target, "met" if met else "missed")


def targets_dict(targets: Targets) -> dict[str, float | None]:
    """The targets in seconds and fractions (the file's own spelling, "15m" or "95%", is for people)."""
    per_severity = {f"rollback_time_{severity}": value for severity, value in targets.rollback_time.items()}
    return per_severity | {
        "mean_time_to_detect": targets.mean_time_to_detect,
        "mean_time_to_restore": targets.mean_time_to_restore,
        "success_rate": targets.success_rate,
        "false_rollback_rate": targets.false_rollback_rate,
        "data_loss_incidents": float(targets.data_loss_incidents),
    }


def checks_of(kpis: GroupKpis, targets: Targets) -> dict[str, Check]:
    values = {
        "mean_time_to_detect": kpis.time_to_detect.mean,
        "mean_time_to_restore": kpis.time_to_restore.mean,
        "success_rate": kpis.success_rate,
        "false_rollback_rate": kpis.false_rollback_rate,
        "data_loss_incidents": float(kpis.data_loss_incidents) if kpis.rollbacks else None,
    }
    goals = targets_dict(targets)
    return {name: check(value, goals[name], name in HIGHER_IS_BETTER) for name, value in values.items()}


# --- maximum rollback time per severity (policy.targets.rollback_time) ------------------------------------------


@dataclass(frozen=True)
class RollbackAgainstTarget:
    """One rollback's time to restore against its severity's maximum: met, missed (over it, or failed: not
    restored at all), or no data (still undecided: planned, awaiting approval, running)."""

    id: str
    seconds: float | None
    status: CheckStatus


@dataclass(frozen=True)
class SeverityTarget:
    target: float | None
    met: int
    missed: int
    no_data: int
    rollbacks: list[RollbackAgainstTarget]


def against_target(record: RollbackRecord, target: float | None) -> RollbackAgainstTarget:
    seconds = record.time_to_restore()
    if target is None:
        return RollbackAgainstTarget(record.id, seconds, "no target")
    if record.status == "failed":
        return RollbackAgainstTarget(record.id, None, "missed")
    return RollbackAgainstTarget(record.id, seconds, check(seconds, target).status)


def by_severity(records: Sequence[RollbackRecord], targets: Targets) -> dict[str, SeverityTarget]:
    """Per severity that has rollbacks (unassessed ones under "unassessed"), each rollback met or missed."""
    out: dict[str, SeverityTarget] = {}
    for severity in sorted({r.severity or "unassessed" for r in records}):
        target = targets.rollback_time_for(severity)
        rows = [against_target(r, target) for r in records if (r.severity or "unassessed") == severity]
        counts = {status: sum(1 for r in rows if r.status == status) for status in ("met", "missed", "no data")}
        out[severity] = SeverityTarget(target, counts["met"], counts["missed"], counts["no data"], rows)
    return out


# --- the report -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """One population (real incidents, or drills): overall, per environment, per component kind."""

    overall: GroupKpis
    by_env: dict[str, GroupKpis]
    by_kind: dict[str, GroupKpis]
    by_severity: dict[str, SeverityTarget] = field(default_factory=dict)


@dataclass(frozen=True)
class KpiReport:
    incidents: Section
    drills: Section
    targets: Targets
    env: str | None = None
    since: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "since": self.since.isoformat() if self.since else None,
            "targets": targets_dict(self.targets),
            "incidents": asdict(self.incidents),
            "drills": asdict(self.drills),
        }


def section_of(records: Sequence[RollbackRecord], targets: Targets) -> Section:
    envs = sorted({r.env for r in records})
    kinds = sorted({k for r in records for k in r.kinds})
    return Section(
        overall=group_kpis(records, targets),
        by_env={e: group_kpis([r for r in records if r.env == e], targets) for e in envs},
        by_kind={k: group_kpis([r for r in records if k in r.kinds], targets) for k in kinds},
        by_severity=by_severity(records, targets),
    )


def compute(
    records: Sequence[RollbackRecord], targets: Targets, env: str | None = None, since: datetime | None = None
) -> KpiReport:
    """The KPIs of real incidents and of drills, apart."""
    return KpiReport(
        incidents=section_of([r for r in records if not r.drill], targets),
        drills=section_of([r for r in records if r.drill], targets),
        targets=targets,
        env=env,
        since=since,
    )


def format_rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"
