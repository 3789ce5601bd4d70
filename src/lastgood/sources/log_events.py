"""CloudWatch Logs without a metric filter: the events matching a filter pattern, counted per period
(FilterLogEvents over the whole window, paginated, each event counted in the period its timestamp falls in).

Every complete period in the window has a value (0 when nothing matched). More than `max_events` matching events
in one fetch is an error Series (narrow the pattern, or use a metric filter), not a count cut short.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from lastgood.aws.clients import AwsClients
from lastgood.aws.errors import map_aws_errors
from lastgood.config.durations import Condition
from lastgood.config.models import Strict, positive_period
from lastgood.errors import AwsError
from lastgood.sources.base import Series, SeriesRequest, counted


class LogEventsQuery(Strict):
    """Count the log events matching `pattern` (CloudWatch Logs filter pattern syntax, e.g. `ERROR` or
    `"connection refused"`) in each period."""

    log_group: str = Field(min_length=1, max_length=512, description="The log group, e.g. /aws/lambda/api.")
    pattern: str = Field(default="", max_length=1024, description="The filter pattern [default: every event].")
    streams: list[str] | None = Field(
        default=None, max_length=100, description="Only these log streams [default: all]."
    )
    max_events: int = Field(
        default=100_000, ge=1, le=10_000_000, description="More matching events in one look is an error."
    )


class LogEventsSource:
    """`log_events:` matching log events counted per period."""

    name = "log_events"
    settings: ClassVar[Any] = LogEventsQuery
    per_settings: ClassVar[Any] = None
    per_shape: ClassVar[str] = ""
    iam_actions: ClassVar[tuple[str, ...]] = ("logs:FilterLogEvents",)

    def __init__(self, aws: AwsClients) -> None:
        self.aws = aws

    @classmethod
    def build(cls, aws: AwsClients, queries: list[BaseModel]) -> LogEventsSource:
        return cls(aws)

    @classmethod
    def check_period(cls, period: float) -> None:
        positive_period(period)

    @classmethod
    def check_trigger(cls, query: Any, per: Any, when: Condition, period: float) -> None:
        return None

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        found: dict[str, list[int] | str] = {}  # the same query in several requests is read once
        out: dict[str, Series] = {}
        for request in requests:
            query = request.query
            if not isinstance(query, LogEventsQuery):
                out[request.id] = Series(request.id, status="error", error=f"not a log events query: {query!r}")
                continue
            key = query.model_dump_json()
            if key not in found:
                found[key] = self._timestamps(query, start, end)
            stamps = found[key]
            if isinstance(stamps, str):
                out[request.id] = Series(request.id, status="error", error=stamps)
            else:
                out[request.id] = counted(request, [stamp / 1000 for stamp in stamps], start, end)
        return out

    def _timestamps(self, query: LogEventsQuery, start: datetime, end: datetime) -> list[int] | str:
        """The matching events' timestamps (ms), or why they could not be read."""
        kwargs: dict[str, Any] = {
            "logGroupName": query.log_group,
            "startTime": int(start.timestamp() * 1000),
            "endTime": int(end.timestamp() * 1000) - 1,  # the window's end belongs to the next period
        }
        if query.pattern:
            kwargs["filterPattern"] = query.pattern
        if query.streams:
            kwargs["logStreamNames"] = query.streams
        client = self.aws.client("logs")
        stamps: list[int] = []
        try:
            while True:
                with map_aws_errors("logs:FilterLogEvents"):
                    page = client.filter_log_events(**kwargs)
                stamps += [int(event["timestamp"]) for event in page.get("events", [])]
                if len(stamps) > query.max_events:
                    return f"more than {query.max_events} matching events: narrow the pattern or use a metric filter"
                token = page.get("nextToken")
                if not token or token == kwargs.get("nextToken"):
                    return stamps
                kwargs["nextToken"] = token
        except AwsError as error:
            return f"CloudWatch Logs {query.log_group}: {error}"
