"""Result models shared by several use cases. Times are ISO 8601 as Python writes them (`+00:00`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, PlainSerializer

from lastgood.ledger.tables import ReleaseRow

IsoTime = Annotated[datetime, PlainSerializer(lambda at: at.isoformat(), return_type=str, when_used="json")]


class Holder(BaseModel):
    """The operation holding an environment (`runtime.lease`)."""

    operation: str
    id: str
    actor: str
    via: str
    host: str
    pid: int
    since: str
    heartbeat_age_seconds: float
    lease_expires_in_seconds: float


class ReleaseSummary(BaseModel):
    label: str
    recorded_at: IsoTime
    recorded_by: str
    live: bool
    bad: bool
    bad_reason: str | None


def release_summary(release: ReleaseRow, live_id: int | None) -> ReleaseSummary:
    return ReleaseSummary(
        label=release.label,
        recorded_at=release.recorded_at,
        recorded_by=release.recorded_by,
        live=release.id == live_id,
        bad=release.bad,
        bad_reason=release.bad_reason,
    )
