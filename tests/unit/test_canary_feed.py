"""The canary block of the file, and the feed that turns per-version series into the judge's intervals."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from lastgood.config.loader import parse_runbook
from lastgood.config.models import Canary, MetricQuery
from lastgood.errors import ConfigError
from lastgood.guard.canary import CanaryFeed, CanaryReading, CanaryWatch
from lastgood.judge.canary import CanaryInterval
from lastgood.sources.base import Series, SeriesRequest
from lastgood.sources.prometheus import PrometheusQuery

BASE = """\
app: shop
environments: {prod: {}}
components: [{name: api, kind: lambda-alias, function: shop-api-{env}}]
"""

CLOUDWATCH = """\
canary:
  alpha: 0.01
  tolerated_ratio: 1.5
  period: 1m
  warmup: 2m
  cloudwatch:
    requests: {namespace: AWS/Lambda, metric: Invocations, dimensions: {FunctionName: {function}, Resource: "{function}:{alias}", ExecutedVersion: {version}}}
    errors: {namespace: AWS/Lambda, metric: Errors, dimensions: {FunctionName: shop-api-{env}, ExecutedVersion: {version}}}
"""  # noqa: E501

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_runbook(BASE + text)
    return caught.value.problems


def test_the_canary_block_loads_and_keeps_version_placeholders_for_judging_time() -> None:
    runbook = parse_runbook(BASE + CLOUDWATCH)
    canary = runbook.canary_for("prod")
    assert canary is not None and canary.cloudwatch is not None
    # {env} is replaced per environment; {version}, {function} and {alias} wait for the deployment.
    assert canary.cloudwatch.errors.dimensions == {"FunctionName": "shop-api-prod", "ExecutedVersion": "{version}"}
    assert canary.cloudwatch.requests.dimensions["Resource"] == "{function}:{alias}"
    assert (canary.alpha, canary.tolerated_ratio, canary.period, canary.warmup_intervals) == (0.01, 1.5, 60.0, 2)
    assert canary.latency_thresholds == ()  # no latency metric: errors only
    assert parse_runbook(BASE).canary is None


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("canary: {period: 1m}", "canary: name exactly one source: cloudwatch or prometheus (found: none)"),
        (
            "canary: {cloudwatch: {requests: {namespace: A, metric: I, dimensions: {V: '{version}'}}, "
            "errors: {namespace: A, metric: E, stat: Average, dimensions: {V: '{version}'}}}}",
            "canary.cloudwatch.errors: counts use the Sum statistic, not 'Average'; remove 'stat'",
        ),
        (
            "canary: {cloudwatch: {requests: {namespace: A, metric: I, dimensions: {FunctionName: f}}, "
            "errors: {namespace: A, metric: E, dimensions: {V: '{version}'}}}}",
            "canary.cloudwatch.requests: its dimensions need a {version} placeholder",
        ),
        (
            "canary: {period: 7s, cloudwatch: {requests: {namespace: A, metric: I, dimensions: {V: '{version}'}}, "
            "errors: {namespace: A, metric: E, dimensions: {V: '{version}'}}}}",
            "canary.period: CloudWatch periods are 1s, 5s, 10s, 30s or a multiple of 60s",
        ),
        (
            "canary: {period: 10s, warmup: 15s, prometheus: {url: 'http://p:9090', requests: 'sum(r{v=\"{version}\"})',"
            " errors: 'sum(e{v=\"{version}\"})'}}",
            "canary.warmup: 15s is not a whole number of periods (10s)",
        ),
        (
            "canary: {latency: [p99], prometheus: {url: 'http://p:9090', requests: 'sum(r{v=\"{version}\"})',"
            " errors: 'sum(e{v=\"{version}\"})'}}",
            "canary.latency: judging latency needs the per-version query prometheus.latency_buckets",
        ),
        (
            "canary: {alpha: 1.5, prometheus: {url: 'http://p:9090', requests: 'sum(r{v=\"{version}\"})',"
            " errors: 'sum(e)'}}",
            "canary.alpha: input should be less than 1",
        ),
        (
            "canary: {latency: [p75], prometheus: {url: 'http://p:9090', requests: 'sum(r{v=\"{version}\"})',"
            " errors: 'sum(e{v=\"{version}\"})', latency_buckets: 'sum by (le) (b{v=\"{version}\"})'}}",
            "canary.latency[0]: input should be 'p50', 'p90' or 'p99'",
        ),
    ],
)
def test_a_broken_canary_block_is_reported_with_its_path(block: str, expected: str) -> None:
    found = problems(block + "\n")
    assert any(p.startswith(expected) for p in found), found


def test_several_problems_of_the_block_are_reported_at_once() -> None:
    found = problems(
        "canary: {alpha: 1.5, prometheus: {url: 'http://p:9090', requests: 'sum(r)',"
        " errors: 'sum(e{v=\"{version}\"})'}}\n"
    )
    assert any(p.startswith("canary.alpha:") for p in found), found
    assert any(p.startswith("canary.prometheus.requests: the query needs a {version}") for p in found), found


# ---- the feed ---------------------------------------------------------------------------------------------------


class FakeSource:
    """Points by (metric name or query, version) and period start; records every fetch."""

    name = "fake"

    def __init__(self, points: dict[tuple[str, str], dict[datetime, float]], errors: set[str] | None = None) -> None:
        self.points = points
        self.errors = errors or set()
        self.fetches: list[tuple[list[SeriesRequest], datetime, datetime]] = []

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        self.fetches.append((requests, start, end))
        out = {}
        for request in requests:
            query = request.query
            assert isinstance(query, MetricQuery)
            key = (query.metric, query.dimensions["ExecutedVersion"])
            if query.metric in self.errors:
                out[request.id] = Series(request.id, status="error", error="AccessDenied: no")
                continue
            points = {t: v for t, v in self.points.get(key, {}).items() if start <= t < end}
            out[request.id] = Series(request.id, points, "ok" if points else "no-data")
        return out


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def canary_1s(extra: str = "") -> Canary:
    text = CLOUDWATCH.replace("period: 1m", "period: 1s").replace("warmup: 2m", "warmup: 2s")
    runbook = parse_runbook(BASE + text.replace("canary:\n", "canary:\n" + extra))
    canary = runbook.canary_for("prod")
    assert canary is not None
    return canary


def series(values: list[float | None]) -> dict[datetime, float]:
    return {at(i): v for i, v in enumerate(values) if v is not None}


def test_the_feed_turns_each_complete_period_into_one_interval_once() -> None:
    source = FakeSource(
        {
            ("Invocations", "8"): series([40, 44, 38]),
            ("Invocations", "7"): series([360, 356, 362]),
            ("Errors", "8"): series([2, 0, 3]),
            ("Errors", "7"): series([1, 2, 0]),
        }
    )
    feed = CanaryFeed(canary_1s(), "8", "7", source, at(0), placeholders={"function": "shop-api-prod", "alias": "live"})
    assert feed.poll(at(0) + timedelta(milliseconds=500)) == []  # the first period is not complete yet
    assert source.fetches == []
    first = feed.poll(at(2) + timedelta(milliseconds=100))  # periods 0 and 1 are complete
    assert [r.start for r in first] == [at(0), at(1)]
    interval = first[0].interval
    assert interval is not None
    assert (interval.canary_requests, interval.baseline_requests) == (40, 360)
    assert (interval.canary_errors, interval.baseline_errors) == (2, 1)
    assert interval.share == pytest.approx(0.1)
    assert first[1].interval is not None and first[1].interval.canary_errors == 0
    # The queries name each version, with the component's function and alias in place.
    requests, start, end = source.fetches[0]
    dims = {r.id: r.query.dimensions for r in requests if isinstance(r.query, MetricQuery)}
    assert dims["requests|canary"] == {
        "FunctionName": "shop-api-prod",
        "Resource": "shop-api-prod:live",
        "ExecutedVersion": "8",
    }
    assert dims["errors|baseline"]["ExecutedVersion"] == "7"
    assert (start, end) == (at(-1), at(2))
    # The same periods are never fed again; the next one comes when it is complete.
    assert feed.poll(at(2) + timedelta(milliseconds=900)) == []
    third = feed.poll(at(3))
    assert [r.start for r in third] == [at(2)] and third[0].interval is not None


def test_a_period_with_missing_counts_is_waited_for_then_reported_missing_never_judged() -> None:
    source = FakeSource(
        {
            ("Invocations", "8"): series([40, 41, 39, 40, 40]),
            ("Invocations", "7"): series([360, 359, 361, 360, 360]),
            ("Errors", "8"): series([1, None, 1, 1, 1]),  # period 1: the canary's errors never arrive
            ("Errors", "7"): series([1, 1, 1, 1, 1]),
        }
    )
    feed = CanaryFeed(canary_1s("  missing: {errors: skip}\n"), "8", "7", source, at(0), settle=2)
    early = feed.poll(at(2))
    assert [r.start for r in early] == [at(0)]  # period 1 may still arrive: held, and period 2 after it
    late = feed.poll(at(4))
    assert [r.start for r in late] == [at(1), at(2), at(3)]
    missing = late[0]
    assert missing.interval is None
    assert missing.missing == ("canary errors: no data",)
    assert missing.to_dict()["complete"] is False and missing.to_dict()["canary_errors"] is None
    assert all(r.interval is not None for r in late[1:])


def test_a_failed_fetch_is_missing_data_with_the_error_not_a_healthy_period() -> None:
    source = FakeSource({("Invocations", "8"): series([40]), ("Invocations", "7"): series([360])}, errors={"Errors"})
    feed = CanaryFeed(canary_1s(), "8", "7", source, at(0), settle=0)
    (reading,) = feed.poll(at(1))
    assert reading.interval is None
    assert reading.missing == ("canary errors: AccessDenied: no", "baseline errors: AccessDenied: no")


def test_periods_start_at_the_first_boundary_after_the_shift() -> None:
    source = FakeSource({})
    feed = CanaryFeed(canary_1s(), "8", "7", source, at(0) + timedelta(milliseconds=300))
    assert feed.next_start == at(1)  # the period in which the shift happened is not judged
    assert feed.poll(at(1) + timedelta(milliseconds=999)) == []


class FakeHistograms:
    """A Prometheus-like source: counts by version, and histogram buckets by version and `le`."""

    name = "prometheus"

    def __init__(self, counts: dict[str, dict[datetime, float]], hists: dict[str, dict[datetime, dict[float, float]]]):
        self.counts, self.hists = counts, hists

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        out = {}
        for request in requests:
            assert isinstance(request.query, PrometheusQuery)
            points = self.counts[request.query.query]
            out[request.id] = Series(request.id, {t: v for t, v in points.items() if start <= t < end})
        return out

    def fetch_by_label(
        self, request: SeriesRequest, label: str, start: datetime, end: datetime
    ) -> dict[str, Series] | Series:
        assert label == "le" and isinstance(request.query, PrometheusQuery)
        by_le: dict[str, Series] = {}
        for t, hist in self.hists[request.query.query].items():
            for le, count in hist.items():
                by_le.setdefault(str(le), Series(f"{request.id}|{le}")).points[t] = count
        return by_le


def test_prometheus_latency_thresholds_come_from_the_baselines_previous_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lastgood.guard.canary as feed_module

    text = BASE + (
        "canary: {period: 10s, warmup: 0s, latency: [p50, p90], prometheus: {url: 'http://p:9090', "
        "requests: 'r{version}', errors: 'e{version}', latency_buckets: 'b{version}'}}\n"
    )
    canary = parse_runbook(text).canary_for("prod")
    assert canary is not None
    t0, t1 = at(0), at(10)
    # Bucket increments (cumulative within a period): the baseline's previous period puts p50 at 0.1 s and
    # p90 at 0.5 s; in the judged period the canary is slow.
    hists = {
        "b7": {
            at(-10): {0.1: 60.0, 0.5: 92.0, 1.0: 99.0, math.inf: 100.0},
            t0: {0.1: 50.0, 0.5: 90.0, 1.0: 99.0, math.inf: 100.0},
            t1: {0.1: 50.0, 0.5: 90.0, 1.0: 99.0, math.inf: 100.0},
        },
        "b8": {t0: {0.1: 2.0, 0.5: 6.0, 1.0: 9.0, math.inf: 10.0}, t1: {0.1: 5.0, 0.5: 9.0, 1.0: 10.0, math.inf: 10.0}},
    }
    counts = {"r8": {t0: 10.0, t1: 10.0}, "r7": {t0: 100.0, t1: 100.0}, "e8": {t0: 0.0, t1: 0.0}}
    counts["e7"] = {t0: 1.0, t1: 1.0}
    source = FakeHistograms(counts, hists)
    monkeypatch.setattr(feed_module, "PrometheusSource", FakeHistograms)
    feed = CanaryFeed(canary, "8", "7", source, t0)  # type: ignore[arg-type]
    first, second = feed.poll(at(20))
    assert first.interval is not None and second.interval is not None
    assert dict(first.thresholds) == {"p50": 0.1, "p90": 0.5}
    assert dict(first.interval.canary_slow) == {"p50": 8.0, "p90": 4.0}
    assert dict(first.interval.baseline_slow) == {"p50": 50.0, "p90": 10.0}
    # The second period's thresholds come from the baseline's first period (p90 at 0.5 s: 90 of 100).
    assert dict(second.thresholds) == {"p50": 0.1, "p90": 0.5}
    assert dict(second.interval.canary_slow) == {"p50": 5.0, "p90": 1.0}


class ScriptedFeed:
    """Hands the watch one prepared reading per poll."""

    def __init__(self, readings: list[CanaryReading]) -> None:
        self.readings = readings
        self.versions = {"canary": "2", "baseline": "1"}

    def poll(self, now: datetime) -> list[CanaryReading]:
        return [self.readings.pop(0)] if self.readings else []


def reading(minute: int, canary: float, baseline: float, errors: tuple[float, float] = (1.0, 9.0)) -> CanaryReading:
    start = T0 + timedelta(minutes=minute)
    return CanaryReading(start, CanaryInterval(canary, baseline, *errors))


def test_the_watch_excuses_a_trigger_only_while_both_versions_serve() -> None:
    canary = parse_runbook(BASE + CLOUDWATCH).canary_for("prod")
    assert canary is not None
    script = [reading(m, 100.0, 900.0) for m in range(4)] + [reading(4, 1000.0, 0.0, (300.0, 0.0))]
    watch = CanaryWatch(canary, ScriptedFeed(script), "api at 10%")  # type: ignore[arg-type]
    states = []
    for _ in range(5):
        watch.update(T0, absolute_firing=True)
        states.append(watch.state)
    # warm-up (2 periods) and one more, then "no worse": an alert; after the promotion (all traffic on the
    # canary) the judge cannot compare, so a firing trigger is no longer excused.
    assert states == ["warming-up", "warming-up", "not-the-cause", "not-the-cause", "no-comparison"]
    assert watch.judged == 5 and not watch.comparing
