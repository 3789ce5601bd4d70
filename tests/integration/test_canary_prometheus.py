"""The canary feed's Prometheus path and the canary judge against a real Prometheus server (Debian's package).

The test serves an exporter on localhost: per-version request counters (`code` 200/500) and a latency histogram,
advanced every 0.5 s by a thread drawing Poisson traffic (numpy). Prometheus scrapes it every second; a
`CanaryFeed` per canary version reads 5-second periods with `sum(increase(...[5s]))` as a runbook would, in real
time. Versions: 1 the baseline; 2 with 10x its errors; 3 the same as 1; 4 twice as slow. All of them serve twice
as many requests in every other period, so that a period read one period off would not pass for the right one.

What is compared, per period and version:
- exactly, with what Prometheus' `increase()` makes of the samples it stored (read back raw, with the stamps
  Prometheus gave them, after the run): the feed's period, versions, queries and bucket arithmetic are right;
- within Poisson noise, with what the exporter actually served in the period (see `served_tolerance`).
Then a `CanaryJudge` fed with the readings rolls back 2 and 4 and leaves 3 alone.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from statistics import NormalDist

import numpy as np
import pytest

from lastgood.config.models import Canary
from lastgood.guard.canary import QUANTILES, CanaryFeed, CanaryReading
from lastgood.judge.canary import CanaryJudge, CanaryVerdict
from lastgood.judge.sequential import histogram_threshold
from lastgood.sources.prometheus import PrometheusSource
from prometheus_fixture import SCRAPE_INTERVAL, get_json, running_prometheus, serving_exposition

pytestmark = pytest.mark.slow  # a real Prometheus server, waiting for its scrapes

PERIOD = 5  # seconds: a 1 s scrape interval leaves 4 s between the first and the last sample of a period
TICK = 0.5  # the exporter's traffic step
PERIODS = 5  # read per canary: 1 warm-up + 4 judged (after 3, twice as slow once stood at e-value 194 of 200)
BASELINE = "1"
BOUNDS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0)  # histogram buckets (seconds), then +Inf


@dataclass(frozen=True)
class Version:
    rate: float  # requests per second (in the quiet periods; twice that in the busy ones)
    error_rate: float
    median: float  # latency: log-normal, seconds
    sigma: float = 0.6


VERSIONS = {
    BASELINE: Version(300.0, 0.01, 0.09),
    "2": Version(100.0, 0.10, 0.09),  # 10x the errors
    "3": Version(100.0, 0.01, 0.09),  # the same as the baseline
    "4": Version(100.0, 0.01, 0.18),  # twice as slow
}
CANARIES = ("2", "3", "4")

# The baseline's buckets put p50 at 0.1 s (57% <= 0.1, 16% <= 0.05), p90 at 0.25 s (95.6%) and p99 at 0.5 s
# (99.8%): each cumulative share is several standard errors from its quantile, so the thresholds are stable.
EXPECTED_THRESHOLDS = {"p50": 0.1, "p90": 0.25, "p99": 0.5}


def canary_block(url: str) -> Canary:
    """The runbook's `canary:` block, as the README shows it for Prometheus, with 5-second periods."""
    return Canary.model_validate(
        {
            "alpha": 0.01,
            "tolerated_ratio": 1.5,  # as the shop's canary block: an equally good canary is (almost) never rolled back
            "period": f"{PERIOD}s",
            "warmup": f"{PERIOD}s",
            "latency": ["p50", "p90", "p99"],
            "prometheus": {
                "url": url,
                "requests": f'sum(increase(http_requests_total{{version="{{version}}"}}[{PERIOD}s]))',
                "errors": (
                    f'sum(increase(http_requests_total{{version="{{version}}",code="500"}}[{PERIOD}s])) or vector(0)'
                ),
                "latency_buckets": (
                    f'sum by (le) (increase(http_request_duration_seconds_bucket{{version="{{version}}"}}[{PERIOD}s]))'
                ),
            },
        }
    )


def requests_key(version: str, code: str) -> str:
    return f'http_requests_total{{version="{version}",code="{code}"}}'


def bucket_key(version: str, le: float) -> str:
    return f'http_request_duration_seconds_bucket{{version="{version}",le="{"+Inf" if math.isinf(le) else le}"}}'


@dataclass
class Traffic:
    """The exporter's counters, advanced every TICK; logs every tick (time, counters) and the last scrape's time."""

    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng())
    values: dict[str, float] = field(default_factory=dict)
    ticks: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    last_scrape: float | None = None  # when the exporter last answered: the ticks keep clear of the scrapes
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        for version in VERSIONS:
            for code in ("200", "500"):
                self.values[requests_key(version, code)] = 0.0
            for le in (*BOUNDS, math.inf):
                self.values[bucket_key(version, le)] = 0.0
            self.values[f'http_request_duration_seconds_sum{{version="{version}"}}'] = 0.0
            self.values[f'http_request_duration_seconds_count{{version="{version}"}}'] = 0.0
        self.ticks.append((time.time(), dict(self.values)))

    def advance(self) -> None:
        now = time.time()  # the tick's time: it decides both the traffic (busy or not) and the period it is in
        busy = 2.0 if int(now // PERIOD) % 2 else 1.0
        increments: dict[str, float] = {}
        for name, version in VERSIONS.items():
            n = int(self.rng.poisson(version.rate * busy * TICK))
            errors = int(self.rng.binomial(n, version.error_rate))
            latencies = self.rng.lognormal(math.log(version.median), version.sigma, n)
            increments[requests_key(name, "200")] = n - errors
            increments[requests_key(name, "500")] = errors
            for le in BOUNDS:
                increments[bucket_key(name, le)] = int(np.count_nonzero(latencies <= le))
            increments[bucket_key(name, math.inf)] = n
            increments[f'http_request_duration_seconds_sum{{version="{name}"}}'] = float(latencies.sum())
            increments[f'http_request_duration_seconds_count{{version="{name}"}}'] = n
        with self.lock:
            for key, value in increments.items():
                self.values[key] += value
            self.ticks.append((now, dict(self.values)))

    def run(self) -> None:
        """Ticks half-way between scrapes (a quarter of a second off each): a scrape never races a tick, so every
        scrape interval holds exactly two ticks, as a continuously counting server would hold one second."""
        last = 0.0
        while not self.stop.is_set():
            with self.lock:
                phase = 0.0 if self.last_scrape is None else self.last_scrape % SCRAPE_INTERVAL
            after = max(time.time(), last + TICK / 2)  # one tick per due time, even if a wait ends early
            offset = phase + TICK / 2
            due = offset + (math.floor((after - offset) / TICK) + 1) * TICK
            while (left := due - time.time()) > 0:
                if self.stop.wait(left):
                    return
            last = due
            self.advance()

    def exposition(self) -> bytes:
        with self.lock:
            values = dict(self.values)
            self.last_scrape = time.time()
        lines = ["# TYPE http_requests_total counter"]
        lines += [f"{key} {values[key]:.17g}" for key in values if key.startswith("http_requests_total")]
        lines.append("# TYPE http_request_duration_seconds histogram")
        lines += [f"{key} {values[key]:.17g}" for key in values if key.startswith("http_request_duration_seconds")]
        return ("\n".join(lines) + "\n").encode()

    # -- what the exporter served ----------------------------------------------------------------------------

    def served(self, key: str, start: float, end: float) -> float:
        """The counter's increase over the ticks in (start, end]."""
        times = [t for t, _ in self.ticks]

        def at(moment: float) -> float:
            return self.ticks[max(bisect.bisect_right(times, moment) - 1, 0)][1][key]

        return at(end) - at(start)


def stored_increases(samples: list[tuple[float, float]], start: float, end: float) -> set[float]:
    """`increase(...[PERIOD s])` evaluated at `end` from Prometheus' own stored samples of one series, as
    Prometheus 2.x computes it (promql `extrapolatedRate`): the samples in [start, end], the difference of the
    last and the first, extrapolated to the window's edges when they are within 1.1 average sample intervals
    (else by half an interval), never to before the counter was zero. Prometheus 3 leaves out a sample exactly
    on the window's start: both readings are offered."""
    out = set()
    for left_open in (False, True):
        inside = [(t, v) for t, v in samples if (start < t if left_open else start <= t) and t <= end]
        if len(inside) < 2:
            continue
        (first_t, first), (last_t, last) = inside[0], inside[-1]
        result, sampled = last - first, last_t - first_t
        average = sampled / (len(inside) - 1)
        to_start, to_end = first_t - start, end - last_t
        if result > 0 and first >= 0:
            to_start = min(to_start, sampled * first / result)
        interval = sampled
        interval += to_start if to_start < 1.1 * average else average / 2
        interval += to_end if to_end < 1.1 * average else average / 2
        out.add(result * interval / sampled)
    return out


def served_tolerance(served: float) -> float:
    """How far an `increase()` over one period may honestly be from the count the exporter served in it.

    With 1 s scrapes, a 5 s period holds 5 samples; `increase()` takes the difference of the first and the last,
    which covers 4 s (8 of the period's 10 ticks, D), and scales it by 5/4 to the whole period; the traffic of
    the 2 remaining ticks (R) is never seen, only extrapolated. The error is 1.25 D - (D + R) = D/4 - R: zero on
    average, with variance 8 lam/16 + 2 lam = 0.25 T for Poisson ticks of mean lam (T = 10 lam served). So its
    standard deviation is sqrt(T)/2 (1.3% of 1500 requests, 26% of 15 errors): allow 6 of them, plus 2 for
    the skew of small Poisson counts. It is the nature of `increase()`, not slack in the feed: the feed's
    values are also compared exactly with `stored_increases`.
    """
    return 3 * math.sqrt(served) + 2


@dataclass
class Run:
    """The readings of each canary's feed over PERIODS periods, read as the guard would: after each period."""

    traffic: Traffic
    canary: Canary
    readings: dict[str, list[CanaryReading]]
    stored: dict[str, list[tuple[float, float]]]  # each series' samples as Prometheus stamped and stored them

    def increases(self, key: str, start: float, end: float) -> set[float]:
        return stored_increases(self.stored[key], start, end)


def stored_samples(url: str, keys: list[str], seconds: int) -> dict[str, list[tuple[float, float]]]:
    """The raw samples of each series over the last `seconds`: the stamps are Prometheus' own (a scrape's
    start), which no clock in this process can give when the machine is loaded."""
    out = {}
    for key in keys:
        query = urllib.parse.urlencode({"query": f"{key}[{seconds}s]"})
        (series,) = get_json(f"{url}/api/v1/query?{query}")["data"]["result"]
        out[key] = [(float(t), float(v)) for t, v in series["values"]]
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    traffic = Traffic()
    ticking = threading.Thread(target=traffic.run)
    ticking.start()
    # Ready once the baseline's histogram has 7 samples: the period before the first judged one (its latency
    # thresholds) is then covered by scrapes.
    ready = f"count_over_time({bucket_key(BASELINE, math.inf)}[1m])"
    try:
        with (
            serving_exposition(traffic.exposition) as target,
            running_prometheus(tmp_path_factory.mktemp("prometheus"), target, ready, 7) as url,
        ):
            canary = canary_block(url)
            since = datetime.now(UTC)
            feeds = {v: CanaryFeed(canary, v, BASELINE, PrometheusSource(timeout=5), since) for v in CANARIES}
            readings: dict[str, list[CanaryReading]] = {v: [] for v in CANARIES}
            deadline = time.time() + (PERIODS + 4) * PERIOD
            while any(len(r) < PERIODS for r in readings.values()) and time.time() < deadline:
                # Read each period half a second after it ends: its last scrape is stored by then.
                now = time.time()
                time.sleep((math.floor(now / PERIOD) + 1) * PERIOD + 0.5 - now)
                for version, feed in feeds.items():
                    if len(readings[version]) < PERIODS:
                        readings[version] += feed.poll(datetime.now(UTC))
            stored = stored_samples(url, list(traffic.values), math.ceil(time.time() - since.timestamp()) + 60)
            yield Run(traffic, canary, readings, stored)
    finally:
        traffic.stop.set()
        ticking.join(timeout=5)


def intervals(run: Run, version: str) -> list[CanaryReading]:
    readings = run.readings[version]
    assert len(readings) >= PERIODS, f"{len(readings)} periods read for version {version}: {readings}"
    assert [r.missing for r in readings] == [()] * len(readings), readings
    starts = [r.start.timestamp() for r in readings]
    assert starts == [starts[0] + k * PERIOD for k in range(len(readings))]  # every period, each once, in order
    return readings


def assert_scraped(feed_value: float, run: Run, keys: Mapping[str, float], start: float, end: float) -> None:
    """`feed_value` is the sum (with signs) of the counters' `increase()` computed from the stored samples."""
    options = {0.0}
    for key, sign in keys.items():
        options = {o + sign * i for o in options for i in run.increases(key, start, end)}
    assert any(feed_value == pytest.approx(o, rel=1e-6, abs=1e-6) for o in options), (feed_value, options, keys)


def assert_served(feed_value: float, served: float, what: str) -> None:
    assert abs(feed_value - served) <= served_tolerance(served), (what, feed_value, served, served_tolerance(served))


@pytest.mark.slow
@pytest.mark.parametrize("version", CANARIES)
def test_the_feed_reads_each_versions_counts_from_prometheus(run: Run, version: str) -> None:
    for reading in intervals(run, version):
        interval = reading.interval
        assert interval is not None
        start, end = reading.start.timestamp(), reading.start.timestamp() + PERIOD
        for role, name, value in [
            ("canary", version, interval.canary_requests),
            ("baseline", BASELINE, interval.baseline_requests),
        ]:
            keys = {requests_key(name, "200"): 1.0, requests_key(name, "500"): 1.0}
            assert_scraped(value, run, keys, start, end)
            served = sum(run.traffic.served(k, start, end) for k in keys)
            assert_served(value, served, f"{role} requests at {reading.start}")
        for role, name, value in [
            ("canary", version, interval.canary_errors),
            ("baseline", BASELINE, interval.baseline_errors),
        ]:
            assert_scraped(value, run, {requests_key(name, "500"): 1.0}, start, end)
            assert_served(value, run.traffic.served(requests_key(name, "500"), start, end), f"{role} errors")
        # The share is measured, not configured: 1 of 4 requests goes to the canary.
        assert interval.canary_share == pytest.approx(0.25, abs=0.05)
    # Every other period is twice as busy: the counts follow the exporter period by period.
    requests = [r.interval.baseline_requests for r in run.readings[version] if r.interval is not None]
    busy = [int(r.start.timestamp() // PERIOD) % 2 == 1 for r in run.readings[version]]
    for value, is_busy in zip(requests, busy, strict=True):
        expected = VERSIONS[BASELINE].rate * PERIOD * (2 if is_busy else 1)
        assert value == pytest.approx(expected, rel=0.15), (requests, busy)


@pytest.mark.parametrize("version", CANARIES)
def test_latency_slow_counts_use_thresholds_from_the_baselines_previous_period(run: Run, version: str) -> None:
    for reading in intervals(run, version):
        interval = reading.interval
        assert interval is not None
        start, end = reading.start.timestamp(), reading.start.timestamp() + PERIOD
        assert dict(reading.thresholds) == EXPECTED_THRESHOLDS, reading.notes
        # The thresholds are the baseline's quantiles in the previous period, as Prometheus saw it.
        previous: dict[float, float] = {}
        for le in (*BOUNDS, math.inf):
            (value, *_) = run.increases(bucket_key(BASELINE, le), start - PERIOD, start)
            previous[le] = value
        for label, quantile in QUANTILES.items():
            assert histogram_threshold(previous, quantile) == reading.thresholds[label]
        # Slow: requests above the threshold, i.e. in the +Inf bucket but not in the threshold's bucket.
        for label, bound in reading.thresholds.items():
            for role, name, slow in [
                ("canary", version, interval.canary_slow[label]),
                ("baseline", BASELINE, interval.baseline_slow[label]),
            ]:
                keys = {bucket_key(name, math.inf): 1.0, bucket_key(name, bound): -1.0}
                assert_scraped(slow, run, keys, start, end)
                served = sum(sign * run.traffic.served(key, start, end) for key, sign in keys.items())
                assert_served(slow, served, f"{role} slower than {label} {bound}s at {reading.start}")


def judge(run: Run, version: str) -> list[CanaryVerdict]:
    """The judge's verdict after each period read from Prometheus."""
    canary = run.canary
    canary_judge = CanaryJudge(
        canary.alpha,
        canary.tolerated_ratio,
        canary.warmup_intervals,
        canary.latency_thresholds,
        integer_counts=False,  # increase() extrapolates: fractional counts are Prometheus' normal (as CanaryWatch)
    )
    return [canary_judge.observe(r.interval) for r in intervals(run, version) if r.interval is not None]


@pytest.mark.parametrize(("version", "metric"), [("2", "errors"), ("4", "latency")])
def test_the_judge_rolls_back_a_clearly_worse_version(run: Run, version: str, metric: str) -> None:
    verdicts = judge(run, version)
    last = verdicts[-1]
    assert last.state == "rollback", [v.detail() for v in verdicts]
    assert last.metric == metric
    assert last.ratio is not None and last.ratio > 1.5
    assert verdicts[0].state == "continue"  # the warm-up period is not judged


def test_the_judge_does_not_roll_back_a_version_as_good_as_the_baseline(run: Run) -> None:
    # alpha 0.01 and a tolerated ratio of 1.5: a false rollback has a chance well under 1%. (increase() scales
    # each period's counts by 5/4, so the judge sees a little more evidence than there is; the e-values of an
    # equal version stay far below the 1/alpha per metric of 200: under 0.1 in our runs.)
    verdicts = judge(run, "3")
    assert [v.state for v in verdicts] == ["continue"] * len(verdicts), [v.detail() for v in verdicts]
    assert all(v.statistic < v.threshold for v in verdicts)


def test_the_design_of_the_baseline_puts_its_quantiles_inside_buckets() -> None:
    """EXPECTED_THRESHOLDS follows from the baseline's log-normal latency (not from the data under test)."""
    baseline = VERSIONS[BASELINE]
    share = {le: NormalDist().cdf(math.log(le / baseline.median) / baseline.sigma) for le in BOUNDS}
    share[math.inf] = 1.0
    assert {label: histogram_threshold(share, q) for label, q in QUANTILES.items()} == EXPECTED_THRESHOLDS
