"""The judge interface: which series a trigger needs, and the verdict over them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from lastgood.config.models import Trigger
from lastgood.sources.base import Series, SeriesRequest

VerdictState = Literal["ok", "breaching", "firing", "no-data", "error"]


@dataclass(frozen=True)
class TriggerVerdict:
    trigger: str
    state: VerdictState
    action: str
    severity: str
    value: float | None
    breaching_periods: int
    required_periods: int
    detail: str
    values: list[float | None] = field(default_factory=list)

    @property
    def fires_rollback(self) -> bool:
        return self.state == "firing" and self.action == "rollback"

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "state": self.state,
            "action": self.action,
            "severity": self.severity,
            "value": self.value,
            "breaching_periods": self.breaching_periods,
            "required_periods": self.required_periods,
            "detail": self.detail,
            "values": self.values,
        }


class Judge(Protocol):
    def requests(self, trigger: Trigger) -> list[SeriesRequest]:
        """The series to fetch; those with window="baseline" cover the window before `baseline_end`."""
        ...

    def judge(
        self, trigger: Trigger, series: dict[str, Series], window_end: datetime, baseline_end: datetime | None = None
    ) -> TriggerVerdict:
        """`baseline_end`: when the live release was recorded (for `> Nx baseline`), aligned to the period."""
        ...
