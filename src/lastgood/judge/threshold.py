"""The runbooks' rule: a value (or a rate, with `per`) crosses a threshold for `for` consecutive periods."""

from __future__ import annotations

from datetime import datetime, timedelta

from lastgood.config.models import Trigger
from lastgood.judge.base import TriggerVerdict, VerdictState
from lastgood.sources.base import Series, SeriesRequest


def period_values(trigger: Trigger, series: dict[str, Series], window_end: datetime) -> list[float | None]:
    """The trigger's value in each of the last `for` periods, oldest first; None where there is no data."""
    numerator = series[f"{trigger.name}.value"]
    denominator = series.get(f"{trigger.name}.per")
    starts = [
        window_end - timedelta(seconds=trigger.period * (i + 1)) for i in reversed(range(trigger.periods_required))
    ]
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


def evaluate(trigger: Trigger, series: dict[str, Series], window_end: datetime) -> TriggerVerdict:
    needed = [series[f"{trigger.name}.value"]] + ([series[f"{trigger.name}.per"]] if trigger.per is not None else [])
    errors = [s.error for s in needed if s.status == "error"]
    required = trigger.periods_required
    if errors:
        return _verdict(trigger, "error", None, 0, "; ".join(e or "" for e in errors), [])
    values = period_values(trigger, series, window_end)
    breaches = [
        (v is None and trigger.missing_data == "breaching") or (v is not None and trigger.when.holds(v)) for v in values
    ]
    latest = next((v for v in reversed(values) if v is not None), None)
    consecutive = 0
    for breached in reversed(breaches):
        if not breached:
            break
        consecutive += 1
    shown = "no data" if latest is None else f"{latest:.3g}{'%' if trigger.when.percent else ''}"
    detail = f"{shown} (when {trigger.when}; {consecutive}/{required} periods of {trigger.period:g}s)"
    if all(v is None for v in values) and trigger.missing_data != "breaching":
        return _verdict(trigger, "no-data", None, 0, f"no data in the last {required} periods", values)
    if consecutive >= required:
        return _verdict(trigger, "firing", latest, consecutive, detail, values)
    return _verdict(trigger, "breaching" if consecutive else "ok", latest, consecutive, detail, values)


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
        out = [SeriesRequest(f"{trigger.name}.value", trigger.cloudwatch, trigger.period)]
        if trigger.per is not None:
            out.append(SeriesRequest(f"{trigger.name}.per", trigger.per, trigger.period))
        return out

    def judge(self, trigger: Trigger, series: dict[str, Series], window_end: datetime) -> TriggerVerdict:
        return evaluate(trigger, series, window_end)
