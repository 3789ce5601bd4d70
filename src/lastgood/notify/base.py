"""The message every channel renders, and the interface every notifier implements (like flagger's Interface)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol

from lastgood.errors import LastgoodError
from lastgood.redact import redact

# What the subject line says first, per event: the 004 runbook's "[URGENT]" for what needs people now.
_TAGS = {
    "rollback-started": "URGENT",
    "approval-needed": "URGENT",
    "rollback-failed": "URGENT",
    "rollback-interrupted": "URGENT",
    "rollback-succeeded": "RESOLVED",
    "rollback-restored-unhealthy": "URGENT",
    "escalation": "ESCALATION",
    "not-the-cause": "ALERT",
    "canary-blind": "ALERT",
}
_TITLES = {
    "rollback-started": "Rolling back",
    "approval-needed": "Approval needed to roll back",
    "step-succeeded": "Rollback step done",
    "step-failed": "Rollback step failed",
    "status-update": "Still rolling back",
    "rollback-succeeded": "Rolled back",
    "rollback-failed": "Rollback failed",
    "rollback-interrupted": "Rollback interrupted",
    "rollback-restored-unhealthy": "Rolled back, still unhealthy",
    "escalation": "Escalation: rollback not acknowledged",
    "not-the-cause": "Alert, not the release: no rollback",
    "canary-blind": "Canary judge blind: it cannot compare the versions",
}


class NotifyError(LastgoodError):
    """A notifier could not deliver a message (the dispatcher retries, then records it)."""


@dataclass(frozen=True)
class Message:
    """One notification, in the fields of the 004 runbook's communication template."""

    event: str
    app: str
    env: str
    rollback_id: str
    issue: str
    impact: str
    action: str
    eta: str
    status: str
    details: list[str] = field(default_factory=list)
    body: str | None = None  # the file's template rendered (notifications.templates); None: the 004 template
    to: list[str] = field(default_factory=list)  # channel names or types (escalation steps); empty: every channel

    def addressed(self, notifier_name: str) -> bool:
        """Whether a notifier (named `NAME.TYPE`, e.g. `oncall.slack` or `channels[0].sns`) should get this."""
        name, _, kind = notifier_name.rpartition(".")
        return not self.to or name in self.to or kind in self.to or notifier_name in self.to

    def subject(self) -> str:
        tag = _TAGS.get(self.event, "UPDATE")
        title = _TITLES.get(self.event, self.event)
        return f"[{tag}] {title} {self.app} {self.env} ({self.rollback_id}): {self.status}"

    def fields(self) -> list[tuple[str, str]]:
        return [
            ("Issue", self.issue),
            ("Impact", self.impact),
            ("Action", self.action),
            ("ETA", self.eta),
            ("Status", self.status),
        ]

    def text(self) -> str:
        """The file's template when it has one for this kind, else Issue / Impact / Action / ETA / Status, then
        one line per detail."""
        if self.body is not None:
            return self.body
        lines = [f"{label}: {value}" for label, value in self.fields()]
        if self.details:
            lines += ["", *(f"- {detail}" for detail in self.details)]
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def redacted(self) -> Message:
        """The same message with every registered secret masked (what leaves lastgood)."""
        data = redact(self.as_dict())
        return Message(**data)


class Notifier(Protocol):
    """One channel. `send` delivers one message or raises (NotifyError, an AwsError, OSError, ...)."""

    name: str

    def send(self, message: Message) -> None: ...


class NopNotifier:
    """Delivers nothing (no channels configured)."""

    def __init__(self, name: str = "nop") -> None:
        self.name = name

    def send(self, message: Message) -> None:
        return None
