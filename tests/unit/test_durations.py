"""Durations and trigger conditions."""

from __future__ import annotations

from typing import Any

import pytest

from lastgood.config.durations import Condition, format_duration, parse_condition, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (1.5, 1.5),
        ("90", 90.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("1.5m", 90.0),
        (" 5M ", 300.0),
        ("2h0m5s", 7205.0),
    ],
)
def test_parse_duration(value: Any, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["", "5", "soon", "5 minutes", "5mm", "m5", "1h 30m", "-5m", "5w", "s"])
def test_parse_duration_rejects(value: Any) -> None:
    if value == "5":  # a bare number of seconds is fine
        assert parse_duration(value) == 5.0
        return
    with pytest.raises(ValueError, match="expected a duration such as '30s', '5m' or '1h'"):
        parse_duration(value)


def test_parse_duration_rejects_negative_numbers_and_booleans() -> None:
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_duration(-1)
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(True)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.4, "0s"),
        (45, "45s"),
        (59.6, "1m"),
        (60, "1m"),
        (90, "1m30s"),
        (605, "10m05s"),
        (3600, "1h00m"),
        (5400, "1h30m"),
        (90000, "25h00m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [30, 60, 90, 300, 5400])
def test_format_then_parse_round_trips(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "operator", "threshold", "percent"),
    [
        ("> 5%", ">", 5.0, True),
        (">5%", ">", 5.0, True),
        (">= 100", ">=", 100.0, False),
        ("< 0.5", "<", 0.5, False),
        ("<= -1", "<=", -1.0, False),
        ("  >  2.5 %  ", ">", 2.5, True),
    ],
)
def test_parse_condition(text: str, operator: str, threshold: float, percent: bool) -> None:
    condition = parse_condition(text)
    assert (condition.operator, condition.threshold, condition.percent) == (operator, threshold, percent)
    assert parse_condition(condition) is condition
    assert parse_condition(str(condition)) == condition


@pytest.mark.parametrize("text", ["about 5", "5", "> ", "=> 5", "== 5", "> five", "> 5%%", ""])
def test_parse_condition_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a condition such as '> 5%' or '>= 100'"):
        parse_condition(text)


def test_condition_str() -> None:
    assert str(parse_condition("> 5%")) == "> 5%"
    assert str(parse_condition(">=100")) == ">= 100"
    assert str(parse_condition("< 0.50")) == "< 0.5"


@pytest.mark.parametrize(
    ("operator", "value", "holds"),
    [
        (">", 4.9, False),
        (">", 5.0, False),
        (">", 5.1, True),
        (">=", 4.9, False),
        (">=", 5.0, True),
        (">=", 5.1, True),
        ("<", 4.9, True),
        ("<", 5.0, False),
        ("<", 5.1, False),
        ("<=", 4.9, True),
        ("<=", 5.0, True),
        ("<=", 5.1, False),
    ],
)
def test_condition_holds(operator: Any, value: float, holds: bool) -> None:
    assert Condition(operator=operator, threshold=5.0, percent=False).holds(value) is holds
