"""Durations ("5m", "30s", "1h30m") and trigger conditions ("> 5%")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
MAX_DURATION = 3650 * 86400.0  # ten years: longer is a typo, and dates or timeouts that far out overflow
_FORMS = "a duration such as '30s', '5m' or '1h' (units s, m, h, d; at most 3650d)"


def parse_duration(value: Any) -> float:
    """Seconds from an int (seconds) or a string such as '90s', '5m' or '1h30m'."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {_FORMS}, got {_shown(value)}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return _bounded(value, value)
    text = value.strip().lower()
    if len(text) > 40:
        raise ValueError(f"expected {_FORMS}, got {_shown(value)}")
    if text.isdigit():
        return _bounded(int(text), value)
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"expected {_FORMS}, got {_shown(value)}")
    return _bounded(sum(float(n) * _UNITS[u] for n, u in parts), value)


def _bounded(seconds: float, value: Any) -> float:
    if not seconds <= MAX_DURATION:  # also false for NaN
        raise ValueError(f"expected {_FORMS}, got {_shown(value)}")
    return float(seconds)


def _shown(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 100:
        return "a number too large"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s" if sec else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "string", "pattern": "^(\\d+(\\.\\d+)?[smhd])+$"}, {"type": "number"}]}),
]

Operator = Literal[">", ">=", "<", "<="]
ConditionKind = Literal["threshold", "baseline", "present"]
_CONDITION = re.compile(
    r"^\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*(?:(%)|x\s*baseline|per\s+((?:\d+(?:\.\d+)?[smhd])+))?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Condition:
    """`> 5%`, `>= 100`; `> 5 per 5m` (a count per window); `> 5x baseline`; `present` (any value > 0)."""

    operator: Operator
    threshold: float
    percent: bool
    kind: ConditionKind = "threshold"
    window: float | None = None  # `per 5m`: the period, and the statistic is a Sum

    def holds(self, value: float, baseline: float | None = None) -> bool:
        """Whether `value` breaches; a `baseline` condition compares it with threshold x baseline."""
        if self.kind == "present":
            return value > 0
        limit = self.threshold * baseline if self.kind == "baseline" and baseline is not None else self.threshold
        match self.operator:
            case ">":
                return value > limit
            case ">=":
                return value >= limit
            case "<":
                return value < limit
            case "<=":
                return value <= limit

    def __str__(self) -> str:
        if self.kind == "present":
            return "present"
        if self.kind == "baseline":
            return f"{self.operator} {self.threshold:g}x baseline"
        if self.window is not None:
            return f"{self.operator} {self.threshold:g} per {format_duration(self.window)}"
        return f"{self.operator} {self.threshold:g}{'%' if self.percent else ''}"


def parse_condition(value: Any) -> Condition:
    if isinstance(value, Condition):
        return value
    text = str(value)
    if text.strip().lower() == "present":
        return Condition(operator=">", threshold=0.0, percent=False, kind="present")
    match = _CONDITION.match(text)
    if not match:
        raise ValueError(f"expected a condition such as '> 5%' or '>= 100', got {value!r}")
    op, number, pct, window = match.groups()
    if "baseline" in text.lower():
        return Condition(operator=op, threshold=float(number), percent=False, kind="baseline")  # type: ignore[arg-type]
    return Condition(
        operator=op,  # type: ignore[arg-type]
        threshold=float(number),
        percent=bool(pct),
        window=parse_duration(window) if window else None,
    )


_CONDITION_PATTERN = (
    "^\\s*((>=|<=|>|<)\\s*-?\\d+(\\.\\d+)?\\s*(%|[xX]\\s*baseline|per\\s+(\\d+(\\.\\d+)?[smhd])+)?|present)\\s*$"
)

ConditionField = Annotated[
    Condition,
    BeforeValidator(parse_condition),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": _CONDITION_PATTERN}),
]
