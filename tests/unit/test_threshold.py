"""The threshold judge is a pure function: a table of cases pins it down."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from lastgood.config.models import Trigger
from lastgood.guard.loop import window_end
from lastgood.judge.threshold import evaluate
from lastgood.sources.base import Series

END = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def trigger(**overrides: object) -> Trigger:
    data: dict[str, object] = {
        "name": "errors",
        "cloudwatch": {"namespace": "AWS/Lambda", "metric": "Errors"},
        "per": {"namespace": "AWS/Lambda", "metric": "Invocations"},
        "when": "> 5%",
        "for": "5m",
        "period": "1m",
        "action": "rollback",
    }
    data.update(overrides)
    return Trigger.model_validate(data)


def series(values: list[float | None], name: str) -> Series:
    """values oldest first, one per minute, ending at END."""
    points = {END - timedelta(minutes=len(values) - i): v for i, v in enumerate(values) if v is not None}
    return Series(name, points, "ok" if points else "no-data")


def judge(errors: list[float | None], invocations: list[float | None] | None, **overrides: object) -> str:
    t = trigger(**overrides) if invocations is not None else trigger(per=None, **overrides)
    data = {"errors.value": series(errors, "errors.value")}
    if invocations is not None:
        data["errors.per"] = series(invocations, "errors.per")
    return evaluate(t, data, END).state


@pytest.mark.parametrize(
    ("errors", "invocations", "overrides", "expected"),
    [
        ([10, 10, 10, 10, 10], [100] * 5, {}, "firing"),  # 10% for 5 periods
        ([10, 10, 10, 10, 1], [100] * 5, {}, "ok"),  # latest period recovered
        ([1, 10, 10, 10, 10], [100] * 5, {}, "breaching"),  # 4 of 5
        ([5, 5, 5, 5, 5], [100] * 5, {}, "ok"),  # exactly 5% is not > 5%
        ([5, 5, 5, 5, 5], [100] * 5, {"when": ">= 5%"}, "firing"),
        ([None, None, None, None, None], [100] * 5, {}, "ok"),  # requests but no error datapoints: 0 errors
        ([None] * 5, [None] * 5, {}, "no-data"),  # missing data never counts as healthy or bad by itself
        ([None] * 5, [None] * 5, {"missing_data": "breaching"}, "firing"),  # unless the file says so
        ([10, 10, 10, 10, 10], [100, 100, None, 100, 100], {}, "breaching"),  # a gap breaks the run
        ([6, 6], [100, 100], {"for": "2m"}, "firing"),
        ([200, 300, 400], None, {"when": "> 100", "for": "3m"}, "firing"),  # a count, no rate
        ([200, 50, 400], None, {"when": "> 100", "for": "3m"}, "breaching"),
        ([0.2, 0.3], [1, 1], {"when": "> 0.1", "for": "2m"}, "firing"),  # a ratio without %
    ],
)
def test_threshold_table(
    errors: list[float | None], invocations: list[float | None] | None, overrides: dict[str, object], expected: str
) -> None:
    assert judge(errors, invocations, **overrides) == expected


def test_source_error_is_an_error_verdict_not_a_rollback() -> None:
    t = trigger()
    data = {
        "errors.value": Series("errors.value", status="error", error="AccessDenied"),
        "errors.per": series([1], "p"),
    }
    verdict = evaluate(t, data, END)
    assert verdict.state == "error" and not verdict.fires_rollback and "AccessDenied" in verdict.detail


def test_verdict_reports_values_and_periods() -> None:
    t = trigger()
    verdict = evaluate(t, {"errors.value": series([7] * 5, "v"), "errors.per": series([100] * 5, "p")}, END)
    assert verdict.fires_rollback
    assert verdict.value == pytest.approx(7.0)
    assert verdict.breaching_periods == 5 and verdict.required_periods == 5
    assert verdict.values == [pytest.approx(7.0)] * 5


def test_window_end_excludes_the_partial_period() -> None:
    now = datetime(2026, 1, 1, 12, 3, 42, tzinfo=UTC)
    assert window_end(now, 60) == datetime(2026, 1, 1, 12, 3, tzinfo=UTC)
    assert window_end(now, 5) == datetime(2026, 1, 1, 12, 3, 40, tzinfo=UTC)


# --- the runbooks' other rules ------------------------------------------------------------------------------------

BASELINE_END = END - timedelta(minutes=30)


def count_trigger(**overrides: object) -> Trigger:
    if " per " in str(overrides.get("when", "")):  # the window sets period (and `for`): none of the defaults
        data = {"name": "errors", "cloudwatch": {"namespace": "AWS/SQS", "metric": "NumberOfMessagesSent"}}
        return Trigger.model_validate({**data, "action": "rollback", **overrides})
    return trigger(per=None, **{"for": "1m", **overrides})


def judge_values(values: list[float | None], **overrides: object) -> str:
    """A trigger without `per` over one value per period (of the trigger's period), oldest first, ending at END."""
    t = count_trigger(**overrides)
    step = timedelta(seconds=t.period)
    points = {END - step * (len(values) - i): v for i, v in enumerate(values) if v is not None}
    return evaluate(t, {"errors.value": Series("errors.value", points)}, END).state


@pytest.mark.parametrize(
    ("values", "overrides", "expected"),
    [
        # M of N: 3 breaching periods among the last 5, in any order.
        ([10, 1, 10, 1, 10], {"when": "> 5", "for": "3m", "within": "5m"}, "firing"),
        ([10, 10, 1, 1, 10], {"when": "> 5", "for": "3m", "within": "5m"}, "firing"),
        ([1, 10, 1, 1, 10], {"when": "> 5", "for": "3m", "within": "5m"}, "breaching"),  # 2 of 5
        ([10, 10, 1, 1, 1, 1, 1], {"when": "> 5", "for": "3m", "within": "5m"}, "ok"),  # older ones fall out
        ([10, None, 10, None, 10], {"when": "> 5", "for": "3m", "within": "5m"}, "firing"),  # gaps do not reset
        ([10, 1, 10, 1, 10], {"when": "> 5", "for": "3m"}, "breaching"),  # without `within`: consecutive
        # Counts per window: the period is the window (values here are 5-minute sums).
        ([6], {"when": "> 5 per 5m"}, "firing"),
        ([5], {"when": "> 5 per 5m"}, "ok"),
        ([9, 6], {"when": "> 5 per 5m", "for": "10m"}, "firing"),
        ([9, 2], {"when": "> 5 per 5m", "for": "10m"}, "ok"),
        # Presence: any value above zero in the period (a DLQ has messages).
        ([1], {"when": "present"}, "firing"),
        ([0.5], {"when": "present"}, "firing"),
        ([0], {"when": "present"}, "ok"),
        ([None], {"when": "present"}, "no-data"),
        ([3, 0, 1], {"when": "present", "for": "3m", "within": "3m", "period": "1m"}, "breaching"),  # 2 of 3
    ],
)
def test_rule_table(values: list[float | None], overrides: dict[str, object], expected: str) -> None:
    assert judge_values(values, **overrides) == expected


def judge_baseline(
    live: list[float | None],
    before: list[float | None],
    baseline_end: datetime | None = BASELINE_END,
    **overrides: object,
) -> tuple[str, str]:
    """`live` ends at END, `before` ends at the release's recording time (BASELINE_END); one per minute."""
    t = count_trigger(**{"when": "> 5x baseline", "baseline": "10m", **overrides})
    live_points = {END - timedelta(minutes=len(live) - i): v for i, v in enumerate(live) if v is not None}
    base_points = {BASELINE_END - timedelta(minutes=len(before) - i): v for i, v in enumerate(before) if v is not None}
    data = {
        "errors.value": Series("errors.value", live_points),
        "errors.baseline.value": Series("errors.baseline.value", base_points, "ok" if base_points else "no-data"),
    }
    verdict = evaluate(t, data, END, baseline_end)
    return verdict.state, verdict.detail


@pytest.mark.parametrize(
    ("live", "before", "overrides", "expected"),
    [
        ([11], [2] * 10, {}, "firing"),  # mean 2: 11 > 10
        ([10], [2] * 10, {}, "ok"),  # 10 is not > 5 x 2
        ([11], [1, 3] * 5, {}, "firing"),  # the mean of the window, 2
        ([11], [2] * 10 + [100] * 5, {}, "ok"),  # the window is the last 10m before the release: mean 34
        ([30], [100] * 5 + [2] * 10, {}, "firing"),  # ... the 100s are older than 10m
        ([11], [None] * 8 + [2, 2], {}, "firing"),  # gaps are left out of the mean
        ([11], [None] * 10, {}, "no-data"),  # no baseline, no verdict
        ([11, 11, 5], [2] * 10, {"for": "3m"}, "ok"),
        ([11, 11, 12], [2] * 10, {"for": "3m"}, "firing"),
        ([11, 1, 12], [2] * 10, {"for": "2m", "within": "3m"}, "firing"),  # combines with M of N
    ],
)
def test_baseline_table(
    live: list[float | None], before: list[float | None], overrides: dict[str, object], expected: str
) -> None:
    assert judge_baseline(live, before, **overrides)[0] == expected


def test_baseline_rate_uses_the_same_ratio() -> None:
    t = trigger(when="> 3x baseline", baseline="5m", **{"for": "1m"})
    before = {BASELINE_END - timedelta(minutes=i + 1): 1.0 for i in range(5)}  # 1 error per 100 = 1%
    totals = {BASELINE_END - timedelta(minutes=i + 1): 100.0 for i in range(5)}
    data = {
        "errors.value": Series("errors.value", {END - timedelta(minutes=1): 4.0}),
        "errors.per": Series("errors.per", {END - timedelta(minutes=1): 100.0}),
        "errors.baseline.value": Series("errors.baseline.value", before),
        "errors.baseline.per": Series("errors.baseline.per", totals),
    }
    verdict = evaluate(t, data, END, BASELINE_END)
    assert verdict.state == "firing" and "baseline 0.01" in verdict.detail  # 4/100 > 3 x 1/100


def test_baseline_without_a_live_release_is_no_data_not_a_rollback() -> None:
    state, detail = judge_baseline([100], [1] * 10, baseline_end=None)
    assert state == "no-data" and "baseline" in detail


def test_baseline_source_error_is_an_error_verdict() -> None:
    t = count_trigger(when="> 5x baseline")
    data = {
        "errors.value": Series("errors.value", {END - timedelta(minutes=1): 100.0}),
        "errors.baseline.value": Series("errors.baseline.value", status="error", error="Throttling"),
    }
    verdict = evaluate(t, data, END, BASELINE_END)
    assert verdict.state == "error" and "Throttling" in verdict.detail


def test_judge_requests_baseline_series_for_baseline_rules_only() -> None:
    from lastgood.judge.threshold import ThresholdJudge

    plain = ThresholdJudge().requests(trigger())
    assert [(r.id, r.window) for r in plain] == [("errors.value", "live"), ("errors.per", "live")]
    relative = ThresholdJudge().requests(trigger(when="> 5x baseline"))
    assert [(r.id, r.window) for r in relative] == [
        ("errors.value", "live"),
        ("errors.per", "live"),
        ("errors.baseline.value", "baseline"),
        ("errors.baseline.per", "baseline"),
    ]


@pytest.mark.parametrize(
    ("overrides", "period", "for_", "stat"),
    [
        ({"when": "> 5 per 5m"}, 300.0, 300.0, "Sum"),
        ({"when": "> 5 per 1h", "for": "2h"}, 3600.0, 7200.0, "Sum"),
        ({"when": "> 5 per 5m", "period": "5m"}, 300.0, 300.0, "Sum"),
    ],
)
def test_count_per_window_sets_period_and_sum(
    overrides: dict[str, object], period: float, for_: float, stat: str
) -> None:
    t = Trigger.model_validate(
        {"name": "n", "cloudwatch": {"namespace": "AWS/SQS", "metric": "NumberOfMessagesSent"}, **overrides}
    )
    assert (t.period, t.for_, t.query.stat) == (period, for_, stat)  # type: ignore[attr-defined]
    assert Trigger.model_validate(t.model_dump(by_alias=True)) == t  # round-trips (triggers_for re-validates)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"when": "> 5 per 5m", "period": "1m"}, "sets the period"),
        ({"when": "> 5 per 5m", "cloudwatch": {"namespace": "A", "metric": "B", "stat": "Average"}}, "Sum"),
        ({"when": "> 5 per 5m", "per": {"namespace": "A", "metric": "C"}}, "takes no 'per'"),
        ({"when": "> 5", "for": "3m", "within": "2m"}, "'within' (120s) is shorter than 'for'"),
        ({"when": "> 5", "baseline": "1h"}, "'baseline' needs a condition"),
        ({"when": "present", "per": {"namespace": "A", "metric": "C"}}, "takes no 'per'"),
        ({"prometheus": {"url": "http://p:9090", "query": "up"}}, "exactly one source"),
        ({"cloudwatch": None}, "exactly one source"),
        ({"cloudwatch": None, "probe": {"url": "http://x/"}, "when": "> 5x baseline"}, "cannot use a baseline"),
        ({"cloudwatch": None, "prometheus": {"query": "up"}}, "prometheus needs 'url'"),
        (
            {"cloudwatch": None, "prometheus": {"url": "u", "query": "a"}, "per": {"namespace": "A", "metric": "C"}},
            "'per' must be {query: ...}",
        ),
        ({"cloudwatch": None, "probe": {"url": "http://x/"}, "per": {"query": "a"}}, "does not apply"),
        ({"cloudwatch": {"expression": "m1", "metrics": {"M1": {"namespace": "A", "metric": "B"}}}}, "metric ids"),
    ],
)
def test_trigger_rule_mistakes(overrides: dict[str, object], message: str) -> None:
    data: dict[str, object] = {"name": "n", "cloudwatch": {"namespace": "A", "metric": "B"}, "when": "> 1"}
    data.update(overrides)
    with pytest.raises(ValueError, match=re.escape(message)):
        Trigger.model_validate(data)


def test_other_sources_and_their_periods() -> None:
    prom = Trigger.model_validate(
        {
            "name": "p",
            "prometheus": {"url": "http://prom:9090", "query": 'sum(increase(http_requests_total{code=~"5.."}[15s]))'},
            "per": {"query": "sum(increase(http_requests_total[15s]))"},
            "when": "> 5%",
            "period": "15s",  # not a CloudWatch period: fine for Prometheus
            "for": "45s",
        }
    )
    assert prom.source_type == "prometheus" and prom.periods_required == 3
    from lastgood.judge.threshold import ThresholdJudge

    per = ThresholdJudge().requests(prom)[1].query
    assert per.url == "http://prom:9090"  # type: ignore[union-attr]  # `per` inherits the trigger's server
    probe = Trigger.model_validate(
        {
            "name": "q",
            "probe": {"url": "http://x/health", "rate": "30/m", "measure": "p99"},
            "when": "> 300",
            "period": "20s",
            "for": "1m",
        }
    )
    assert probe.source_type == "probe" and probe.query is not None
    assert (probe.query.rate, probe.query.expect_status, probe.query.timeout) == (0.5, [200], 5.0)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="CloudWatch periods"):
        trigger(period="20s", **{"for": "1m"})
