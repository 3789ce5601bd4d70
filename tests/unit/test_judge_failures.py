"""Issue 12's failure modes of the canary judge, one test each, through the judge and the watch as the guard and
deploy use them: per-version wobble, zero counts without datapoints, partial periods, bad values, a baseline
without traffic, restarts and a second process on the same canary. Each of these failed on the judge before the
rate test (see docs/JUDGE.md)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from lastgood.config.loader import parse_runbook
from lastgood.config.models import Canary, MetricQuery
from lastgood.guard.canary import CanaryFeed, CanaryWatch
from lastgood.judge.canary import CanaryInterval, CanaryJudge
from lastgood.sources.base import Series, SeriesRequest

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
RUNBOOK = """\
app: shop
environments: {prod: {}}
components: [{name: api, kind: lambda-alias, function: shop-api-{env}}]
canary:
  period: 1m
  warmup: 2m
  cloudwatch:
    requests: {namespace: AWS/Lambda, metric: Invocations, dimensions: {FunctionName: f, ExecutedVersion: "{version}"}}
    errors: {namespace: AWS/Lambda, metric: Errors, dimensions: {FunctionName: f, ExecutedVersion: "{version}"}}
"""


def canary_block() -> Canary:
    canary = parse_runbook(RUNBOOK).canary_for("prod")
    assert canary is not None
    return canary


def wobbly_runs(
    rng: np.random.Generator, runs: int, rpm: float, base: float, cv_c: float, cv_b: float, ratio: float = 1.0
) -> list[list[CanaryInterval]]:
    """60 one-minute periods per run, a 10% canary; each version's error rate wobbles on its own (gamma)."""

    def wobble(cv: float) -> np.ndarray:
        return np.ones((runs, 60)) if cv == 0 else rng.gamma(1 / cv**2, cv**2, (runs, 60))

    req_c, req_b = rng.poisson(rpm * 0.1, (runs, 60)), rng.poisson(rpm * 0.9, (runs, 60))
    err_c = rng.binomial(req_c, np.clip(base * ratio * wobble(cv_c), 0, 1))
    err_b = rng.binomial(req_b, np.clip(base * wobble(cv_b), 0, 1))
    return [
        [
            CanaryInterval(float(req_c[i, t]), float(req_b[i, t]), float(err_c[i, t]), float(err_b[i, t]))
            for t in range(60)
        ]
        for i in range(runs)
    ]


def false_rollbacks(runs: list[list[CanaryInterval]], **judge: Any) -> float:
    rolled = 0
    for periods in runs:
        test = CanaryJudge(**judge)
        rolled += any(test.observe(p).fires_rollback for p in periods)
    return rolled / len(runs)


# ---- 1. validity when each version wobbles on its own (was 23% / 58% / 11% at these settings) ----


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
@pytest.mark.parametrize(
    ("rpm", "base", "cv_c", "cv_b"),
    [(2000, 0.02, 0.7, 0.7), (20000, 0.02, 0.7, 0.7), (20000, 0.02, 0.3, 0.3), (20000, 0.02, 0.0, 0.7)],
)
def test_false_rollbacks_stay_within_alpha_when_each_version_wobbles(
    rpm: float, base: float, cv_c: float, cv_b: float
) -> None:
    rng = np.random.default_rng(int(rpm + 100 * cv_c + 10 * cv_b))
    rate = false_rollbacks(wobbly_runs(rng, 150, rpm, base, cv_c, cv_b), latency_thresholds=())
    assert rate <= 0.05 + 0.03  # alpha, plus three standard errors of 150 runs at alpha


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_per_version_latency_wobble_is_not_evidence() -> None:
    """Each version's log-latency wobbles by sd 0.1 a minute (was 6.5% false rollbacks)."""
    rng = np.random.default_rng(21)
    rolled = 0
    for _ in range(80):
        judge = CanaryJudge(errors=False, latency_thresholds=("p50", "p90", "p99"))
        mu_prev = 0.0
        for _t in range(60):
            mu_c, mu_b = rng.normal(0, 0.1), rng.normal(0, 0.1)
            thresholds = {"p50": mu_prev, "p90": mu_prev + 0.6 * 1.2816, "p99": mu_prev + 0.6 * 2.3263}
            c, b = rng.poisson(2000), rng.poisson(18000)
            slow_c = {k: float(rng.binomial(c, 1 - _ndtr((v - mu_c) / 0.6))) for k, v in thresholds.items()}
            slow_b = {k: float(rng.binomial(b, 1 - _ndtr((v - mu_b) / 0.6))) for k, v in thresholds.items()}
            verdict = judge.observe(CanaryInterval(float(c), float(b), canary_slow=slow_c, baseline_slow=slow_b))
            mu_prev = mu_b
        rolled += verdict.fires_rollback
    assert rolled / 80 <= 0.05 + 0.04


def _ndtr(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def test_a_real_difference_is_still_found_through_the_wobble() -> None:
    rng = np.random.default_rng(22)
    runs = wobbly_runs(rng, 40, 20000, 0.02, 0.3, 0.3, ratio=2.0)
    found = 0
    for periods in runs:
        judge = CanaryJudge(latency_thresholds=())
        found += any(judge.observe(p).fires_rollback for p in periods)
    assert found / 40 >= 0.9


# ---- 2. zero counts without datapoints (was 12-27% false rollbacks at 0.1-0.5% errors) ----


class FakeCloudWatch:
    """Per (metric, version) points; a minute whose Sum is 0 has no datapoint, as CloudWatch does."""

    name = "fake"

    def __init__(self, points: dict[tuple[str, str], dict[datetime, float]]) -> None:
        self.points = points

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        out = {}
        for request in requests:
            query = request.query
            assert isinstance(query, MetricQuery)
            key = (query.metric, query.dimensions["ExecutedVersion"])
            points = {t: v for t, v in self.points.get(key, {}).items() if start <= t < end and v != 0}
            out[request.id] = Series(request.id, points, "ok" if points else "no-data")
        return out


def minutes(values: list[float]) -> dict[datetime, float]:
    return {T0 + timedelta(minutes=i): v for i, v in enumerate(values)}


def test_a_minute_without_an_errors_datapoint_is_zero_errors_when_requests_have_data() -> None:
    source = FakeCloudWatch(
        {
            ("Invocations", "2"): minutes([200, 200, 200]),
            ("Invocations", "1"): minutes([1800, 1800, 1800]),
            ("Errors", "2"): minutes([0, 1, 0]),  # no datapoint at minutes 0 and 2
            ("Errors", "1"): minutes([9, 0, 8]),
        }
    )
    feed = CanaryFeed(canary_block(), "2", "1", source, T0)
    readings = feed.poll(T0 + timedelta(minutes=3))
    assert [r.interval is not None for r in readings] == [True, True, True]
    assert [(r.interval.canary_errors, r.interval.baseline_errors) for r in readings if r.interval] == [
        (0.0, 9.0),
        (1.0, 0.0),
        (0.0, 8.0),
    ]


def with_missing(**rules: str) -> Canary:
    block = canary_block()
    return block.model_copy(update={"missing": block.missing.model_copy(update=rules)})


def test_missing_requests_are_zero_once_the_other_version_has_data_else_waited_for() -> None:
    source = FakeCloudWatch({("Invocations", "1"): minutes([1800]), ("Errors", "1"): minutes([9])})
    (reading,) = CanaryFeed(canary_block(), "2", "1", source, T0).poll(T0 + timedelta(minutes=1))
    assert reading.interval is not None and reading.interval.canary_requests == 0  # the canary served none
    nothing = CanaryFeed(canary_block(), "2", "1", FakeCloudWatch({}), T0)
    assert nothing.poll(T0 + timedelta(minutes=1)) == []  # no data at all: waited for, they may arrive late


def test_missing_requests_under_skip_are_waited_for_then_skipped_and_under_breaching_blind() -> None:
    source = FakeCloudWatch({("Invocations", "1"): minutes([1800]), ("Errors", "1"): minutes([9])})
    feed = CanaryFeed(with_missing(requests="skip"), "2", "1", source, T0)
    assert feed.poll(T0 + timedelta(minutes=1)) == []
    (late,) = feed.poll(T0 + timedelta(minutes=3))
    assert late.interval is None and late.missing == ("canary requests: no data",) and not late.breaching
    breaching = with_missing(requests="breaching")
    watch = CanaryWatch(breaching, CanaryFeed(breaching, "2", "1", source, T0))
    watch.update(T0 + timedelta(minutes=3), False)
    assert watch.state == "blind" and watch.blind_started and "breaching" in (watch.blind or "")


def test_a_query_that_finds_nothing_for_the_baseline_is_blind_not_silent() -> None:
    """A wrong dimension: the baseline's requests never have a datapoint. Zero requests for 3 periods: blind."""
    source = FakeCloudWatch({("Invocations", "2"): minutes([200.0] * 6), ("Errors", "2"): minutes([1.0] * 6)})
    watch = CanaryWatch(canary_block(), CanaryFeed(canary_block(), "2", "1", source, T0))
    watch.update(T0 + timedelta(minutes=4), False)
    assert watch.state == "blind" and "baseline has served no requests" in watch.blind_message()


# ---- 3. partial periods (was 98.5% false rollbacks) ----


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_latency_is_judged_over_its_own_sample_count_not_the_request_count() -> None:
    """The canary's request count is 10% short in every period while its latency samples are complete: the
    slow share must come from the latency metric's own counts."""
    rng = np.random.default_rng(31)
    rolled = 0
    for _ in range(60):
        judge = CanaryJudge(errors=False, latency_thresholds=("p50", "p90"))
        for _t in range(40):
            c, b = rng.poisson(2000), rng.poisson(18000)
            slow_c = {"p50": float(rng.binomial(c, 0.5)), "p90": float(rng.binomial(c, 0.1))}
            slow_b = {"p50": float(rng.binomial(b, 0.5)), "p90": float(rng.binomial(b, 0.1))}
            interval = CanaryInterval(
                round(0.9 * c), float(b), canary_slow=slow_c, baseline_slow=slow_b, canary_samples=float(c)
            )
            verdict = judge.observe(interval)
        rolled += verdict.fires_rollback
    assert rolled / 60 <= 0.05


# ---- 4. bad values: an error state, never a crash, never silence ----


def bad_canary(judge: CanaryJudge, periods: int = 12) -> str:
    """A canary with 50% errors against a baseline with 0.5%: what the judge says at the end."""
    verdict = None
    for _ in range(periods):
        verdict = judge.observe(CanaryInterval(200.0, 1800.0, 100.0, 9.0))
    assert verdict is not None
    return verdict.state


@pytest.mark.parametrize("value", [math.inf, math.nan, -3.0, 2.5])
def test_a_bad_count_makes_the_judge_blind_then_it_judges_again(value: float) -> None:
    judge = CanaryJudge(latency_thresholds=())
    judge.observe(CanaryInterval(200.0, 1800.0, 1.0, 9.0))
    verdict = judge.observe(CanaryInterval(200.0, 1800.0, value, 9.0))
    assert verdict.state == "blind" and verdict.blind and "canary errors" in verdict.blind
    assert bad_canary(judge) == "rollback"  # good data came back: the judge works, the bad canary is caught


def test_more_errors_than_requests_is_a_bad_value() -> None:
    verdict = CanaryJudge(latency_thresholds=()).observe(CanaryInterval(10.0, 90.0, 11.0, 1.0))
    assert verdict.state == "blind" and "exceed its requests" in (verdict.blind or "")


def test_fractional_counts_are_fine_from_prometheus() -> None:
    judge = CanaryJudge(latency_thresholds=(), integer_counts=False)
    assert judge.observe(CanaryInterval(200.4, 1800.7, 1.3, 9.1)).state == "continue"


def test_a_baseline_without_traffic_makes_the_judge_blind_until_it_serves_again() -> None:
    judge = CanaryJudge(latency_thresholds=())
    states = [judge.observe(CanaryInterval(200.0, 0.0, 1.0, 0.0)).state for _ in range(4)]
    assert states == ["continue", "continue", "blind", "blind"]
    assert "baseline has served no requests for 4 periods" in (judge.verdict().blind or "")
    assert judge.observe(CanaryInterval(200.0, 1800.0, 1.0, 9.0)).state == "continue"


class ScriptedFeed:
    def __init__(self, intervals: list[CanaryInterval]) -> None:
        self.intervals = intervals
        self.versions = {"canary": "2", "baseline": "1"}
        self.next_start = T0
        self.period = 60.0

    def poll(self, now: datetime) -> list[Any]:
        from lastgood.guard.canary import CanaryReading

        out = []
        while self.intervals and self.next_start + timedelta(seconds=60) <= now:
            out.append(CanaryReading(self.next_start, self.intervals.pop(0)))
            self.next_start += timedelta(seconds=60)
        return out


def test_the_watch_reports_bad_values_once_per_episode_and_never_raises() -> None:
    good, bad = CanaryInterval(200.0, 1800.0, 1.0, 9.0), CanaryInterval(200.0, 1800.0, -1.0, 9.0)
    script = [good, bad, bad, good, bad]
    watch = CanaryWatch(canary_block(), ScriptedFeed(script))  # type: ignore[arg-type]
    seen = []
    for minute in range(1, 6):
        watch.update(T0 + timedelta(minutes=minute), False)
        seen.append((watch.state, watch.blind_started))
    assert seen == [
        ("warming-up", False),
        ("blind", True),
        ("blind", False),
        ("warming-up", False),
        ("blind", True),
    ]
    assert "canary errors is negative" in watch.blind_message()


# ---- 5. one judge per canary: restarts and a second process continue the same test ----


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}

    def load(self, key: str) -> Any:
        return self.rows.get(key)

    def save(self, key: str, state: dict[str, Any], next_start: datetime, expected: int) -> bool:
        from lastgood.guard.canary import SavedJudge  # (imported here: the tests above run on older judges too)

        current = self.rows.get(key)
        if (current.version if current else 0) != expected:
            return False
        self.rows[key] = SavedJudge(state, next_start, expected + 1)
        return True


def cloudwatch_source(periods: int, canary_errors: float = 2.0) -> FakeCloudWatch:
    return FakeCloudWatch(
        {
            ("Invocations", "2"): minutes([200.0] * periods),
            ("Invocations", "1"): minutes([1800.0] * periods),
            ("Errors", "2"): minutes([canary_errors] * periods),
            ("Errors", "1"): minutes([9.0] * periods),
        }
    )


def test_a_restarted_watch_continues_the_same_test_with_the_alpha_it_has_left() -> None:
    store, source, block = MemoryStore(), cloudwatch_source(30, canary_errors=3.0), canary_block()
    first = CanaryWatch(block, CanaryFeed(block, "2", "1", source, T0), store=store, key="k")
    first.update(T0 + timedelta(minutes=5), False)
    statistic = first.judge.metric_statistic("errors")
    assert first.judged == 5 and statistic > 0
    # the process restarts: a new watch from now on, with the same key
    again = CanaryWatch(block, CanaryFeed(block, "2", "1", source, T0 + timedelta(minutes=5)), store=store, key="k")
    assert again.restored and again.judged == 5
    assert again.judge.metric_statistic("errors") == pytest.approx(statistic)
    again.update(T0 + timedelta(minutes=6), False)
    assert again.judged == 6 and again.judge.metric_statistic("errors") > statistic


def test_a_guard_and_a_deploy_on_the_same_canary_share_one_judge() -> None:
    store, source, block = MemoryStore(), cloudwatch_source(20), canary_block()
    deploy = CanaryWatch(block, CanaryFeed(block, "2", "1", source, T0), store=store, key="k")
    guard = CanaryWatch(block, CanaryFeed(block, "2", "1", source, T0), store=store, key="k")
    for minute in range(1, 11):
        now = T0 + timedelta(minutes=minute)
        deploy.update(now, False)
        guard.update(now, False)
    # each period fed once, to one test: both see the same judge, 10 periods judged
    assert deploy.judge.periods == guard.judge.periods == 10
    assert store.rows["k"].state["judge"]["periods"] == 10
    assert guard.judge.metric_statistic("errors") == pytest.approx(deploy.judge.metric_statistic("errors"))


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_restarting_every_five_periods_costs_no_alpha() -> None:
    """Every 5 periods a new process: with the judge kept, the false rollback rate is that of one process."""
    rng = np.random.default_rng(41)
    runs = wobbly_runs(rng, 120, 2000, 0.02, 0.3, 0.3)
    kept = 0
    for periods in runs:
        judge, rolled = CanaryJudge(latency_thresholds=()), False
        for t, period in enumerate(periods):
            if t % 5 == 0:
                state = judge.to_state()
                judge = CanaryJudge(latency_thresholds=())
                assert judge.restore(state)
            rolled |= judge.observe(period).fires_rollback
        kept += rolled
    assert kept / 120 <= 0.05


def test_a_state_of_another_block_is_not_restored() -> None:
    state = CanaryJudge(latency_thresholds=()).to_state()
    assert not CanaryJudge(latency_thresholds=("p50",)).restore(state)
    assert not CanaryJudge(alpha=0.01, latency_thresholds=()).restore(state)
