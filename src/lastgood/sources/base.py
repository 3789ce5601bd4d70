"""The metric-source interface. A source that fails or has no data says so in the Series; it never raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
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
