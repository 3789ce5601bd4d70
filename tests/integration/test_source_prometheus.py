"""The Prometheus source against a real Prometheus server (Debian's package) that scrapes an exporter we serve."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from lastgood.config.models import Trigger
from lastgood.guard.loop import window_end
from lastgood.judge.threshold import ThresholdJudge
from lastgood.sources.base import SeriesRequest
from lastgood.sources.prometheus import PrometheusQuery, PrometheusSource
from prometheus_fixture import free_port, running_prometheus, serving_exposition

ERRORS = 'sum(increase(app_requests_total{code="500"}[3s]))'
TOTAL = "sum(increase(app_requests_total[3s]))"


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


class Exposition:
    """Each scrape: 9 more 200s, 1 more 500 (10% errors); latencies 0.05s (8 of 10) and 0.3s (2 of 10)."""

    def __init__(self) -> None:
        self.scrapes = 0
        self.lock = threading.Lock()

    def __call__(self) -> bytes:
        with self.lock:
            self.scrapes += 1
            n = self.scrapes
        return (
            "# TYPE app_requests_total counter\n"
            f'app_requests_total{{code="200"}} {9 * n}\n'
            f'app_requests_total{{code="500"}} {n}\n'
            "# TYPE app_latency_seconds histogram\n"
            f'app_latency_seconds_bucket{{le="0.1"}} {8 * n}\n'
            f'app_latency_seconds_bucket{{le="0.5"}} {10 * n}\n'
            f'app_latency_seconds_bucket{{le="+Inf"}} {10 * n}\n'
            f"app_latency_seconds_sum {n * (8 * 0.05 + 2 * 0.3):.2f}\n"
            f"app_latency_seconds_count {10 * n}\n"
        ).encode()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Ready: the target is up, with enough scrapes for 3s windows over 5s ending 2s ago.
    ready = 'count_over_time(app_requests_total{code="500"}[1m])'
    with (
        serving_exposition(Exposition()) as target,
        running_prometheus(tmp_path_factory.mktemp("prometheus"), target, ready, 10) as url,
    ):
        yield url


def last_seconds(seconds: int) -> tuple[datetime, datetime]:
    end = window_end(datetime.now(UTC), 1) - timedelta(seconds=2)  # the last scrapes may not be stored yet
    return end - timedelta(seconds=seconds), end


def fetch(url: str, queries: dict[str, str], seconds: int = 5) -> dict:  # type: ignore[type-arg]
    start, end = last_seconds(seconds)
    requests = [SeriesRequest(key, PrometheusQuery(url=url, query=q), 1.0) for key, q in queries.items()]
    return {"start": start, "end": end, "series": PrometheusSource().fetch(requests, start, end)}


def test_query_range_gives_one_point_per_period_keyed_by_its_start(prometheus: str) -> None:
    got = fetch(prometheus, {"errors": ERRORS, "rate": f"{ERRORS} / {TOTAL} * 100"})
    errors, rate = got["series"]["errors"], got["series"]["rate"]
    assert errors.status == "ok" and rate.status == "ok", (errors, rate)
    expected_keys = {got["start"] + timedelta(seconds=i) for i in range(5)}
    assert set(rate.points) == expected_keys
    assert all(v == pytest.approx(10.0) for v in rate.points.values())  # 1 in 10 scraped requests failed
    assert all(v > 0 for v in errors.points.values())


def test_histogram_quantile(prometheus: str) -> None:
    query = "histogram_quantile(0.9, sum by (le) (increase(app_latency_seconds_bucket[3s])))"
    series = fetch(prometheus, {"p90": query})["series"]["p90"]
    assert series.status == "ok"
    assert all(0.1 < v <= 0.5 for v in series.points.values())  # the 90th percentile is in the 0.1..0.5 bucket


def test_a_trigger_with_per_fires_through_the_judge(prometheus: str) -> None:
    def verdict(when: str) -> str:
        trigger = Trigger.model_validate(
            {
                "name": "api",
                "prometheus": {"url": prometheus, "query": ERRORS},
                "per": {"query": TOTAL},
                "when": when,
                "period": "1s",
                "for": "3s",
                "action": "rollback",
            }
        )
        judge = ThresholdJudge()
        start, end = last_seconds(3)
        series = PrometheusSource().fetch(judge.requests(trigger), start, end)
        return judge.judge(trigger, series, end).state

    assert verdict("> 5%") == "firing"
    assert verdict("> 20%") == "ok"


def test_empty_result_is_no_data(prometheus: str) -> None:
    assert fetch(prometheus, {"x": "sum(app_nothing_total)"})["series"]["x"].status == "no-data"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("app_requests_total", "aggregate it"),  # two series: ambiguous, never silently one of them
        ("sum(", "bad_data"),
    ],
)
def test_bad_queries_are_error_series(prometheus: str, query: str, message: str) -> None:
    series = fetch(prometheus, {"x": query})["series"]["x"]
    assert series.status == "error" and message in (series.error or "")


def test_unreachable_server_is_an_error_not_an_exception() -> None:
    start, end = last_seconds(5)
    request = SeriesRequest("x", PrometheusQuery(url=f"http://127.0.0.1:{free_port()}", query="up"), 1.0)
    series = PrometheusSource(timeout=2).fetch([request], start, end)["x"]
    assert series.status == "error" and series.error
