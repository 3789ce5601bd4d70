"""Durations ("5m", "30s", "1h30m") and trigger conditions ("> 5%")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(value: Any) -> float:
    """Seconds from an int (seconds) or a string such as '90s', '5m' or '1h30m'."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '5m', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    text = str(value).strip().lower()
    if text.isdigit():
        return float(text)
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"expected a duration such as '30s', '5m' or '1h', got {value!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


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
_CONDITION = re.compile(r"^\s*(>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class Condition:
    operator: Operator
    threshold: float
    percent: bool

    def holds(self, value: float) -> bool:
        match self.operator:
            case ">":
                return value > self.threshold
            case ">=":
                return value >= self.threshold
            case "<":
                return value < self.threshold
            case "<=":
                return value <= self.threshold

    def __str__(self) -> str:
        return f"{self.operator} {self.threshold:g}{'%' if self.percent else ''}"


def parse_condition(value: Any) -> Condition:
    if isinstance(value, Condition):
        return value
    match = _CONDITION.match(str(value))
    if not match:
        raise ValueError(f"expected a condition such as '> 5%' or '>= 100', got {value!r}")
    op, number, pct = match.groups()
    return Condition(operator=op, threshold=float(number), percent=bool(pct))  # type: ignore[arg-type]


ConditionField = Annotated[
    Condition,
    BeforeValidator(parse_condition),
    PlainSerializer(str, return_type=str),
    WithJsonSchema({"type": "string", "pattern": "^\\s*(>=|<=|>|<)\\s*-?\\d+(\\.\\d+)?\\s*%?\\s*$"}),
]
