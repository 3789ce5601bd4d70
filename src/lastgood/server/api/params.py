"""Path and query parameters every resource shares, with their limits (bad input is 422, never 5xx)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Path

from lastgood.config.durations import parse_duration
from lastgood.errors import BadInput

NAME = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"  # an app's, environment's or component's name, as the file allows

AppName = Annotated[str, Path(min_length=1, max_length=128, description="The app (the file's `app:`).")]
EnvName = Annotated[str, Path(min_length=1, max_length=128, description="An environment of the app.")]
Label = Annotated[str, Path(min_length=1, max_length=256, description="A release label.")]
Id = Annotated[str, Path(min_length=1, max_length=64, description="An id, as the ledger gave it.")]

DURATION_FORMS = "a whole or decimal number and a unit: '30s', '5m', '1h', '90d', or combined, '1h30m'"
MAX_DURATION = 100 * 365 * 86400.0


def duration(name: str, value: str, maximum: float = MAX_DURATION) -> float:
    """Seconds of a duration parameter; BadInput (400) naming the allowed forms, or the limit."""
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise BadInput(f"{name}: {error}") from None
    if not 0 <= seconds <= maximum:
        raise BadInput(f"{name}: {value!r} is longer than the limit, {maximum / 86400:g} days")
    return seconds


def since(value: str, now: datetime) -> datetime:
    return now - timedelta(seconds=duration("since", value))
