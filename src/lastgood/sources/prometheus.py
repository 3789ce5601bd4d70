"""Prometheus: the HTTP API's /api/v1/query_range with step = period.

Prometheus evaluates the query at instants start + k*step; the value at instant t describes the period that ends
at t (e.g. `increase(x[1m])` with a 1m period), so it is keyed by the period's start, t - step, like CloudWatch's.
A failure, a bad query or a result of more than one series is an error Series; an empty result is no-data.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from lastgood.aws.clients import AwsClients
from lastgood.config.durations import Condition
from lastgood.config.models import Strict, positive_period
from lastgood.sources.base import Series, SeriesRequest

MAX_PARALLEL = 8


class PrometheusQuery(Strict):
    url: str | None = Field(
        default=None, description="The Prometheus server, e.g. http://prometheus:9090 (under `per`: the trigger's)."
    )
    query: str = Field(description="PromQL; one series per step (aggregate with sum(...) etc.).")


class PrometheusSource:
    """`prometheus:` a PromQL query over query_range."""

    name = "prometheus"
    settings: ClassVar[Any] = PrometheusQuery
    per_settings: ClassVar[Any] = PrometheusQuery
    per_shape: ClassVar[str] = "{query: ...}"

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    @classmethod
    def build(cls, aws: AwsClients, queries: list[BaseModel]) -> PrometheusSource:
        return cls()

    @classmethod
    def check_period(cls, period: float) -> None:
        positive_period(period)

    @classmethod
    def check_trigger(cls, query: Any, per: Any, when: Condition, period: float) -> None:
        if not query.url:
            raise ValueError("prometheus needs 'url'")

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        if not requests:
            return {}
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(requests))) as pool:
            results = list(pool.map(lambda r: self._fetch_one(r, start, end), requests))
        return {series.id: series for series in results}

    def _fetch_one(self, request: SeriesRequest, start: datetime, end: datetime) -> Series:
        body = self._query_range(request, start, end)
        return body if isinstance(body, Series) else _series(request, body)

    def fetch_by_label(
        self, request: SeriesRequest, label: str, start: datetime, end: datetime
    ) -> dict[str, Series] | Series:
        """A query that returns one series per value of `label` (e.g. histogram buckets `sum by (le)`): the
        series by that value, or one error / no-data Series."""
        body = self._query_range(request, start, end)
        if isinstance(body, Series):
            return body
        result = _matrix(request, body)
        if isinstance(result, Series):
            return result
        out: dict[str, Series] = {}
        for item in result:
            value = (item.get("metric") or {}).get(label)
            if value is None:
                return Series(
                    request.id, status="error", error=f"a series has no label {label!r}; use sum by ({label})"
                )
            series = _points(Series(f"{request.id}|{value}"), request, item)
            if series.status == "error":
                return Series(request.id, status="error", error=series.error)
            out[str(value)] = series
        return out

    def _query_range(self, request: SeriesRequest, start: datetime, end: datetime) -> dict[str, Any] | Series:
        query = request.query
        if not isinstance(query, PrometheusQuery) or not query.url:
            return Series(request.id, status="error", error=f"not a Prometheus query: {query!r}")
        first = start.timestamp() + request.period
        if first > end.timestamp():
            return Series(request.id, status="no-data")
        params = {"query": query.query, "start": f"{first:.3f}", "end": f"{end.timestamp():.3f}"}
        params["step"] = f"{request.period:g}"
        url = query.url.rstrip("/") + "/api/v1/query_range?" + urllib.parse.urlencode(params)
        try:
            return self._get(url)
        except PrometheusError as error:
            return Series(request.id, status="error", error=f"prometheus {query.url}: {error}")

    def _get(self, url: str) -> dict[str, Any]:
        import urllib.request  # here: it costs `lastgood validate` 70 ms

        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:
                return _json(response.read())
        except urllib.error.HTTPError as error:  # 400 bad_data, 422 execution, 503 unavailable: JSON with "error"
            try:
                body = _json(error.read())
            except PrometheusError:
                raise PrometheusError(f"HTTP {error.code}") from None
            raise PrometheusError(f"HTTP {error.code} {body.get('errorType', '')}: {body.get('error', '')}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            raise PrometheusError(str(getattr(error, "reason", error))) from None


class PrometheusError(Exception):
    pass


def _json(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except ValueError:
        raise PrometheusError("the answer is not JSON") from None
    if not isinstance(body, dict):
        raise PrometheusError("the answer is not a JSON object")
    return body


def _matrix(request: SeriesRequest, body: dict[str, Any]) -> list[dict[str, Any]] | Series:
    """The result's series, or an error / no-data Series."""
    if body.get("status") != "success":
        return Series(request.id, status="error", error=f"{body.get('errorType', 'error')}: {body.get('error', '')}")
    data = body.get("data") or {}
    if data.get("resultType") != "matrix":
        return Series(request.id, status="error", error=f"unexpected result type {data.get('resultType')!r}")
    result: list[dict[str, Any]] = data.get("result") or []
    if not result:
        return Series(request.id, status="no-data")
    return result


def _series(request: SeriesRequest, body: dict[str, Any]) -> Series:
    result = _matrix(request, body)
    if isinstance(result, Series):
        return result
    if len(result) > 1:
        labels = ", ".join(json.dumps(r.get("metric", {}), sort_keys=True) for r in result[:3])
        return Series(
            request.id,
            status="error",
            error=f"the query returned {len(result)} series ({labels}...); aggregate it, e.g. sum(...)",
        )
    return _points(Series(request.id), request, result[0])


def _points(series: Series, request: SeriesRequest, item: dict[str, Any]) -> Series:
    for stamp, value in item.get("values") or []:
        try:
            number = float(value)
        except (TypeError, ValueError):
            return Series(series.id, status="error", error=f"not a number: {value!r}")
        if math.isnan(number):  # e.g. 0/0 where there was no traffic: no data for that period
            continue
        series.points[datetime.fromtimestamp(round(float(stamp) - request.period, 3), UTC)] = number
    if not series.points:
        series.status = "no-data"
    return series
