"""The incident record of one rollback, read from the ledger: who, when, what changed, and what happened.

`load_incident` gathers the facts (the rollback row, its steps, its events, approvals, the releases it left and
returned to); `timeline` orders them into the incident's clock (detected, decided, approved, each step,
verified, notified). Nothing here writes to the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from lastgood.config.durations import format_duration
from lastgood.ledger import store
from lastgood.ledger.tables import ApprovalRow, EventRow, ReleaseRow, RollbackRow, StepRow

Phase = Literal["pre", "during", "post"]
Tick = Literal["done", "not done", "not applicable"]
Horizon = Literal["immediate", "short-term", "long-term"]

PHASES: tuple[Phase, ...] = ("pre", "during", "post")
HORIZONS: dict[Horizon, str] = {
    "immediate": "Immediate actions (0-1 hour)",
    "short-term": "Short-term actions (1-24 hours)",
    "long-term": "Long-term actions (1-7 days)",
}
VERIFIED = ("succeeded", "unchanged")
RESTORE_KINDS = ("dynamodb-table", "rds-instance", "aurora-cluster")
DATA_KINDS = (*RESTORE_KINDS, "sql-migrations", "s3-prefix")
NOTIFY_SENT, NOTIFY_FAILED = "notify-sent", "notify-failed"


@dataclass(frozen=True)
class ReleaseFact:
    label: str
    recorded_at: datetime
    recorded_by: str
    components: list[str]
    bad: bool
    bad_reason: str | None


@dataclass(frozen=True)
class ApprovalFact:
    who: str
    decision: str  # approve | deny
    roles: list[str]
    at: datetime
    reason: str
    signed: bool


@dataclass(frozen=True)
class StepFact:
    position: int
    component: str
    kind: str
    action: str
    before: str
    after: str
    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    detail: str | None
    error: str | None
    waits_for: list[str]
    target: dict[str, Any]
    output: dict[str, Any] | None
    data_loss_window_seconds: float | None

    @property
    def verified(self) -> bool:
        return self.status in VERIFIED


@dataclass(frozen=True)
class EventFact:
    id: int
    at: datetime
    type: str
    message: str
    actor: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Notification:
    at: datetime
    channel: str
    ok: bool
    message: str


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    key: str  # detected, requested, decided, approved, started, step, progress, verified, failed, notified, ...
    title: str
    detail: str
    ok: bool = True
    actor: str = ""
    component: str | None = None


@dataclass(frozen=True)
class ChecklistItem:
    phase: Phase
    text: str
    source: str
    tick: Tick
    evidence: str
    key: str = ""  # the name `lastgood check ID ITEM` takes


@dataclass(frozen=True)
class ActionItem:
    horizon: Horizon
    text: str
    done: bool = False

    def markdown_line(self) -> str:
        return f"- [{'x' if self.done else ' '}] {self.text}"


@dataclass(frozen=True)
class Incident:
    """The facts of one rollback, as the ledger holds them."""

    id: str
    app: str
    env: str
    status: str
    partial: bool
    drill: bool
    reason: str
    requested_by: str
    error: str | None
    severity: str | None
    method: str | None
    decision_reason: str | None
    approvals_needed: int
    approver_roles: list[str]
    created_at: datetime
    detected_at: datetime | None
    decided_at: datetime | None
    approved_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    trigger: dict[str, Any] | None
    from_release: ReleaseFact | None
    to_release: ReleaseFact
    approvals: list[ApprovalFact]
    steps: list[StepFact]
    events: list[EventFact]
    notifications: list[Notification]
    unnecessary: bool | None
    review_note: str | None
    reviewed_by: str | None

    @property
    def ran(self) -> bool:
        return any(s.started_at is not None for s in self.steps)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def validation(self) -> dict[str, Any] | None:
        """The `validate:` block's last results (passed, checks), when the rollback ran it."""
        kinds = ("validation-passed", "validation-failed")
        return next((e.data for e in reversed(self.events) if e.type in kinds), None)

    @property
    def acknowledged(self) -> EventFact | None:
        return next((e for e in self.events if e.type == "rollback-acknowledged"), None)

    @property
    def failed_steps(self) -> list[StepFact]:
        return [s for s in self.steps if s.status == "failed"]

    @property
    def verified_steps(self) -> list[StepFact]:
        return [s for s in self.steps if s.verified]

    @property
    def detected(self) -> datetime:
        """When the incident's clock starts: detection, else the request."""
        return self.detected_at or self.created_at

    @property
    def approvers(self) -> list[str]:
        return [a.who for a in self.approvals if a.decision == "approve"]

    @property
    def denials(self) -> list[ApprovalFact]:
        return [a for a in self.approvals if a.decision == "deny"]


@dataclass(frozen=True)
class IncidentReport:
    incident: Incident
    timeline: list[TimelineEntry]
    checklist: list[ChecklistItem]
    actions: list[ActionItem]
    durations: dict[str, float]
    generated_at: datetime
    restore_target_seconds: float | None = None
    notes: list[str] = field(default_factory=list)

    def items(self, phase: Phase) -> list[ChecklistItem]:
        return [i for i in self.checklist if i.phase == phase]

    def actions_for(self, horizon: Horizon) -> list[ActionItem]:
        return [a for a in self.actions if a.horizon == horizon]

    def to_dict(self) -> dict[str, Any]:
        inc = self.incident
        return {
            "id": inc.id,
            "app": inc.app,
            "env": inc.env,
            "status": inc.status,
            "from_release": inc.from_release.label if inc.from_release else None,
            "to_release": inc.to_release.label,
            "severity": inc.severity,
            "method": inc.method,
            "durations": {k: round(v, 3) for k, v in self.durations.items()},
            "timeline": [
                {"at": e.at.isoformat(), "key": e.key, "title": e.title, "detail": e.detail, "ok": e.ok}
                for e in self.timeline
            ],
            "checklist": [
                {
                    "phase": i.phase,
                    "item": i.text,
                    "key": i.key,
                    "source": i.source,
                    "tick": i.tick,
                    "evidence": i.evidence,
                }
                for i in self.checklist
            ],
            "actions": [{"horizon": a.horizon, "text": a.text, "done": a.done} for a in self.actions],
            "validation": inc.validation,
            "acknowledged_by": inc.acknowledged.actor if inc.acknowledged else None,
        }


# --- formatting shared by the checklist, the actions and the renderers ----------------------------------------


def when(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(at: datetime | None) -> str:
    return "-" if at is None else at.strftime("%H:%M:%S")


def span(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else max(0.0, (end - start).total_seconds())


def human(seconds: float | None) -> str:
    """'2m55s'; under ten seconds with up to two decimals ('0.09s'), as a fast rollback deserves."""
    if seconds is None:
        return "-"
    if seconds < 10 and seconds != round(seconds):
        return f"{seconds:.2f}".rstrip("0").rstrip(".") + "s"
    return format_duration(seconds)


def trigger_summary(trigger: dict[str, Any] | None) -> str:
    """'api-errors = 7.5: Errors/Invocations > 5% for 5 of 5 periods' from a guard verdict."""
    if not trigger:
        return ""
    name = str(trigger.get("trigger") or trigger.get("name") or "trigger")
    parts = [name]
    if trigger.get("value") is not None:
        parts.append(
            f"= {trigger['value']:g}" if isinstance(trigger["value"], int | float) else f"= {trigger['value']}"
        )
    if trigger.get("detail"):
        return " ".join(parts) + f": {trigger['detail']}"
    periods = trigger.get("breaching_periods"), trigger.get("required_periods")
    if periods[0] is not None and periods[1] is not None:
        parts.append(f"({periods[0]} of {periods[1]} periods breaching)")
    return " ".join(parts)


# --- loading ----------------------------------------------------------------------------------------------------


def load_incident(session: Session, rollback_id: str) -> Incident:
    row = store.get_rollback(session, rollback_id)
    events = _events(session, row)
    return Incident(
        id=row.id,
        app=row.app,
        env=row.env,
        status=row.status,
        partial=row.partial,
        drill=row.drill,
        reason=row.reason or "",
        requested_by=row.requested_by,
        error=row.error,
        severity=row.severity,
        method=row.method,
        decision_reason=row.decision_reason,
        approvals_needed=row.approvals_needed or 0,
        approver_roles=[str(r) for r in row.approver_roles or []],
        created_at=row.created_at,
        detected_at=row.detected_at,
        decided_at=row.decided_at,
        approved_at=row.approved_at,
        started_at=row.started_at or _first_step_start(row.steps),
        finished_at=row.finished_at,
        trigger=row.trigger or _guard_trigger(events),
        from_release=_release(session, row.from_release_id),
        to_release=_required_release(session, row.to_release_id),
        approvals=_approvals(session, row.id),
        steps=[_step(s) for s in row.steps],
        events=events,
        notifications=_notifications(events),
        unnecessary=row.unnecessary,
        review_note=row.review_note,
        reviewed_by=row.reviewed_by,
    )


def _events(session: Session, row: RollbackRow) -> list[EventFact]:
    """The rollback's own events, plus the release marked bad on its account (written without its id, in the
    transaction of its last event: so between its first and last, which bounds the search by id, not by the
    environment's whole history)."""
    own = store.events_of(session, row.id)
    if len(own) < 2:
        return [_fact(e) for e in own]
    marked = select(EventRow).where(
        EventRow.app == row.app,
        EventRow.env == row.env,
        EventRow.id > own[0].id,
        EventRow.id < own[-1].id,
        EventRow.rollback_id.is_(None),
        EventRow.type == "release-marked-bad",
        EventRow.message.contains(row.id),
    )
    return [_fact(e) for e in sorted([*own, *session.scalars(marked)], key=_by_id)]


def _fact(e: EventRow) -> EventFact:
    return EventFact(e.id, e.at, e.type, e.message, e.actor, dict(e.data or {}))


def _by_id(event: EventRow) -> int:
    return event.id


def _release(session: Session, release_id: int | None) -> ReleaseFact | None:
    release = session.get(ReleaseRow, release_id) if release_id is not None else None
    if release is None:
        return None
    return ReleaseFact(
        label=release.label,
        recorded_at=release.recorded_at,
        recorded_by=release.recorded_by,
        components=[c.component for c in release.components],
        bad=release.bad,
        bad_reason=release.bad_reason,
    )


def _required_release(session: Session, release_id: int) -> ReleaseFact:
    release = _release(session, release_id)
    assert release is not None  # a foreign key
    return release


def _approvals(session: Session, rollback_id: str) -> list[ApprovalFact]:
    query = select(ApprovalRow).filter_by(rollback_id=rollback_id).order_by(ApprovalRow.at, ApprovalRow.id)
    return [
        ApprovalFact(a.who, a.decision, [str(r) for r in a.roles or []], a.at, a.reason or "", a.signed)
        for a in session.scalars(query)
    ]


def _step(step: StepRow) -> StepFact:
    return StepFact(
        position=step.position,
        component=step.component,
        kind=step.kind,
        action=step.action,
        before=step.before,
        after=step.after,
        status=step.status,
        attempts=step.attempts,
        started_at=step.started_at,
        finished_at=step.finished_at,
        detail=step.detail,
        error=step.error,
        waits_for=[str(w) for w in step.waits_for or []],
        target=dict(step.target or {}),
        output=step.output,
        data_loss_window_seconds=step.data_loss_window_seconds,
    )


def _first_step_start(steps: list[StepRow]) -> datetime | None:
    starts = [s.started_at for s in steps if s.started_at is not None]
    return min(starts) if starts else None


def _guard_trigger(events: list[EventFact]) -> dict[str, Any] | None:
    fired = next((e for e in events if e.type == "guard-fired"), None)
    return dict(fired.data) if fired is not None and fired.data else None


def _notifications(events: list[EventFact]) -> list[Notification]:
    return [
        Notification(e.at, _channel(e), e.type == NOTIFY_SENT, e.message)
        for e in events
        if e.type in (NOTIFY_SENT, NOTIFY_FAILED)
    ]


def _channel(event: EventFact) -> str:
    for key in ("channel", "channels", "via", "kind"):
        value = event.data.get(key)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        if value:
            return str(value)
    return "unknown channel"


# --- the timeline -----------------------------------------------------------------------------------------------

_EVENT_KEYS = {
    "guard-fired": "detected",
    "detected": "detected",
    "rollback-requested": "requested",
    "decided": "decided",
    "approval-needed": "approval-needed",
    "approved": "approved",
    "denied": "denied",
    "rollback-started": "started",
    "rollback-resumed": "resumed",
    "step-succeeded": "step",
    "step-unchanged": "step",
    "step-failed": "step",
    "step-progress": "progress",
    "rollback-succeeded": "verified",
    "rollback-failed": "failed",
    "rollback-restored": "verified",
    "validation-passed": "validated",
    "validation-failed": "validation-failed",
    "rollback-restored-unhealthy": "restored-unhealthy",
    "rollback-acknowledged": "acknowledged",
    "release-marked-bad": "marked-bad",
    NOTIFY_SENT: "notified",
    NOTIFY_FAILED: "notified",
}
_FAILING = {
    "step-failed",
    "rollback-failed",
    "denied",
    NOTIFY_FAILED,
    "validation-failed",
    "rollback-restored-unhealthy",
}


_RANK = {"detected": 0, "requested": 1, "decided": 2, "approval-needed": 3, "approved": 4, "started": 5}


def timeline(incident: Incident) -> list[TimelineEntry]:
    """The events by time (ties keep the ledger's order), with the row's milestones that no event records
    inserted where they belong: by time, and at the same instant in the incident's order."""
    entries = sorted((_entry(e) for e in incident.events), key=_at)
    for milestone in _milestones_without_events(incident):
        rank = _RANK[milestone.key]
        index = next(
            (i for i, e in enumerate(entries) if e.at > milestone.at or (e.at == milestone.at and _rank(e) > rank)),
            len(entries),
        )
        entries.insert(index, milestone)
    return entries


def _at(entry: TimelineEntry) -> datetime:
    return entry.at


def _rank(entry: TimelineEntry) -> int:
    return _RANK.get(entry.key, len(_RANK))


def _entry(event: EventFact) -> TimelineEntry:
    key = _EVENT_KEYS.get(event.type, event.type)
    component = event.data.get("component")
    title = f"{key}: {component}" if key == "step" and component else key
    if key == "notified":
        title = f"notified: {_channel(event)}" if event.type == NOTIFY_SENT else f"notify failed: {_channel(event)}"
    return TimelineEntry(
        at=event.at,
        key=key,
        title=title,
        detail=event.message,
        ok=event.type not in _FAILING,
        actor=event.actor,
        component=str(component) if component else None,
    )


def _milestones_without_events(incident: Incident) -> list[TimelineEntry]:
    present = {_EVENT_KEYS.get(e.type, e.type) for e in incident.events}
    trigger = trigger_summary(incident.trigger)
    decided = f"{incident.severity}: {incident.method}" if incident.method else "decided"
    approvers = ", ".join(incident.approvers) or "no approval required"
    candidates = [
        ("detected", incident.detected_at, trigger or "detected"),
        ("decided", incident.decided_at, f"{decided} ({incident.decision_reason or 'no reason recorded'})"),
        ("approved", incident.approved_at, f"approved: {approvers}"),
        ("started", incident.started_at, "rollback started"),
    ]
    return [
        TimelineEntry(at=at, key=key, title=key, detail=detail, actor="")
        for key, at, detail in candidates
        if at is not None and key not in present
    ]


def durations(incident: Incident) -> dict[str, float]:
    """The incident's intervals in seconds, for those whose ends are both recorded."""
    restored = incident.finished_at if incident.succeeded else None
    pairs = {
        "detect_to_decide": (incident.detected_at, incident.decided_at),
        "decide_to_approve": (incident.decided_at, incident.approved_at),
        "approve_to_start": (incident.approved_at, incident.started_at),
        "execution": (incident.started_at, incident.finished_at),
        "detect_to_restore": (incident.detected, restored),
    }
    return {name: value for name, (a, b) in pairs.items() if (value := span(a, b)) is not None}
