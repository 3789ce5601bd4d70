"""The runbooks' rollback checklist (004's pre / during / post, with 000's and 003's validation items), each
item ticked by what the ledger shows happened, with the evidence.

An item lastgood cannot observe (testing user workflows by hand, reading application logs) is `not done` with
"not recorded in the ledger": the report says what is still open rather than assume it was done.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lastgood.config.comms import ChecklistEntry, Checklists, slug
from lastgood.report.model import (
    DATA_KINDS,
    RESTORE_KINDS,
    ChecklistItem,
    EventFact,
    Incident,
    Phase,
    StepFact,
    Tick,
    clock,
    human,
    trigger_summary,
    when,
)

Verdict = tuple[Tick, str]
TICKED = "checklist-ticked"  # the ledger event of `lastgood check`
NOT_RECORDED = "not recorded in the ledger: check by hand and note the result in the tracker"


@dataclass(frozen=True)
class ItemSpec:
    phase: Phase
    text: str
    source: str
    check: Callable[[Incident], Verdict]
    id: str | None = None

    @property
    def key(self) -> str:
        """The name `lastgood check ID ITEM` takes."""
        return self.id or slug(self.text)


# --- pre-rollback -----------------------------------------------------------------------------------------------


def issue_confirmed(inc: Incident) -> Verdict:
    if inc.trigger:
        return "done", f"trigger {trigger_summary(inc.trigger)}"
    if inc.reason:
        return "done", f"reason given by {inc.requested_by}: {inc.reason}"
    return "not done", "no trigger values and no reason recorded"


def severity_assessed(inc: Incident) -> Verdict:
    if inc.severity:
        return "done", f"severity {inc.severity}, recorded {when(inc.decided_at or inc.created_at)}"
    return "not done", "no severity recorded"


def method_decided(inc: Incident) -> Verdict:
    if inc.method:
        return "done", f"{inc.method}: {inc.decision_reason or 'no reason recorded'}"
    return "not done", "no decision recorded (decision matrix not consulted)"


def authorized(inc: Incident) -> Verdict:
    if inc.denials:
        denial = inc.denials[0]
        return "not done", f"denied by {denial.who}: {denial.reason}"
    approvers = inc.approvers
    roles = f", roles: {', '.join(inc.approver_roles)}" if inc.approver_roles else ""
    if inc.approvals_needed == 0:
        given = f" ({len(approvers)} given: {', '.join(approvers)})" if approvers else ""
        return "not applicable", f"no approval required at this severity{given}"
    if len(approvers) >= inc.approvals_needed:
        names = ", ".join(approvers)
        return "done", f"{len(approvers)} approval(s): {names} ({inc.approvals_needed} needed{roles})"
    have = f": {', '.join(approvers)}" if approvers else ""
    return "not done", f"{len(approvers)} of {inc.approvals_needed} approvals{have}"


def notified_before(inc: Incident) -> Verdict:
    start = inc.started_at
    sent = [n for n in inc.notifications if n.ok and (start is None or n.at <= start)]
    if sent:
        channels = ", ".join(dict.fromkeys(n.channel for n in sent))
        return "done", f"notified: {channels} at {clock(sent[0].at)} UTC"
    failed = [n for n in inc.notifications if not n.ok and (start is None or n.at <= start)]
    if failed:
        return "not done", f"notification failed: {failed[0].channel}: {failed[0].message}"
    return "not done", "no notification recorded before the rollback started"


def state_documented(inc: Incident) -> Verdict:
    left = inc.from_release
    if left is None:
        return "not done", "the state rolled back from was never recorded as a release"
    return "done", (
        f"release {left.label} recorded {when(left.recorded_at)} by {left.recorded_by} "
        f"({len(left.components)} components)"
    )


def target_identified(inc: Incident) -> Verdict:
    to = inc.to_release
    if to.bad and to.bad_reason:
        return "not done", f"target {to.label} is marked bad: {to.bad_reason}"
    return "done", f"release {to.label} recorded {when(to.recorded_at)} ({len(to.components)} components)"


def backup_available(inc: Incident) -> Verdict:
    restores = [s for s in inc.steps if s.kind in RESTORE_KINDS]
    if not restores:
        return "not applicable", "no database restore in this rollback"
    found = {s.component: _restore_point(s) for s in restores}
    missing = [c for c, point in found.items() if point is None]
    if missing:
        return (
            "not done",
            f"no backup or point-in-time recovery recorded at {inc.to_release.label}: {', '.join(missing)}",
        )
    return "done", "; ".join(f"{c}: {point}" for c, point in found.items())


def _restore_point(step: StepFact) -> str | None:
    target = step.target
    if target.get("backup_arn"):
        return f"backup {target['backup_arn']}"
    if target.get("snapshot"):
        return f"snapshot {target['snapshot']}"
    if target.get("pitr") or step.kind in ("rds-instance", "aurora-cluster"):
        return f"point-in-time restore to {target.get('recorded_at') or 'the release time'}"
    return None


# --- during the rollback ----------------------------------------------------------------------------------------


def order_kept(inc: Incident) -> Verdict:
    steps = {s.component: s for s in inc.steps}
    pairs = [(steps[d], s) for s in inc.steps for d in s.waits_for if d in steps]
    if not pairs:
        return "not applicable", "no component waits for another"
    broken = [
        f"{later.component} started before {first.component} finished"
        for first, later in pairs
        if later.started_at is not None
        and (first.finished_at is None or first.finished_at > later.started_at or not first.verified)
    ]
    if broken:
        return "not done", "; ".join(broken)
    started = [(f, s) for f, s in pairs if s.started_at is not None]
    if not started:
        return "not done", "the steps that wait for others never started: " + ", ".join(
            sorted({s.component for _f, s in pairs})
        )
    return "done", "order kept: " + ", ".join(f"{f.component} before {s.component}" for f, s in started)


def progress_recorded(inc: Incident) -> Verdict:
    started = [s for s in inc.steps if s.started_at is not None]
    outcomes = {e.data.get("component") for e in inc.events if e.type.startswith("step-") and e.type != "step-progress"}
    silent = [s.component for s in started if s.component not in outcomes]
    if silent:
        return (
            "not done",
            f"no outcome recorded for: {', '.join(silent)} (the process stopped? lastgood resume {inc.id})",
        )
    if not started:
        return "not done", "no step started"
    progress = sum(1 for e in inc.events if e.type == "step-progress")
    return "done", f"{len(started)} step outcomes and {progress} progress messages recorded"


def errors_checked(inc: Incident) -> Verdict:
    if inc.failed_steps:
        return "not done", "; ".join(
            f"{s.component} failed: {s.error or s.detail or 'no error text'}" for s in inc.failed_steps
        )
    retried = [f"{s.component} took {s.attempts} attempts" for s in inc.steps if s.attempts > 1]
    if not any(s.started_at for s in inc.steps):
        return "not done", "no step ran"
    return "done", "no step ended in error" + (f" ({'; '.join(retried)})" if retried else "")


def all_verified(inc: Incident) -> Verdict:
    total, verified = len(inc.steps), inc.verified_steps
    if total == 0:
        return "not applicable", "nothing to change: every component already matched the target"
    text = f"{len(verified)}/{total} steps verified"
    if len(verified) == total:
        return "done", text
    failed = [s.component for s in inc.failed_steps]
    waiting = [s.component for s in inc.steps if not s.verified and s.status != "failed"]
    parts = [text] + ([f"failed: {', '.join(failed)}"] if failed else [])
    parts += [f"not finished: {', '.join(waiting)}"] if waiting else []
    return "not done", "; ".join(parts)


# --- after the rollback -----------------------------------------------------------------------------------------


def health_checked(inc: Incident) -> Verdict:
    if inc.succeeded:
        verified = next((e for e in inc.events if e.type == "rollback-succeeded"), None)
        detail = verified.message if verified else f"{inc.env} verified on {inc.to_release.label}"
        return "done", f"{detail} at {when(inc.finished_at)}; every component read back at its recorded state"
    first_line = (inc.error or inc.status).splitlines()[0]
    return "not done", f"rollback {inc.status}: {first_line}"


def data_verified(inc: Incident) -> Verdict:
    data = [s for s in inc.steps if s.kind in DATA_KINDS]
    if not data:
        return "not applicable", "no database or data component in this rollback"
    bad = [s for s in data if not s.verified]
    if bad:
        return "not done", "; ".join(f"{s.component}: {s.error or s.status}" for s in bad)
    windows = [
        f"{s.component}: data-loss window {human(s.data_loss_window_seconds)}"
        for s in data
        if s.data_loss_window_seconds is not None
    ]
    names = ", ".join(s.component for s in data)
    return "done", f"data checks passed: {names}" + (f" ({'; '.join(windows)})" if windows else "")


def metrics_checked(inc: Incident) -> Verdict:
    if inc.trigger:
        return (
            "not done",
            f"no metric check recorded after the rollback (when it fired: {trigger_summary(inc.trigger)})",
        )
    return "not done", f"no metric check recorded after the rollback; {NOT_RECORDED}"


def not_recorded(_inc: Incident) -> Verdict:
    return "not done", NOT_RECORDED


def notified_after(inc: Incident) -> Verdict:
    end = inc.finished_at
    if end is None:
        return "not done", "the rollback has not finished"
    sent = [n for n in inc.notifications if n.ok and n.at >= end]
    if sent:
        channels = ", ".join(dict.fromkeys(n.channel for n in sent))
        return "done", f"notified: {channels} at {clock(sent[0].at)} UTC"
    failed = [n for n in inc.notifications if not n.ok and n.at >= end]
    if failed:
        return "not done", f"notification failed: {failed[0].channel}: {failed[0].message}"
    return "not done", "no notification recorded after the rollback finished"


def documented(inc: Incident) -> Verdict:
    if inc.reviewed_by or inc.review_note:
        return "done", f"reviewed by {inc.reviewed_by or 'unknown'}: {inc.review_note or 'no note'}"
    return "not done", "details: this report; learnings: no review recorded yet"


SPECS: tuple[ItemSpec, ...] = (
    ItemSpec("pre", "Identify the issue and confirm rollback is necessary", "004 Pre-Rollback", issue_confirmed),
    ItemSpec("pre", "Assess the incident's severity", "000 Phase 1: Assessment", severity_assessed),
    ItemSpec("pre", "Decide the rollback method", "003 Rollback Decision Matrix", method_decided),
    ItemSpec("pre", "Get the authorization the severity requires", "000 Authorization Matrix", authorized),
    ItemSpec("pre", "Notify team and stakeholders", "004 Pre-Rollback", notified_before),
    ItemSpec("pre", "Document current state and issue", "004 Pre-Rollback", state_documented),
    ItemSpec("pre", "Identify target version to rollback to", "004 Pre-Rollback", target_identified),
    ItemSpec("pre", "Verify backup/snapshot is available (for database)", "004 Pre-Rollback", backup_available),
    ItemSpec("during", "Roll back in the correct order (dependents first, database last)", "004 Step 3", order_kept),
    ItemSpec("during", "Monitor rollback progress and events", "004 During Rollback", progress_recorded),
    ItemSpec("during", "Check for errors", "004 During Rollback", errors_checked),
    ItemSpec("during", "Verify each component's rollback completes successfully", "004 During Rollback", all_verified),
    ItemSpec("post", "Run health checks", "004 Post-Rollback", health_checked),
    ItemSpec("post", "Test API endpoints", "004 Post-Rollback", not_recorded),
    ItemSpec("post", "Verify database integrity", "004 Post-Rollback; 003 Data Validation", data_verified),
    ItemSpec("post", "Check CloudWatch metrics", "004 Post-Rollback; 000 Performance Validation", metrics_checked),
    ItemSpec("post", "Monitor logs for errors", "004 Post-Rollback", not_recorded),
    ItemSpec("post", "Test critical user workflows", "004 Post-Rollback; 000 Business Validation", not_recorded),
    ItemSpec("post", "Notify team and stakeholders of completion", "004 Post-Rollback", notified_after),
    ItemSpec("post", "Document rollback details and learnings", "004 Post-Rollback", documented),
)


def notified(phase: Phase) -> Callable[[Incident], Verdict]:
    """A notification in the item's phase: before the start (pre), while it ran (during), after the end (post)."""
    if phase == "pre":
        return notified_before
    if phase == "post":
        return notified_after

    def while_running(inc: Incident) -> Verdict:
        start, end = inc.started_at, inc.finished_at
        sent = [n for n in inc.notifications if n.ok and start and n.at >= start and (end is None or n.at <= end)]
        if sent:
            return "done", f"notified: {', '.join(dict.fromkeys(n.channel for n in sent))} while it ran"
        return "not done", "no notification recorded while the rollback ran"

    return while_running


def validation_passed(inc: Incident) -> Verdict:
    result = inc.validation
    if result is None:
        return "not done", "no validate: checks ran (the file has none for this environment, or they did not run)"
    checks = ", ".join(c["name"] for c in result.get("checks", []))
    if result.get("passed"):
        return "done", f"validation passed: {checks}"
    return "not done", f"validation failed: {', '.join(c['name'] for c in result.get('checks', []) if not c['passed'])}"


def rollback_succeeded(inc: Incident) -> Verdict:
    return ("done", f"succeeded at {when(inc.finished_at)}") if inc.succeeded else ("not done", f"{inc.status}")


# The facts `auto:` may name (config/comms.py AUTO_FACTS holds the names), each read from the ledger. A part that
# records a new fact adds its check here and its name there (register_fact).
FACT_CHECKS: dict[str, Callable[[Phase], Callable[[Incident], Verdict]]] = {
    "issue-confirmed": lambda _p: issue_confirmed,
    "severity-assessed": lambda _p: severity_assessed,
    "method-decided": lambda _p: method_decided,
    "approval-granted": lambda _p: authorized,
    "release-recorded": lambda _p: state_documented,
    "target-identified": lambda _p: target_identified,
    "backup-available": lambda _p: backup_available,
    "order-kept": lambda _p: order_kept,
    "progress-recorded": lambda _p: progress_recorded,
    "no-errors": lambda _p: errors_checked,
    "components-verified": lambda _p: all_verified,
    "rollback-succeeded": lambda _p: rollback_succeeded,
    "data-verified": lambda _p: data_verified,
    "notified": notified,
    "reviewed": lambda _p: documented,
    "validation-passed": lambda _p: validation_passed,
}


def register_check(fact: str, check: Callable[[Incident], Verdict]) -> None:
    """How the ledger proves `fact` (its name registered in config.comms.register_fact)."""
    FACT_CHECKS[fact] = lambda _p: check


def builtin_specs() -> tuple[ItemSpec, ...]:
    return SPECS


def file_specs(lists: Checklists) -> tuple[ItemSpec, ...]:
    """The file's items: those with `auto:` checked by their fact, the others open until ticked by hand."""
    return tuple(
        ItemSpec(phase, entry.item, f"lastgood.yaml checklists.{phase}", _file_check(phase, entry), entry.key)
        for phase, entry in lists.entries()
    )


def _file_check(phase: Phase, entry: ChecklistEntry) -> Callable[[Incident], Verdict]:
    if entry.auto is None:
        return lambda inc: ("not done", f"not ticked yet: lastgood check {inc.id} {entry.key}")
    return FACT_CHECKS[entry.auto](phase)


def checklist(incident: Incident, lists: Checklists | None = None) -> list[ChecklistItem]:
    """The file's checklists when it has them, else the built-in list; a tick by hand (`lastgood check`) marks
    an item done whatever the ledger proves."""
    specs = builtin_specs() if lists is None else file_specs(lists)
    ticks = manual_ticks(incident)
    return [ChecklistItem(s.phase, s.text, s.source, *_ticked(s, incident, ticks), key=s.key) for s in specs]


def manual_ticks(inc: Incident) -> dict[str, EventFact]:
    """The latest `checklist-ticked` event per item key."""
    return {str(e.data.get("item")): e for e in inc.events if e.type == TICKED}


def _ticked(spec: ItemSpec, inc: Incident, ticks: dict[str, EventFact]) -> Verdict:
    tick, evidence = _tick(spec, inc)
    by_hand = ticks.get(spec.key)
    if by_hand is None or tick != "not done":
        return tick, evidence
    note = by_hand.data.get("note")
    return "done", f"ticked by {by_hand.actor} at {clock(by_hand.at)} UTC" + (f": {note}" if note else "")


def _tick(spec: ItemSpec, inc: Incident) -> Verdict:
    """During and after a rollback that never ran, the items are not applicable (declined, denied) or open."""
    if spec.phase == "pre" or inc.ran:
        return spec.check(inc)
    if inc.status in ("declined", "denied"):
        why = inc.decision_reason if inc.status == "declined" else "denied"
        return "not applicable", f"the rollback did not run ({inc.status}: {why})"
    return "not done", f"the rollback has not started ({inc.status})"
