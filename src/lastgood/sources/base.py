"""The metric-source interface. A source that fails or has no data says so in the Series; it never raises."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

from pydantic import BaseModel

SeriesStatus = Literal["ok", "no-data", "error"]
Query = BaseModel  # a source's own settings model (a trigger's `query`); each source checks it is one of its own


@dataclass(frozen=True)
class SeriesRequest:
    id: str
    query: Query
    period: float
    window: Literal["live", "baseline"] = "live"  # baseline: the window before the live release was recorded


@dataclass
class Series:
    id: str
    points: dict[datetime, float] = field(default_factory=dict)
    status: SeriesStatus = "ok"
    error: str | None = None


class MetricSource(Protocol):
    name: str

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        """One Series per request id, points keyed by period start (UTC)."""
        ...


def counted(request: SeriesRequest, stamps: list[float], start: datetime, end: datetime) -> Series:
    """Events (epoch seconds) counted in each complete period from `start`: 0 where none fell (a count's value)."""
    first, period = start.timestamp(), request.period
    periods = max(0, math.floor((end.timestamp() - first) / period))
    counts = [0.0] * periods
    for stamp in stamps:
        index = math.floor((stamp - first) / period)
        if 0 <= index < periods:
            counts[index] += 1
    points = {datetime.fromtimestamp(first + k * period, UTC): counts[k] for k in range(periods)}
    return Series(request.id, points=points, status="ok" if points else "no-data")
