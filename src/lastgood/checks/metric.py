"""metric: "metrics back to normal": a trigger of the file, judged as the guard judges it, stays quiet.

The check waits until `quiet_for` after the restore, then judges the trigger's periods in that window with the
guard's judge (`ThresholdJudge`) on the same source: every period must have data and none may breach.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

from lastgood.checks.base import CheckContext, CheckResult
from lastgood.config.durations import format_duration
from lastgood.config.models import Trigger
from lastgood.config.validation import Check
from lastgood.judge.threshold import ThresholdJudge, period_values
from lastgood.sources.registry import build_source, close_sources


def _window_end(moment: datetime, period: float) -> datetime:
    return datetime.fromtimestamp(int(moment.timestamp() // period * period), UTC)


def judge_quiet(trigger: Trigger, quiet_for: float, ctx: CheckContext) -> tuple[bool, str, dict[str, object]]:
    periods = max(1, int(quiet_for // trigger.period))
    window = trigger.model_copy(update={"for_": periods * trigger.period, "within": None})
    judge = ThresholdJudge()
    end = _window_end(ctx.now(), trigger.period)
    start = end - timedelta(seconds=periods * trigger.period)
    source = build_source(trigger.source_type, ctx.aws, [trigger])
    try:
        series = source.fetch([r for r in judge.requests(window) if r.window == "live"], start, end)
    finally:
        close_sources({trigger.source_type: source})
    failed = [s.error or "error" for s in series.values() if s.status == "error"]
    if failed:
        return False, f"{trigger.name}: its source failed: {'; '.join(failed)}", {}
    values = period_values(window, series, end)
    data: dict[str, object] = {"values": values, "periods": periods}
    missing = sum(v is None for v in values)
    breaching = [v for v in values if v is not None and trigger.when.holds(v, None)]
    shown = f"{trigger.name} (when {trigger.when})"
    if breaching:
        return False, f"{shown}: {len(breaching)} of {periods} periods breaching, last {values[-1]}", data
    if missing and trigger.missing_data == "breaching":
        return False, f"{shown}: {missing} of {periods} periods without data (missing_data: breaching)", data
    if missing == periods:
        return False, f"{shown}: no data in {format_duration(quiet_for)}: cannot say it is back to normal", data
    return True, f"{shown}: quiet for {format_duration(quiet_for)} ({periods - missing} periods with data)", data


class MetricChecker:
    type: ClassVar[str] = "metric"

    def run(self, check: Check, ctx: CheckContext) -> CheckResult:
        spec = check.metric
        assert spec is not None
        started = ctx.now()
        trigger = next((t for t in ctx.triggers if t.name == spec.trigger), None)
        if trigger is None:
            detail = f"trigger {spec.trigger!r} does not watch {ctx.env}"
            return CheckResult(check.name, self.type, False, detail)
        if trigger.when.kind == "baseline":
            detail = f"{trigger.name} compares with a baseline: use a threshold trigger for a quiet check"
            return CheckResult(check.name, self.type, False, detail)
        ready = ctx.restored_at + timedelta(seconds=spec.quiet_for + trigger.period)
        wait = (ready - ctx.now()).total_seconds()
        if wait > 0:
            ctx.sleep(wait)
        passed, detail, data = judge_quiet(trigger, spec.quiet_for, ctx)
        seconds = (ctx.now() - started).total_seconds()
        return CheckResult(check.name, self.type, passed, detail, 1, seconds, data)

    def describe(self, check: Check) -> str:
        spec = check.metric
        assert spec is not None
        return f"trigger {spec.trigger} quiet for {format_duration(spec.quiet_for)} after the restore"
