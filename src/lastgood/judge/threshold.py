"""The runbooks' rules, pure over series.

A period's value is the metric (or a rate, with `per`). It breaches when the condition holds: `> 5%` / `>= 100`,
`> 5 per 5m` (a count per window: the period is the window, the statistic a Sum), `present` (any value > 0) or
`> 5x baseline` (above 5x the mean over the `baseline` window that ends when the live release was recorded).
It fires after `for` consecutive breaching periods or, with `within`, `for` worth of breaching periods among the
last `within` (M of N).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from lastgood.config.models import Trigger
from lastgood.judge.base import TriggerVerdict, VerdictState
from lastgood.sources.base import Series, SeriesRequest
from lastgood.sources.prometheus import PrometheusQuery


def _values(
    trigger: Trigger, numerator: Series, denominator: Series | None, starts: list[datetime]
) -> list[float | None]:
    values: list[float | None] = []
    for start in starts:
        value = numerator.points.get(start)
        if denominator is not None:
            total = denominator.points.get(start)
            if not total:
                values.append(None)
                continue
            # A rate with requests but no error datapoint means no errors, not missing data.
            ratio = (value or 0.0) / total
            values.append(ratio * 100 if trigger.when.percent else ratio)
        else:
            values.append(value)
    return values


def _starts(period: float, end: datetime, count: int) -> list[datetime]:
    return [end - timedelta(seconds=period * (i + 1)) for i in reversed(range(count))]


def period_values(trigger: Trigger, series: dict[str, Series], window_end: datetime) -> list[float | None]:
    """The trigger's value in each of the last `within` (else `for`) periods, oldest first; None: no data."""
    starts = _starts(trigger.period, window_end, trigger.periods_window)
    return _values(trigger, series[f"{trigger.name}.value"], series.get(f"{trigger.name}.per"), starts)


def baseline_mean(trigger: Trigger, series: dict[str, Series], baseline_end: datetime) -> float | None:
    """The mean value over the `baseline` window ending at `baseline_end`; None when it has no data."""
    count = int(trigger.baseline_window // trigger.period)
    starts = _starts(trigger.period, baseline_end, count)
    values = _values(
        trigger, series[f"{trigger.name}.baseline.value"], series.get(f"{trigger.name}.baseline.per"), starts
    )
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def evaluate(
    trigger: Trigger, series: dict[str, Series], window_end: datetime, baseline_end: datetime | None = None
) -> TriggerVerdict:
    """`baseline_end`: when the live release was recorded (only `> Nx baseline` conditions use it)."""
    names = ["value"] + (["per"] if trigger.per is not None else [])
    if trigger.when.kind == "baseline":
        names += [f"baseline.{n}" for n in names]
    needed = [series[f"{trigger.name}.{n}"] for n in names if f"{trigger.name}.{n}" in series]
    errors = [s.error for s in needed if s.status == "error"]
    required = trigger.periods_required
    if errors:
        return _verdict(trigger, "error", None, 0, "; ".join(e or "" for e in errors), [])
    baseline: float | None = None
    if trigger.when.kind == "baseline":
        if baseline_end is None or f"{trigger.name}.baseline.value" not in series:
            return _verdict(trigger, "no-data", None, 0, "no baseline: no live release recording time", [])
        baseline = baseline_mean(trigger, series, baseline_end)
        if baseline is None:
            return _verdict(trigger, "no-data", None, 0, "no data in the baseline window", [])
    values = period_values(trigger, series, window_end)
    breaches = [
        (v is None and trigger.missing_data == "breaching") or (v is not None and trigger.when.holds(v, baseline))
        for v in values
    ]
    latest = next((v for v in reversed(values) if v is not None), None)
    if trigger.within is not None:
        counted = sum(breaches)
        rule = f"{counted} of the last {len(values)} periods, {required} needed"
    else:
        counted = 0
        for breached in reversed(breaches):
            if not breached:
                break
            counted += 1
        rule = f"{counted}/{required} periods"
    shown = "no data" if latest is None else f"{latest:.3g}{'%' if trigger.when.percent else ''}"
    against = f", baseline {baseline:.3g}" if baseline is not None else ""
    detail = f"{shown} (when {trigger.when}{against}; {rule} of {trigger.period:g}s)"
    if all(v is None for v in values) and trigger.missing_data != "breaching":
        return _verdict(trigger, "no-data", None, 0, f"no data in the last {len(values)} periods", values)
    if counted >= required:
        return _verdict(trigger, "firing", latest, counted, detail, values)
    return _verdict(trigger, "breaching" if counted else "ok", latest, counted, detail, values)


def _verdict(
    trigger: Trigger, state: VerdictState, value: float | None, breaching: int, detail: str, values: list[float | None]
) -> TriggerVerdict:
    return TriggerVerdict(
        trigger=trigger.name,
        state=state,
        action=trigger.action,
        severity=trigger.severity,
        value=value,
        breaching_periods=breaching,
        required_periods=trigger.periods_required,
        detail=detail,
        values=values,
    )


class ThresholdJudge:
    def requests(self, trigger: Trigger) -> list[SeriesRequest]:
        """`<name>.value` (and `.per`); with a baseline condition also `<name>.baseline.value` (and `.per`)."""
        query = trigger.query
        per = trigger.per
        if isinstance(per, PrometheusQuery) and per.url is None and isinstance(query, PrometheusQuery):
            per = per.model_copy(update={"url": query.url})
        out = [SeriesRequest(f"{trigger.name}.value", query, trigger.period)]
        if per is not None:
            out.append(SeriesRequest(f"{trigger.name}.per", per, trigger.period))
        if trigger.when.kind == "baseline":
            out += [
                SeriesRequest(f"{trigger.name}.baseline.{r.id.rsplit('.', 1)[1]}", r.query, r.period, "baseline")
                for r in list(out)
            ]
        return out

    def judge(
        self, trigger: Trigger, series: dict[str, Series], window_end: datetime, baseline_end: datetime | None = None
    ) -> TriggerVerdict:
        return evaluate(trigger, series, window_end, baseline_end)
