"""CloudWatch: GetMetricData, up to 500 series per call, paginated; metric math as Expression queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel

from lastgood.aws.clients import AwsClients
from lastgood.aws.errors import map_aws_errors
from lastgood.config.durations import Condition
from lastgood.config.models import MetricQuery, cloudwatch_period
from lastgood.errors import AwsError
from lastgood.sources.base import Series, SeriesRequest
from lastgood.sources.metric_math import MetricMath, rename

__all__ = ["CloudWatchSource", "MetricMath"]

MAX_QUERIES_PER_CALL = 500


class CloudWatchSource:
    """`cloudwatch:` a CloudWatch metric, or metric math: {expression, metrics: {m1: ..., m2: ...}}."""

    name = "cloudwatch"
    settings: ClassVar[Any] = MetricQuery | MetricMath
    per_settings: ClassVar[Any] = MetricQuery
    per_shape: ClassVar[str] = "a CloudWatch metric"

    def __init__(self, aws: AwsClients) -> None:
        self.aws = aws

    @classmethod
    def build(cls, aws: AwsClients, queries: list[BaseModel]) -> CloudWatchSource:
        return cls(aws)

    @classmethod
    def check_period(cls, period: float) -> None:
        cloudwatch_period(period)

    @classmethod
    def check_trigger(cls, query: Any, per: Any, when: Condition, period: float) -> None:
        if when.window is None:
            return
        metrics = query.metrics.values() if isinstance(query, MetricMath) else [query]
        if any(metric.stat != "Sum" for metric in metrics):
            raise ValueError(f"'when: {when}' counts with the Sum statistic; remove 'stat'")

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        out: dict[str, Series] = {}
        for batch in _batches(requests):
            try:
                out.update(self._fetch_batch(batch, start, end))
            except AwsError as error:
                out.update({r.id: Series(r.id, status="error", error=str(error)) for r in batch})
        return out

    def _fetch_batch(self, batch: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        # Query ids must match ^[a-z][a-zA-Z0-9_]*$, so ours are positional and mapped back.
        ids = {f"q{i}": request.id for i, request in enumerate(batch)}
        queries = [q for i, request in enumerate(batch) for q in _queries(f"q{i}", request)]
        series = {request.id: Series(request.id) for request in batch}
        kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
        client = self.aws.client("cloudwatch")
        while True:
            with map_aws_errors("cloudwatch:GetMetricData"):
                page = client.get_metric_data(**kwargs)
            for result in page["MetricDataResults"]:
                if result["Id"] not in ids:
                    continue
                target = series[ids[result["Id"]]]
                if result.get("StatusCode") == "InternalError":
                    target.status = "error"
                    messages = "; ".join(m.get("Value", "") for m in result.get("Messages", []))
                    target.error = f"CloudWatch could not compute it: {messages or 'InternalError'}"
                for timestamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                    target.points[timestamp.astimezone(UTC)] = float(value)
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        for item in series.values():
            if not item.points and item.status == "ok":
                item.status = "no-data"
        return series


def _size(request: SeriesRequest) -> int:
    return 1 + len(request.query.metrics) if isinstance(request.query, MetricMath) else 1


def _batches(requests: list[SeriesRequest]) -> list[list[SeriesRequest]]:
    """Requests packed so that no call carries more than 500 queries (metric math counts its metrics too)."""
    batches: list[list[SeriesRequest]] = [[]]
    size = 0
    for request in requests:
        if batches[-1] and size + _size(request) > MAX_QUERIES_PER_CALL:
            batches.append([])
            size = 0
        batches[-1].append(request)
        size += _size(request)
    return [batch for batch in batches if batch]


def _queries(query_id: str, request: SeriesRequest) -> list[dict[str, Any]]:
    """One MetricStat query, or the Expression plus its metrics (ReturnData false), ids prefixed per request."""
    query = request.query
    if isinstance(query, MetricQuery):
        return [_metric_stat(query_id, query, request.period, True)]
    if not isinstance(query, MetricMath):
        raise TypeError(f"CloudWatch cannot fetch {type(query).__name__}")
    # Ids must be unique across the whole call: m1 of each trigger becomes q<i>_m1, in the expression too.
    names = {key: f"{query_id}_{key}" for key in query.metrics}
    expression = rename(query.expression, names)
    out = [{"Id": query_id, "Expression": expression, "ReturnData": True}]
    return out + [_metric_stat(names[key], metric, request.period, False) for key, metric in query.metrics.items()]


def _metric_stat(query_id: str, metric: MetricQuery, period: float, return_data: bool) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": metric.namespace,
                "MetricName": metric.metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(metric.dimensions.items())],
            },
            "Period": int(period),
            "Stat": metric.stat,
        },
        "ReturnData": return_data,
    }
