"""Drill schedules (`drills: {staging: monthly}`): daily, weekly and monthly are intervals since the last drill
(1, 7 and 30 days: "drill monthly" means at least once a month); anything else is a 5-field cron expression
(croniter), due once a scheduled time has passed since the last drill. An environment never drilled is due."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator

INTERVALS: dict[str, timedelta] = {
    "daily": timedelta(days=1),
    "weekly": timedelta(days=7),
    "monthly": timedelta(days=30),
}


def _schedule(value: str) -> str:
    from croniter import croniter

    text = value.strip()
    if text in INTERVALS:
        return text
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValueError(f"{value!r} is not a schedule: daily, weekly, monthly or a cron expression ('0 3 1 * *')")
    return text


Schedule = Annotated[str, AfterValidator(_schedule)]


def due_at(schedule: str, last: datetime | None) -> datetime | None:
    """When the next drill falls due; None: now (never drilled)."""
    if last is None:
        return None
    if schedule in INTERVALS:
        return last + INTERVALS[schedule]
    from croniter import croniter

    found: datetime = croniter(schedule, last).get_next(datetime)
    return found


def is_due(schedule: str, last: datetime | None, now: datetime) -> bool:
    when = due_at(schedule, last)
    return when is None or when <= now
