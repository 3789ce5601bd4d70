"""The guard's verdict on a watch that did not act: `healthy` only when every rollback trigger was judged on data
over its whole window.

A trigger's window is its `within` (M of N), else its `for`. An evaluation is *whole* when its window lies inside
the watch (it starts no earlier than the period the watch started in) and every period of it had data (or the
trigger says `missing_data: breaching`, which counts a period without data as breaching) from a source that
answered. At the end of a watch, per rollback trigger:

- `seen`: at least one whole evaluation, and the last evaluation had data and was not breaching;
- `blind`: the last evaluation had no data at all or its source failed, or no evaluation was whole although the
  watch was long enough (periods without data);
- `inconclusive`: the watch ended before the trigger's window could complete: shorter than the window, never
  evaluated, or the trigger was still breaching (on its way to firing) when the watch ended.

The watch is `blind` if any rollback trigger is, else `inconclusive` if any is, else `healthy`. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from lastgood.config.durations import format_duration
from lastgood.config.models import Trigger
from lastgood.judge.base import TriggerVerdict

WatchVerdict = Literal["healthy", "blind", "inconclusive"]
TriggerSight = Literal["seen", "blind", "inconclusive"]
_WORST: tuple[TriggerSight, ...] = ("blind", "inconclusive")
_OVERALL: dict[TriggerSight, WatchVerdict] = {"seen": "healthy", "blind": "blind", "inconclusive": "inconclusive"}


def window_seconds(trigger: Trigger) -> float:
    """How far back one evaluation of the trigger looks: `within`, else `for`."""
    return trigger.periods_window * trigger.period


def _floor(at: datetime, period: float) -> float:
    return at.timestamp() // period * period


@dataclass
class TriggerCoverage:
    """What one rollback trigger's evaluations in a watch covered."""

    trigger: str
    window: float
    period: float
    counts_missing: bool  # missing_data: breaching (a period without data counts, as breaching)
    started: float  # the start of the period the watch started in (epoch seconds)
    evaluations: int = 0
    whole: int = 0
    blind: int = 0  # evaluations with no data at all, or a failed source
    fits: bool = False  # an evaluated window lay inside the watch
    last: TriggerVerdict | None = None
    last_error: str | None = None

    def observe(self, verdict: TriggerVerdict, end: datetime) -> None:
        """One evaluation of this trigger, of the window ending at `end`."""
        self.evaluations += 1
        self.last = verdict
        inside = end.timestamp() - self.window >= self.started
        self.fits = self.fits or inside
        if verdict.state in ("error", "no-data"):
            self.blind += 1
            self.last_error = verdict.detail if verdict.state == "error" else self.last_error
            return
        complete = self.counts_missing or all(v is not None for v in verdict.values)
        self.whole += int(inside and complete)

    @property
    def sight(self) -> TriggerSight:
        last = self.last
        if last is None:
            return "inconclusive"
        if last.state in ("error", "no-data"):
            return "blind"
        if last.state == "breaching":
            return "inconclusive"
        if self.whole:
            return "seen"
        return "blind" if self.fits else "inconclusive"

    def detail(self) -> str:
        last, window = self.last, format_duration(self.window)
        if last is None:
            return f"{self.trigger}: never evaluated"
        sight, seen = self.sight, f"{self.blind} of {self.evaluations} evaluations"
        if sight == "seen":
            why = f"judged on data over its whole {window} window ({self.whole} times)"
        elif sight == "blind" and last.state == "error":
            why = f"its source failed ({seen})"
        elif sight == "blind" and last.state == "no-data":
            why = f"no data ({seen})"
        elif sight == "blind":
            why = f"never a whole {window} window with data in every period"
        elif last.state == "breaching":
            why = f"still breaching when the watch ended, before its {window} window completed"
        else:
            why = f"the watch ended before its {window} window could complete"
        return f"{self.trigger}: {why}; last: {last.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "sight": self.sight,
            "window_seconds": self.window,
            "evaluations": self.evaluations,
            "whole_windows": self.whole,
            "blind_evaluations": self.blind,
            "last": self.last.to_dict() if self.last is not None else None,
            "detail": self.detail(),
        }


class Coverage:
    """Every rollback trigger's coverage over one watch, started at `started`."""

    def __init__(self, triggers: list[Trigger], started: datetime) -> None:
        self.triggers = {t.name: t for t in triggers if t.action == "rollback"}
        self.watches = {
            t.name: TriggerCoverage(
                t.name, window_seconds(t), t.period, t.missing_data == "breaching", _floor(started, t.period)
            )
            for t in self.triggers.values()
        }

    def observe(self, verdicts: list[TriggerVerdict], now: datetime) -> None:
        for verdict in verdicts:
            watch = self.watches.get(verdict.trigger)
            if watch is not None:
                end = datetime.fromtimestamp(_floor(now, watch.period), now.tzinfo)
                watch.observe(verdict, end)

    @property
    def verdict(self) -> WatchVerdict:
        sights = {w.sight for w in self.watches.values()}
        return next((_OVERALL[s] for s in _WORST if s in sights), "healthy")

    def message(self) -> str:
        verdict = self.verdict
        if verdict == "healthy":
            return "every rollback trigger was judged on data over its whole window; none fired"
        wrong = [w.detail() for w in self.watches.values() if w.sight != "seen"]
        lead = "the guard could not see" if verdict == "blind" else "the guard could not finish judging"
        return f"{lead}: " + "; ".join(wrong)

    def to_list(self) -> list[dict[str, Any]]:
        return [w.to_dict() for w in self.watches.values()]


def short_windows(triggers: list[Trigger], duration: float) -> list[str]:
    """Warnings for a watch shorter than a rollback trigger's window: it cannot end healthy."""
    return [
        f"--for {format_duration(duration)} is shorter than rollback trigger {t.name}'s window "
        f"({format_duration(window_seconds(t))}): the guard cannot judge it whole and will end inconclusive "
        "unless something fires"
        for t in triggers
        if t.action == "rollback" and duration < window_seconds(t)
    ]
