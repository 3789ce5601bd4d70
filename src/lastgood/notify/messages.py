"""The messages lastgood sends, in the 004 template, with defaults drawn from a rollback's facts.

`message_for` builds any message from its fields. `message_from_rollback(event, facts)` fills the fields for the
events below from a RollbackRow-like mapping (keys in `RollbackFacts`); any field can still be given explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from lastgood.config.durations import format_duration
from lastgood.notify.base import Message

ROLLBACK_STARTED = "rollback-started"
APPROVAL_NEEDED = "approval-needed"
STEP_SUCCEEDED = "step-succeeded"
STEP_FAILED = "step-failed"
STATUS_UPDATE = "status-update"
ROLLBACK_SUCCEEDED = "rollback-succeeded"
ROLLBACK_FAILED = "rollback-failed"
ROLLBACK_RESTORED_UNHEALTHY = "rollback-restored-unhealthy"
ESCALATION = "escalation"
EVENTS = (
    ROLLBACK_STARTED,
    APPROVAL_NEEDED,
    STEP_SUCCEEDED,
    STEP_FAILED,
    STATUS_UPDATE,
    ROLLBACK_SUCCEEDED,
    ROLLBACK_FAILED,
    ROLLBACK_RESTORED_UNHEALTHY,
    ESCALATION,
)
_IN_PROGRESS = (ROLLBACK_STARTED, STEP_SUCCEEDED, STEP_FAILED, STATUS_UPDATE)


class RollbackFacts(TypedDict, total=False):
    """What the defaults read; every key is optional."""

    id: str
    app: str
    env: str
    from_release: str | None  # labels
    to_release: str
    reason: str  # the Issue
    impact: str  # the Impact, when known better than the default
    severity: str | None
    method: str | None
    requested_by: str
    drill: bool
    approvals_needed: int
    approver_roles: list[str]
    steps_done: int
    steps_total: int
    estimate_seconds: float | None  # the plan's estimate
    elapsed_seconds: float | None  # since the rollback started
    step: Mapping[str, Any]  # for step events: component, action, error
    failed: list[str]  # components
    not_started: list[str]
    error: str | None
    trigger: Mapping[str, Any] | None  # the values that caused it


def message_for(
    event: str,
    app: str,
    env: str,
    rollback_id: str,
    *,
    issue: str,
    impact: str,
    action: str,
    eta: str,
    status: str,
    details: Sequence[str] = (),
) -> Message:
    return Message(event, app, env, rollback_id, issue, impact, action, eta, status, list(details))


def message_from_rollback(
    event: str, facts: Mapping[str, Any], *, details: Sequence[str] = (), **fields: str
) -> Message:
    """The message for `event` with defaults from `facts`; `fields` (issue=..., eta=...) override them."""
    defaults = {
        "issue": issue_of(facts),
        "impact": impact_of(facts),
        "action": action_of(event, facts),
        "eta": eta_of(event, facts),
        "status": status_of(event, facts),
    }
    unknown = set(fields) - set(defaults)
    if unknown:
        raise TypeError(f"unknown message fields: {', '.join(sorted(unknown))}")
    return message_for(
        event,
        str(facts.get("app", "")),
        str(facts.get("env", "")),
        str(facts.get("id") or facts.get("rollback_id") or ""),
        details=[*details_of(event, facts), *details],
        **(defaults | fields),
    )


def _releases(facts: Mapping[str, Any]) -> str:
    origin, target = facts.get("from_release"), facts.get("to_release") or "the last good release"
    return f"from {origin} to {target}" if origin else f"to {target}"


def issue_of(facts: Mapping[str, Any]) -> str:
    origin = facts.get("from_release")
    where = f"{facts.get('app', '')} in {facts.get('env', '')}"
    issue = str(facts.get("reason") or (f"release {origin} of {where} is bad" if origin else f"{where} is unhealthy"))
    if facts.get("severity"):
        issue = f"{facts['severity']}: {issue}"
    return f"DRILL (not a real incident): {issue}" if facts.get("drill") else issue


def impact_of(facts: Mapping[str, Any]) -> str:
    if facts.get("impact"):
        return str(facts["impact"])
    if facts.get("drill"):
        return "none expected: this is a drill"
    return f"users of {facts.get('app', '')} in {facts.get('env', '')} may be affected"


def action_of(event: str, facts: Mapping[str, Any]) -> str:
    releases = _releases(facts)
    step = facts.get("step") or {}
    method = f" ({facts['method']})" if facts.get("method") else ""
    if event == APPROVAL_NEEDED:
        needed = int(facts.get("approvals_needed") or 1)
        roles = ", ".join(facts.get("approver_roles") or []) or "an approver"
        return f"waiting for {needed} approval{'s' if needed != 1 else ''} ({roles}) to roll back {releases}"
    if event == STEP_SUCCEEDED:
        return f"rolled back {step.get('component', 'a component')}; rolling back {releases}"
    if event == STEP_FAILED:
        return f"{step.get('component', 'a component')} failed while rolling back {releases}"
    if event == ROLLBACK_SUCCEEDED:
        return f"rolled back {releases}"
    if event == ROLLBACK_FAILED:
        return f"rollback {releases} stopped; fix the cause, then run: lastgood resume {facts.get('id', '')}".strip()
    if event == ROLLBACK_RESTORED_UNHEALTHY:
        return f"rolled back {releases}, but the service is still failing its validation: it needs a person"
    if event == ESCALATION:
        return f"escalated: acknowledge with lastgood ack {facts.get('id', '')}".strip()
    return f"rolling back {releases}{method}"


def _progress(facts: Mapping[str, Any]) -> str:
    total = facts.get("steps_total")
    return f" ({int(facts.get('steps_done') or 0)} of {int(total)} steps done)" if total else ""


def status_of(event: str, facts: Mapping[str, Any]) -> str:
    if event == APPROVAL_NEEDED:
        return "Awaiting approval"
    if event == ROLLBACK_SUCCEEDED:
        return "Complete" + _progress(facts)
    if event == ROLLBACK_FAILED:
        return "Failed" + _progress(facts)
    if event == ROLLBACK_RESTORED_UNHEALTHY:
        return "Restored, unhealthy" + _progress(facts)
    if event == ESCALATION or (event == STATUS_UPDATE and facts.get("status")):
        return f"Open: {facts.get('status', 'unresolved')}, not acknowledged" + _progress(facts)
    return "In Progress" + _progress(facts)


def eta_of(event: str, facts: Mapping[str, Any]) -> str:
    if event == ROLLBACK_SUCCEEDED:
        return "done"
    if event in (ROLLBACK_FAILED, ROLLBACK_RESTORED_UNHEALTHY, ESCALATION):
        return "unknown: the rollback needs a person"
    estimate = facts.get("estimate_seconds")
    if estimate is None:
        return "unknown"
    if event == APPROVAL_NEEDED:
        return f"about {format_duration(estimate)} once approved"
    elapsed = float(facts.get("elapsed_seconds") or 0.0)
    if elapsed < estimate:
        return f"about {format_duration(estimate - elapsed)} (estimate {format_duration(estimate)})"
    return f"overdue: estimated {format_duration(estimate)}, {format_duration(elapsed)} so far"


def details_of(event: str, facts: Mapping[str, Any]) -> list[str]:
    details: list[str] = []
    if facts.get("requested_by"):
        details.append(f"requested by {facts['requested_by']}")
    if facts.get("trigger"):
        values = ", ".join(f"{key}={value}" for key, value in dict(facts["trigger"]).items())
        details.append(f"trigger: {values}")
    step = facts.get("step") or {}
    if event == STEP_FAILED and step.get("error"):
        details.append(f"error: {step['error']}")
    if facts.get("failed"):
        details.append(f"failed: {', '.join(facts['failed'])}")
    if facts.get("not_started"):
        details.append(f"not started: {', '.join(facts['not_started'])}")
    if event in (ROLLBACK_FAILED, ROLLBACK_RESTORED_UNHEALTHY) and facts.get("error"):
        details.append(f"error: {facts['error']}")
    if event in _IN_PROGRESS or event == APPROVAL_NEEDED:
        details.append("Team: please stand by and monitor")
    return details
