"""The incident record as Markdown: facts, trigger, timeline, steps, checklist, actions, the message to send."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lastgood.redact import redact
from lastgood.report.model import (
    HORIZONS,
    PHASES,
    ChecklistItem,
    IncidentReport,
    Phase,
    human,
    span,
    when,
)

PHASE_TITLES: dict[Phase, str] = {"pre": "Pre-rollback", "during": "During rollback", "post": "Post-rollback"}


def text(value: object) -> str:
    """One line of Markdown-safe text: secrets masked, no table breaks, no raw HTML."""
    return redact(str(value)).replace("\r", "").replace("\n", " / ").replace("|", "\\|").replace("<", "&lt;")


def render_markdown(report: IncidentReport) -> str:
    sections = [
        _header(report),
        _trigger(report),
        _timeline(report),
        _steps(report),
        _validation(report),
        _checklist(report),
        _actions(report),
        _message(report),
        f"_Generated {when(report.generated_at)} from the lastgood ledger._",
    ]
    return redact("\n\n".join(s for s in sections if s) + "\n")


def facts(report: IncidentReport) -> list[tuple[str, str]]:
    """The summary rows, shared with the HTML page."""
    inc = report.incident
    left = inc.from_release
    restore = report.durations.get("detect_to_restore")
    target = f" (target {human(report.restore_target_seconds)})" if report.restore_target_seconds else ""
    approvals = ", ".join(
        f"{a.who} ({', '.join(a.roles) or 'no role'})" for a in inc.approvals if a.decision == "approve"
    )
    return [
        ("Status", inc.status + (" (partial: --only)" if inc.partial else "") + (" (drill)" if inc.drill else "")),
        ("Environment", f"{inc.app}/{inc.env}"),
        (
            "Left release",
            f"{left.label}, recorded {when(left.recorded_at)}" + (" (marked bad)" if left.bad else "")
            if left
            else "not recorded",
        ),
        ("Returned to", f"{inc.to_release.label}, recorded {when(inc.to_release.recorded_at)}"),
        ("Severity", inc.severity or "not assessed"),
        ("Method", f"{inc.method}: {inc.decision_reason or ''}" if inc.method else "not decided"),
        ("Requested by", inc.requested_by + (f": {inc.reason}" if inc.reason else "")),
        (
            "Approvals",
            f"{len(inc.approvers)} of {inc.approvals_needed} needed" + (f": {approvals}" if approvals else ""),
        ),
        ("Detected", when(inc.detected_at)),
        ("Finished", when(inc.finished_at)),
        ("Time to restore", human(restore) + target),
    ]


def _header(report: IncidentReport) -> str:
    inc = report.incident
    rows = "\n".join(f"| {text(k)} | {text(v)} |" for k, v in facts(report))
    return f"# Incident record: rollback {text(inc.id)} ({text(inc.app)}/{text(inc.env)})\n\n| | |\n|---|---|\n{rows}"


def trigger_rows(trigger: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not trigger:
        return []
    return [(str(k), _value(v)) for k, v in trigger.items()]


def _value(value: object) -> str:
    if isinstance(value, list):
        return ", ".join("-" if v is None else (f"{v:g}" if isinstance(v, float) else str(v)) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _trigger(report: IncidentReport) -> str:
    rows = trigger_rows(report.incident.trigger)
    if not rows:
        return "## Trigger\n\nNo trigger values recorded: the rollback was started by hand."
    body = "\n".join(f"| {text(k)} | {text(v)} |" for k, v in rows)
    return f"## Trigger\n\n| name | value |\n|---|---|\n{body}"


def offset(report: IncidentReport, at: datetime) -> str:
    start = report.timeline[0].at if report.timeline else at
    return "+" + human(span(start, at))


def _timeline(report: IncidentReport) -> str:
    lines = ["## Timeline", "", "| # | at (UTC) | since start | event | detail | by |", "|---|---|---|---|---|---|"]
    for index, entry in enumerate(report.timeline, 1):
        mark = "" if entry.ok or "fail" in entry.title else " (failed)"
        cells = [str(index), when(entry.at), offset(report, entry.at), entry.title + mark, entry.detail, entry.actor]
        lines.append("| " + " | ".join(text(c) for c in cells) + " |")
    return "\n".join(lines)


def _steps(report: IncidentReport) -> str:
    steps = report.incident.steps
    if not steps:
        return "## Steps\n\nNo steps: every component already matched the target."
    lines = ["## Steps", "", "| # | component | action | from | to | status | attempts | took | data-loss window |"]
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for s in steps:
        cells = [s.position + 1, s.component, s.action, s.before, s.after, s.status, s.attempts]
        cells += [human(span(s.started_at, s.finished_at)), human(s.data_loss_window_seconds)]
        lines.append("| " + " | ".join(text(c) for c in cells) + " |")
    errors = [f"- **{text(s.component)}**: {text(s.error)}" for s in steps if s.error]
    return "\n".join(lines + (["", *errors] if errors else []))


def _validation(report: IncidentReport) -> str:
    validation = report.incident.validation
    if validation is None:
        return ""
    verdict = "passed" if validation["passed"] else "**failed**: restored-unhealthy, nothing rolled back again"
    lines = [f"## Validation\n\n{verdict}\n", "| check | type | result | detail | attempts |", "|---|---|---|---|---|"]
    for check in validation["checks"]:
        result = "passed" if check["passed"] else "FAILED"
        lines.append(
            f"| {text(check['name'])} | {check['type']} | {result} | {text(check['detail'])} | {check['attempts']} |"
        )
    acknowledged = report.incident.acknowledged
    if acknowledged is not None:
        lines += ["", f"Acknowledged by {text(acknowledged.actor)} at {when(acknowledged.at)}."]
    return "\n".join(lines)


def checklist_line(item: ChecklistItem) -> str:
    source = f" _({text(item.source)})_"
    if item.tick == "not applicable":
        return f"- ~~{text(item.text)}~~ — not applicable: {text(item.evidence)}{source}"
    box = "x" if item.tick == "done" else " "
    return f"- [{box}] {text(item.text)} — **{item.tick}**: {text(item.evidence)}{source}"


def tally(items: list[ChecklistItem]) -> str:
    """'7/7 done, 1 not applicable': not applicable items are neither done nor open."""
    done = sum(1 for i in items if i.tick == "done")
    skipped = sum(1 for i in items if i.tick == "not applicable")
    return f"{done}/{len(items) - skipped} done" + (f", {skipped} not applicable" if skipped else "")


def _checklist(report: IncidentReport) -> str:
    parts = ["## Checklist"]
    for phase in PHASES:
        items = report.items(phase)
        parts.append(f"### {PHASE_TITLES[phase]} ({tally(items)})")
        parts.append("\n".join(checklist_line(i) for i in items))
    return "\n\n".join(parts)


def _actions(report: IncidentReport) -> str:
    parts = ["## Post-rollback actions", "Paste into the tracker:"]
    for horizon, title in HORIZONS.items():
        lines = [text(a.markdown_line()) for a in report.actions_for(horizon)]
        parts.append(f"### {title}\n\n" + "\n".join(lines))
    return "\n\n".join(parts)


def message_lines(report: IncidentReport) -> list[str]:
    """004's communication template, filled in."""
    inc = report.incident
    status = {"succeeded": "Complete", "failed": "Failed", "running": "In Progress"}.get(inc.status, inc.status)
    issue = inc.reason or (inc.trigger or {}).get("detail") or "see the incident record"
    took = report.durations.get("detect_to_restore")
    return [
        f"Subject: [URGENT] Rolling back {inc.env} deployment ({inc.app})",
        "",
        f"Issue: {issue}",
        f"Impact: severity {inc.severity or 'not assessed'}; {len(inc.steps)} components rolled back",
        f"Action: Rolling back from {inc.from_release.label if inc.from_release else '?'} to {inc.to_release.label}",
        f"ETA: {'done in ' + human(took) if took is not None else 'in progress'}",
        f"Status: {status}",
        "",
        "Team: Please standby and monitor",
    ]


def _message(report: IncidentReport) -> str:
    body = "\n".join(redact(line) for line in message_lines(report)).replace("```", "'''")
    return f"## Communication (004 template)\n\n```\n{body}\n```"
