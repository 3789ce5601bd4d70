"""Post-rollback actions (003: immediate 0-1 h, short-term 1-24 h, long-term 1-7 days; 004's root cause, docs,
fix and redeploy, review), made concrete with this incident's facts, as tracker-ready task lines."""

from __future__ import annotations

from collections.abc import Sequence

from lastgood.config.comms import PostAction
from lastgood.report.model import (
    ActionItem,
    ChecklistItem,
    Incident,
    human,
    span,
    trigger_summary,
    when,
)

_OWN_ACTIONS = {"Notify team and stakeholders of completion", "Document rollback details and learnings"}


def actions(
    inc: Incident, items: list[ChecklistItem], durations: dict[str, float], target: float | None
) -> list[ActionItem]:
    return [*immediate(inc, items), *short_term(inc, durations, target), *long_term(inc, items)]


def file_actions(post_rollback: Sequence[PostAction]) -> list[ActionItem]:
    """The file's post-rollback actions, as written, with their owner."""
    return [ActionItem(a.when, a.action + (f" (owner: {a.owner})" if a.owner else "")) for a in post_rollback]


def _left(inc: Incident) -> str:
    return inc.from_release.label if inc.from_release else "the unrecorded release"


def immediate(inc: Incident, items: list[ChecklistItem]) -> list[ActionItem]:
    where, left, to = f"{inc.app}/{inc.env}", _left(inc), inc.to_release.label
    out = [ActionItem("immediate", text) for text in _unblock(inc)]
    told = any(n.ok for n in inc.notifications)
    out.append(
        ActionItem(
            "immediate",
            f"Inform the development team: {where} rolled back from {left} to {to} ({inc.id}, {inc.status})",
            told,
        )
    )
    out.append(ActionItem("immediate", f"Update the incident tracking system with {inc.id} ({_decision(inc)})"))
    out.append(ActionItem("immediate", f"Communicate status to users if needed: {inc.env} runs {_running(inc)}"))
    out.append(ActionItem("immediate", _watch(inc)))
    out += [ActionItem("immediate", text) for text in _data_loss(inc)]
    out.append(ActionItem("immediate", f"Capture error messages and logs of {left} in {inc.env} before they expire"))
    out.append(
        ActionItem("immediate", f"Note the timeline of events ({len(inc.events)} ledger entries, in this report)", True)
    )
    open_checks = [i for i in items if i.phase == "post" and i.tick == "not done" and i.text not in _OWN_ACTIONS]
    out += [ActionItem("immediate", f"Post-rollback check: {i.text}") for i in open_checks]
    return out


def _unblock(inc: Incident) -> list[str]:
    if inc.failed_steps:
        failures = "; ".join(f"{s.component}: {s.error or s.detail}" for s in inc.failed_steps)
        return [f"Fix the cause of the failed step(s) ({failures}), then run `lastgood resume {inc.id}`"]
    if inc.status == "awaiting-approval":
        missing = inc.approvals_needed - len(inc.approvers)
        return [
            f"Get {missing} more approval(s) ({', '.join(inc.approver_roles) or 'any role'}): "
            f"`lastgood approve {inc.id}`"
        ]
    if inc.status in ("running", "planned"):
        return [f"Finish the rollback ({inc.status}): `lastgood resume {inc.id}`"]
    return []


def _decision(inc: Incident) -> str:
    if inc.severity or inc.method:
        return f"severity {inc.severity or 'unassessed'}, method {inc.method or 'undecided'}"
    return "severity and method not recorded"


def _running(inc: Incident) -> str:
    if inc.succeeded and not inc.partial:
        return f"{inc.to_release.label} again since {when(inc.finished_at)}"
    if inc.succeeded:
        return f"{inc.to_release.label} for {', '.join(s.component for s in inc.steps)} only (partial rollback)"
    return f"a mix of {_left(inc)} and {inc.to_release.label} ({len(inc.verified_steps)}/{len(inc.steps)} steps back)"


def _watch(inc: Incident) -> str:
    if inc.trigger:
        return f"Monitor system health for the next hour: watch {trigger_summary(inc.trigger)} until it stays healthy"
    return f"Monitor system health for the next hour: error rates and traffic of {inc.env} (CloudWatch)"


def _data_loss(inc: Incident) -> list[str]:
    return [
        f"Reconcile {s.component}: the writes of the last {human(s.data_loss_window_seconds)} before the restore "
        f"are not in the restored copy (the original is kept)"
        for s in inc.steps
        if s.data_loss_window_seconds
    ]


def short_term(inc: Incident, durations: dict[str, float], target: float | None) -> list[ActionItem]:
    left = _left(inc)
    changed = ", ".join(f"{s.component} ({s.before} -> {s.after})" for s in inc.steps) or "no component"
    why = trigger_summary(inc.trigger) or inc.reason or "the issue"
    out = [
        ActionItem(
            "short-term", f"Root cause analysis of {left}: analyse deployment logs; review what changed: {changed}"
        ),
        ActionItem("short-term", f"Identify the specific failure points: why {why}, and why testing did not catch it"),
        ActionItem(
            "short-term",
            f"Plan the fix and the testing approach; schedule the next deployment attempt (not {left} again: "
            f"{'marked bad' if inc.from_release and inc.from_release.bad else 'mark it bad'})",
        ),
        ActionItem("short-term", f"Send the post-incident report (report-{inc.id}.md) and share lessons learned"),
    ]
    restore = durations.get("detect_to_restore")
    if target is not None and restore is not None and restore > target:
        out.append(
            ActionItem(
                "short-term",
                f"Time to restore was {human(restore)}, over the {human(target)} target: {_where_time_went(durations)}",
            )
        )
    out.append(
        ActionItem(
            "short-term",
            "Review whether this rollback was necessary (false rollback rate target: under 5%)",
            inc.unnecessary is not None,
        )
    )
    return out


def _where_time_went(durations: dict[str, float]) -> str:
    names = {
        "detect_to_decide": "deciding",
        "decide_to_approve": "approval",
        "approve_to_start": "start",
        "execution": "execution",
    }
    return ", ".join(f"{label} {human(durations[key])}" for key, label in names.items() if key in durations)


def long_term(inc: Incident, items: list[ChecklistItem]) -> list[ActionItem]:
    out = [
        ActionItem(
            "long-term",
            f"Update deployment procedures and enhance testing protocols so a defect like {_left(inc)}'s "
            f"is caught before {inc.env}",
        ),
        ActionItem("long-term", _monitoring(inc)),
    ]
    gaps = [i.text for i in items if i.phase in ("pre", "during") and i.tick == "not done"]
    if gaps:
        out.append(
            ActionItem("long-term", f"Revise the rollback procedure where this rollback fell short: {'; '.join(gaps)}")
        )
    errors = {s.error.splitlines()[0] for s in inc.failed_steps if s.error}
    out += [ActionItem("long-term", f"Create a troubleshooting guide entry for: {error}") for error in sorted(errors)]
    out.append(
        ActionItem("long-term", f"Rehearse this rollback in a drill (monthly in staging): {len(inc.steps)} components")
    )
    return out


def _monitoring(inc: Incident) -> str:
    if inc.trigger:
        detected = inc.detected
        live = inc.from_release.recorded_at if inc.from_release else None
        after = f" {human(span(live, detected))} after {_left(inc)} was recorded" if live else ""
        return f"Improve monitoring and alerting: the trigger caught it{after}; tune it to catch it earlier"
    return (
        f"Improve monitoring and alerting: this rollback was started by hand ({inc.requested_by}); "
        "add a trigger that would have caught it"
    )
