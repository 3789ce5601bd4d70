"""Telling people about a rollback: facts from the ledger, messages through the environment's dispatcher.

Sending never blocks or fails a rollback (the dispatcher queues and retries); what finally fails is written to
the timeline as `notify-failed`, and each message handed over as `notify-sent`.
"""

from __future__ import annotations

import atexit
import dataclasses
from typing import Any

from lastgood.config.durations import format_duration
from lastgood.config.policy import EscalationStep
from lastgood.ledger import store
from lastgood.ledger.tables import ReleaseRow
from lastgood.notify import Dispatch, Dispatcher, Message, NopDispatcher, build_notifiers, message_from_rollback
from lastgood.notify.templates import with_template
from lastgood.runtime.context import EnvContext


def dispatcher_for(ctx: EnvContext) -> Dispatch:
    settings = ctx.runbook.notifications
    notifiers = build_notifiers(settings, ctx.aws)
    if not notifiers:
        return NopDispatcher()

    def record_failure(notifier: str, message: Message, error: str) -> None:
        with ctx.session() as session:
            store.add_event(
                session,
                ctx.app,
                ctx.env,
                "notify-failed",
                f"{notifier}: {message.event}: {error}",
                ctx.clock.now(),
                message.rollback_id,
                {"notifier": notifier, "event": message.event},
            )

    dispatch = Dispatcher(notifiers, record_failure, settings.retries)
    atexit.register(dispatch.close, 10.0)  # deliver what is queued before a CLI process exits
    return dispatch


def facts(ctx: EnvContext, rollback_id: str) -> dict[str, Any]:
    with ctx.session() as session:
        row = store.get_rollback(session, rollback_id)
        labels = {
            rid: (session.get(ReleaseRow, rid).label if rid is not None else None)  # type: ignore[union-attr]
            for rid in (row.from_release_id, row.to_release_id)
        }
        steps = row.steps
        done = [s.component for s in steps if s.status in ("succeeded", "unchanged")]
        failed = {s.component: s.error or "" for s in steps if s.status == "failed"}
        elapsed = (ctx.clock.now() - (row.started_at or row.created_at)).total_seconds()
        return {
            "id": row.id,
            "app": row.app,
            "env": row.env,
            "reason": row.reason,
            "severity": row.severity,
            "method": row.method,
            "requested_by": row.requested_by,
            "drill": row.drill,
            "from_release": labels[row.from_release_id],
            "to_release": labels[row.to_release_id],
            "approvals_needed": row.approvals_needed,
            "approver_roles": row.approver_roles or [],
            "steps_done": len(done),
            "steps_total": len(steps),
            "failed": failed,
            "not_started": [s.component for s in steps if s.status == "pending"],
            "error": row.error,
            "elapsed_seconds": elapsed,
            "trigger": row.trigger,
        }


def notify(ctx: EnvContext, event: str, rollback_id: str, details: list[str] | None = None, **extra: Any) -> None:
    if isinstance(ctx.dispatch, NopDispatcher):
        return
    known = {**facts(ctx, rollback_id), **extra}
    message = templated(ctx, message_from_rollback(event, known, details=details or ()), known)
    _send(ctx, message, rollback_id)


def templated(ctx: EnvContext, message: Message, known: dict[str, Any]) -> Message:
    """The file's template for the message's kind, rendered with the facts (notifications.templates)."""
    return with_template(message, ctx.runbook.notifications.templates, known)


def notify_alert(ctx: EnvContext, event: str, reference: str, issue: str, action: str, details: list[str]) -> None:
    """A message that is not about a rollback (e.g. `not-the-cause` during a deployment): told, not acted on."""
    if isinstance(ctx.dispatch, NopDispatcher):
        return
    status = "alert only: no rollback"
    message = Message(event, ctx.app, ctx.env, reference, issue, "see the details", action, "n/a", status, details)
    message = templated(ctx, message, {"app": ctx.app, "env": ctx.env})
    _send(ctx, message, None, reference=reference)


def send(ctx: EnvContext, message: Message, rollback_id: str, key: str, channels: tuple[str, ...] = ()) -> None:
    """An escalation step or stakeholder update (`key`), to some channels (by name or type) or all."""
    if isinstance(ctx.dispatch, NopDispatcher):
        return
    _send(ctx, dataclasses.replace(message, to=list(channels)), rollback_id, key=key)


def _send(ctx: EnvContext, message: Message, rollback_id: str | None, **data: str) -> None:
    """Hand the message to the dispatcher and write `notify-sent` to the timeline."""
    ctx.dispatch.send(message)
    channels = ", ".join(message.to or _channel_types(ctx))
    with ctx.session() as session:
        text = f"{message.event} to {channels}: {message.status}"
        event_data = {"event": message.event, "channel": channels, **data}
        store.add_event(session, ctx.app, ctx.env, "notify-sent", text, ctx.clock.now(), rollback_id, event_data)


def _channel_types(ctx: EnvContext) -> list[str]:
    return [channel.type for channel in ctx.runbook.notifications.channels]


def escalation_lines(ctx: EnvContext) -> list[str]:
    """The file's escalation path, with each contact's roles resolved to people and their addresses."""
    policy = ctx.runbook.policy
    return [f"escalate after {format_duration(step.after)}: {contacts(ctx, step)}" for step in policy.escalation]


def contacts(ctx: EnvContext, step: EscalationStep) -> str:
    """The step's contacts: its roles resolved to people and their addresses."""
    policy = ctx.runbook.policy
    people = [p for p in policy.people if p.name in step.contact or set(p.roles) & set(step.contact)]
    reach = [f"{p.name} ({', '.join(x for x in (p.email, p.slack, p.phone) if x) or 'no contact'})" for p in people]
    return ", ".join(reach) or ", ".join(step.contact)


def contact_lines(ctx: EnvContext, step: EscalationStep) -> list[str]:
    return [f"contact: {contacts(ctx, step)}"]


def start_updates(ctx: EnvContext, rollback_id: str) -> None:
    if isinstance(ctx.dispatch, NopDispatcher):
        return
    ctx.dispatch.start_updates(
        rollback_id,
        lambda: _status_update(ctx, rollback_id),
        ctx.runbook.notifications.update_every,
    )


def _status_update(ctx: EnvContext, rollback_id: str) -> Message:
    known = facts(ctx, rollback_id)
    return templated(ctx, message_from_rollback("status-update", known), known)
