"""The threshold judge is a pure function: a table of cases pins it down."""

from __future__ import annotations

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
