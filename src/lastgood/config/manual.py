"""Manual triggers: the reasons a person rolls back that no metric shows (000's "user reports, data corruption,
compliance violation, business decision"), each with its default severity. `lastgood rollback ENV --trigger NAME`
and the API's `trigger` name one; the rollback records it as its trigger and the decision matrix reads its
severity as it reads a fired trigger's."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import Field

from lastgood.config.policy import SEVERITIES, Severity
from lastgood.config.strict import Strict

NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"


class ManualTrigger(Strict):
    name: str = Field(pattern=NAME_PATTERN, description="What a person names with `--trigger`, e.g. user-reports.")
    severity: Severity = Field(default="high", description="The severity when `--severity` is not given.")
    description: str = Field(default="", max_length=500, description="What it means, for people and the report.")


@dataclass(frozen=True)
class ManualFiring:
    """A manual trigger, as a rollback records it."""

    name: str
    severity: str
    description: str = ""

    def to_dict(self, by: str) -> dict[str, object]:
        """The shape of a fired trigger (judge/base.TriggerVerdict.to_dict), marked manual."""
        detail = f"manual trigger, raised by {by}" + (f": {self.description}" if self.description else "")
        return {
            "trigger": self.name,
            "state": "fired",
            "action": "rollback",
            "severity": self.severity,
            "manual": True,
            "by": by,
            "detail": detail,
        }


def resolve(listed: list[ManualTrigger], name: str, severity: str | None, default: str) -> ManualFiring:
    """The trigger a person names, with the severity given or its own; ValueError says what is allowed. Without
    a `manual_triggers:` list any well-formed name is accepted, at the policy's default severity."""
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"--severity: {severity!r} is not one of {', '.join(SEVERITIES)}")
    if not listed:
        if not re.fullmatch(NAME_PATTERN, name):
            raise ValueError(f"--trigger: {name!r} is not a trigger name (lowercase letters, digits and -)")
        return ManualFiring(name, severity or default)
    found = next((t for t in listed if t.name == name), None)
    if found is None:
        allowed = ", ".join(f"{t.name} ({t.severity})" for t in listed)
        raise ValueError(f"--trigger: {name!r} is not a manual trigger of this file (manual_triggers: {allowed})")
    return ManualFiring(found.name, severity or found.severity, found.description)
