"""CloudWatch: GetMetricData, up to 500 series per call, paginated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lastgood.aws.clients import AwsClients
from lastgood.aws.errors import map_aws_errors
from lastgood.errors import AwsError
from lastgood.sources.base import Series, SeriesRequest

MAX_QUERIES_PER_CALL = 500


class CloudWatchSource:
    name = "cloudwatch"

    def __init__(self, aws: AwsClients) -> None:
        self.aws = aws

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        out: dict[str, Series] = {}
        for offset in range(0, len(requests), MAX_QUERIES_PER_CALL):
            batch = requests[offset : offset + MAX_QUERIES_PER_CALL]
            try:
                out.update(self._fetch_batch(batch, start, end))
            except AwsError as error:
                out.update({r.id: Series(r.id, status="error", error=str(error)) for r in batch})
        return out

    def _fetch_batch(self, batch: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        # Query ids must match ^[a-z][a-zA-Z0-9_]*$, so ours are positional and mapped back.
        ids = {f"q{i}": request.id for i, request in enumerate(batch)}
        queries = [_query(f"q{i}", request) for i, request in enumerate(batch)]
        series = {request.id: Series(request.id) for request in batch}
        kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
        client = self.aws.client("cloudwatch")
        while True:
            with map_aws_errors("cloudwatch:GetMetricData"):
                page = client.get_metric_data(**kwargs)
            for result in page["MetricDataResults"]:
                target = series[ids[result["Id"]]]
                for timestamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                    target.points[timestamp.astimezone(UTC)] = float(value)
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        for item in series.values():
            if not item.points:
                item.status = "no-data"
        return series


def _query(query_id: str, request: SeriesRequest) -> dict[str, Any]:
    metric = request.query
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": metric.namespace,
                "MetricName": metric.metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in sorted(metric.dimensions.items())],
            },
            "Period": int(request.period),
            "Stat": metric.stat,
        },
        "ReturnData": True,
    }
