"""The guard's verdict on a watch that did not act (guard/verdicts.py): a table of cases over trigger verdicts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lastgood.config.models import Trigger
from lastgood.guard.verdicts import Coverage, short_windows
from lastgood.judge.base import TriggerVerdict, VerdictState

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def trigger(name: str = "api-errors", for_: str = "5m", action: str = "rollback", **extra: object) -> Trigger:
    data = {"name": name, "prometheus": {"url": "http://p:9090", "query": "x"}, "when": "> 5", "for": for_}
    return Trigger.model_validate({**data, "period": "1m", "action": action, **extra})


def verdict(state: VerdictState, values: list[float | None], name: str = "api-errors") -> TriggerVerdict:
    return TriggerVerdict(name, state, "rollback", "high", values[-1] if values else None, 0, 5, state, values)


OK = [1.0] * 5
BREACHING = [1.0, 1.0, 1.0, 19.6, 19.6]
GAP = [1.0, None, 1.0, 1.0, 1.0]


def watch(
    evaluations: list[tuple[VerdictState, list[float | None]]], started: datetime = START, **extra: object
) -> Coverage:
    """Evaluations one minute apart from `started`."""
    coverage = Coverage([trigger(**extra)], started)
    for index, (state, values) in enumerate(evaluations):
        coverage.observe([verdict(state, values)], started + index * MINUTE)
    return coverage


CASES = [
    # (what, evaluations one minute apart from 12:00, expected verdict)
    ("ok for two windows", [("ok", OK)] * 11, "healthy"),
    ("ok, watched exactly one window", [("ok", OK)] * 6, "healthy"),
    ("source down the whole watch", [("error", [])] * 6, "blind"),
    ("no data the whole watch", [("no-data", [None] * 5)] * 6, "blind"),
    ("ok, then the source failed at the end", [("ok", OK)] * 6 + [("error", [])], "blind"),
    ("a period without data in every window", [("ok", GAP)] * 6, "blind"),
    ("watch (70s) shorter than the 5m window", [("ok", OK)] * 2, "inconclusive"),
    ("breaching 2 of 5 when a short watch ended", [("breaching", BREACHING)] * 2, "inconclusive"),
    ("breaching at the end of a long watch", [("ok", OK)] * 6 + [("breaching", BREACHING)], "inconclusive"),
    ("never evaluated", [], "inconclusive"),
    ("a source failure, then a whole window", [("error", [])] + [("ok", OK)] * 6, "healthy"),
]


@pytest.mark.parametrize(("what", "evaluations", "expected"), CASES, ids=[c[0] for c in CASES])
def test_watch_verdicts(what: str, evaluations: list[tuple[VerdictState, list[float | None]]], expected: str) -> None:
    coverage = watch(evaluations)
    assert coverage.verdict == expected, coverage.message()
    if expected != "healthy":
        assert "api-errors" in coverage.message()


def test_missing_data_breaching_counts_a_period_without_data() -> None:
    assert watch([("ok", GAP)] * 6, missing_data="breaching").verdict == "healthy"


def test_a_watch_starting_mid_period_needs_the_window_from_that_period_on() -> None:
    started = START + timedelta(seconds=30)
    assert watch([("ok", OK)] * 5, started).verdict == "inconclusive"  # 12:00:30 .. 12:04:30: window not inside
    assert watch([("ok", OK)] * 6, started).verdict == "healthy"  # the 12:05:30 evaluation judges 12:00-12:05


def test_alert_triggers_do_not_count_and_a_file_without_rollback_triggers_is_healthy() -> None:
    coverage = Coverage([trigger("throttles", action="alert")], START)
    coverage.observe([verdict("error", [], "throttles")], START)
    assert coverage.verdict == "healthy" and coverage.to_list() == []


def test_blind_outranks_inconclusive_and_both_are_named() -> None:
    coverage = Coverage([trigger("a"), trigger("b")], START)
    for index in range(2):
        coverage.observe([verdict("error", [], "a"), verdict("ok", OK, "b")], START + index * MINUTE)
    assert coverage.verdict == "blind"
    message = coverage.message()
    assert "a: its source failed (2 of 2 evaluations)" in message
    assert "b: the watch ended before its 5m window could complete" in message
    assert [t["sight"] for t in coverage.to_list()] == ["blind", "inconclusive"]


def test_within_is_the_window() -> None:
    assert watch([("ok", OK)] * 6, for_="3m", within="5m").verdict == "healthy"
    assert watch([("ok", OK[:3])] * 4, for_="3m", within="5m").verdict == "inconclusive"


def test_short_watch_warnings_name_the_trigger_and_its_window() -> None:
    triggers = [trigger("api-errors"), trigger("dlq", for_="1m"), trigger("noise", action="alert", for_="10m")]
    warnings = short_windows(triggers, 70.0)
    assert len(warnings) == 1
    assert "--for 1m10s is shorter than rollback trigger api-errors's window (5m)" in warnings[0]
    assert short_windows(triggers, 300.0) == []
