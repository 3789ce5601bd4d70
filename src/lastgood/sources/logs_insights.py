"""CloudWatch Logs Insights: one query per period (StartQuery over the period, GetQueryResults polled until it
completes or `timeout` passes, then StopQuery), a numeric `field` of its one result row as the period's value.

A complete period's value is kept (bounded), so each period is queried once however often the guard looks back.
A query that fails, does not complete in time, returns several rows, or a row without the field (or with a value
that is not a number) is an error Series for that request; no rows at all is 0 (`no_rows: zero`, a count that
found nothing) or no data.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from lastgood.aws.clients import AwsClients
from lastgood.aws.errors import map_aws_errors
from lastgood.config.durations import Condition, Duration
from lastgood.config.models import Strict, positive_period
from lastgood.errors import AwsError
from lastgood.sources.base import Series, SeriesRequest

MAX_RUNNING = 10  # queries in flight at once per fetch (the account's quota is shared with people's queries)
MAX_KEPT = 20_000  # periods' values kept


class InsightsQuery(Strict):
    """A Logs Insights query whose result is one row with a numeric field, e.g.
    `filter @message like /ERROR/ | stats count(*) as errors` with `field: errors`."""

    log_groups: list[str] = Field(min_length=1, max_length=50, description="The log groups the query reads.")
    query: str = Field(min_length=1, max_length=10_000, description="The Logs Insights query (one result row).")
    field: str = Field(min_length=1, max_length=256, description="The result's numeric field compared with `when`.")
    timeout: Duration = Field(default=60.0, gt=0, description="How long to wait for one query to complete.")
    no_rows: Literal["zero", "no-data"] = Field(
        default="zero", description="A result without rows: 0 (a count that found nothing) or no data."
    )


@dataclass(frozen=True)
class _Job:
    request: SeriesRequest
    start: datetime
    query_id: str | None = None


Outcome = float | str | None  # a value, an error message, or no data


class _Running:
    """GetQueryResults said the query is still scheduled or running."""


RUNNING = _Running()


class LogsInsightsSource:
    """`logs_insights:` a Logs Insights query per period."""

    name = "logs_insights"
    settings: ClassVar[Any] = InsightsQuery
    per_settings: ClassVar[Any] = None
    per_shape: ClassVar[str] = ""
    iam_actions: ClassVar[tuple[str, ...]] = ("logs:StartQuery", "logs:GetQueryResults", "logs:StopQuery")

    def __init__(
        self,
        aws: AwsClients,
        poll: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.aws, self.poll, self.sleep, self.monotonic = aws, poll, sleep, monotonic
        self._kept: dict[tuple[str, float, datetime], float | None] = {}

    @classmethod
    def build(cls, aws: AwsClients, queries: list[BaseModel]) -> LogsInsightsSource:
        return cls(aws)

    @classmethod
    def check_period(cls, period: float) -> None:
        positive_period(period)
        if period % 1:
            raise ValueError("Logs Insights periods are whole seconds")

    @classmethod
    def check_trigger(cls, query: Any, per: Any, when: Condition, period: float) -> None:
        if when.kind == "baseline":
            raise ValueError("a Logs Insights trigger runs one query per period: it takes no baseline")

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        jobs = [
            _Job(r, at) for r in requests for at in _periods(r.period, start, end) if self._key(r, at) not in self._kept
        ]
        outcomes: dict[tuple[str, datetime], Outcome] = {}
        for index in range(0, len(jobs), MAX_RUNNING):
            outcomes.update(self._run(jobs[index : index + MAX_RUNNING]))
        return {r.id: self._series(r, start, end, outcomes) for r in requests}

    def _series(
        self, request: SeriesRequest, start: datetime, end: datetime, outcomes: dict[tuple[str, datetime], Outcome]
    ) -> Series:
        series = Series(request.id)
        for at in _periods(request.period, start, end):
            key = self._key(request, at)
            value = self._kept[key] if key in self._kept else outcomes.get((request.id, at))
            if isinstance(value, str):
                return Series(request.id, status="error", error=value)
            if value is not None:
                series.points[at] = value
        if not series.points:
            series.status = "no-data"
        return series

    def _key(self, request: SeriesRequest, at: datetime) -> tuple[str, float, datetime]:
        return request.query.model_dump_json(), request.period, at

    def _run(self, jobs: list[_Job]) -> dict[tuple[str, datetime], Outcome]:
        out: dict[tuple[str, datetime], Outcome] = {}
        running: list[_Job] = []
        for job in jobs:
            started = self._start(job)
            if isinstance(started, str):
                out[(job.request.id, job.start)] = started
            else:
                running.append(started)
        deadline = {id(job): self.monotonic() + _settings(job).timeout for job in running}
        while running:
            waiting: list[_Job] = []
            for job in running:
                result = self._result(job, self.monotonic() >= deadline[id(job)])
                if isinstance(result, _Running):
                    waiting.append(job)
                    continue
                out[(job.request.id, job.start)] = result
                if not isinstance(result, str):
                    self._keep(self._key(job.request, job.start), result)
            running = waiting
            if running:
                self.sleep(self.poll)
        return out

    def _start(self, job: _Job) -> _Job | str:
        query = _settings(job)
        begin = int(job.start.timestamp())
        try:
            with map_aws_errors("logs:StartQuery"):
                answer = self.aws.client("logs").start_query(
                    logGroupNames=query.log_groups,
                    startTime=begin,
                    endTime=begin + int(job.request.period),
                    queryString=query.query,
                )
        except AwsError as error:
            return f"Logs Insights could not start the query: {error}"
        return _Job(job.request, job.start, str(answer["queryId"]))

    def _result(self, job: _Job, late: bool) -> Outcome | _Running:
        client = self.aws.client("logs")
        try:
            with map_aws_errors("logs:GetQueryResults"):
                answer = client.get_query_results(queryId=job.query_id)
            status = answer.get("status")
            if status in ("Scheduled", "Running", "Unknown") and late:
                with map_aws_errors("logs:StopQuery"):
                    client.stop_query(queryId=job.query_id)
                return f"the Logs Insights query did not complete within {_settings(job).timeout:g}s; stopped it"
        except AwsError as error:
            return f"Logs Insights: {error}"
        if status in ("Scheduled", "Running", "Unknown"):
            return RUNNING
        if status != "Complete":
            return f"the Logs Insights query ended {status}"
        return _value(_settings(job), answer.get("results") or [])

    def _keep(self, key: tuple[str, float, datetime], value: float | None) -> None:
        if len(self._kept) >= MAX_KEPT:
            for old in sorted(self._kept, key=lambda k: k[2])[: MAX_KEPT // 10]:
                del self._kept[old]
        self._kept[key] = value


def _settings(job: _Job) -> InsightsQuery:
    query = job.request.query
    if not isinstance(query, InsightsQuery):
        raise TypeError(f"Logs Insights cannot run {type(query).__name__}")
    return query


def _periods(period: float, start: datetime, end: datetime) -> list[datetime]:
    first, last = start.timestamp(), end.timestamp()
    count = max(0, math.floor((last - first) / period))
    return [datetime.fromtimestamp(first + k * period, UTC) for k in range(count)]


def _value(query: InsightsQuery, rows: list[list[dict[str, str]]]) -> Outcome:
    if not rows:
        return 0.0 if query.no_rows == "zero" else None
    if len(rows) > 1:
        return f"the query returned {len(rows)} rows; aggregate it to one (e.g. stats count(*) as {query.field})"
    fields = {cell.get("field"): cell.get("value") for cell in rows[0]}
    if query.field not in fields:
        named = ", ".join(str(f) for f in fields if f != "@ptr") or "none"
        return f"the query's result has no field {query.field!r} (its fields: {named})"
    try:
        number = float(str(fields[query.field]))
    except ValueError:
        return f"the query's {query.field!r} is not a number: {fields[query.field]!r}"
    return None if math.isnan(number) else number
