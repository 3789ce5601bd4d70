"""Metric math: the expression's ids are checked against its metrics when the file is read (exit 2, the path
named), and renamed per request without touching strings or functions. CloudWatch evaluates the arithmetic:
moto 5 only returns a single named id (moto/cloudwatch/metric_data_expression_parser.py), so the wire shapes
are pinned with Stubber in tests/integration/test_guard.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from lastgood.cli.app import main
from lastgood.config.models import Trigger
from lastgood.sources.base import SeriesRequest
from lastgood.sources.cloudwatch import MetricMath, _queries
from lastgood.sources.metric_math import ids_in, rename

TIMEOUTS = {"namespace": "AWS/Lambda", "metric": "Timeouts"}
CALLS = {"namespace": "AWS/Lambda", "metric": "Invocations"}


def math_trigger(expression: str, metrics: dict[str, object] | None = None) -> Trigger:
    metrics = {"timeouts": TIMEOUTS, "invocations": CALLS} if metrics is None else metrics
    cloudwatch = {"metrics": metrics, "expression": expression}
    return Trigger.model_validate({"name": "timeout-rate", "cloudwatch": cloudwatch, "when": "> 10"})


def test_the_seeds_timeout_rate_is_metric_math() -> None:
    trigger = math_trigger("100 * timeouts / invocations")
    assert isinstance(trigger.query, MetricMath)
    assert list(trigger.query.metrics) == ["timeouts", "invocations"]


@pytest.mark.parametrize(
    ("expression", "ids"),
    [
        ("100 * timeouts / invocations", ["timeouts", "invocations"]),
        ("IF(m1 > 1e3, m1, 0) + FILL(m2, REPEAT)", ["m1", "m2"]),
        ("SEARCH('{AWS/Lambda,FunctionName} errors m9', 'Sum', 60)", []),  # words in a string are not ids
        ('METRICS("m")', []),
        ("RATE(m_1) * 60", ["m_1"]),
    ],
)
def test_ids_in(expression: str, ids: list[str]) -> None:
    assert ids_in(expression) == ids


def test_rename_touches_ids_only() -> None:
    names = {"m1": "q0_m1", "m10": "q0_m10"}
    assert rename("SEARCH('m1', 'Sum', 60) + m1 * m10 / 1e1", names) == "SEARCH('m1', 'Sum', 60) + q0_m1 * q0_m10 / 1e1"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        (
            "100 * timeouts / invocatons",
            "the expression names invocatons, not in metrics (its ids: timeouts, invocations)",
        ),
        ("m1 + m2", "the expression names m1, m2, not in metrics"),
        ("", "at least 1 character"),
    ],
)
def test_an_expression_naming_an_unknown_id_is_refused(expression: str, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)) as raised:
        math_trigger(expression)
    assert [e["loc"] for e in raised.value.errors()] == [("cloudwatch", "expression")]


def test_bad_metrics_are_reported_once_not_again_in_the_expression() -> None:
    with pytest.raises(ValidationError) as raised:
        math_trigger("M1 * 2", {"M1": TIMEOUTS})
    assert [e["loc"] for e in raised.value.errors()] == [("cloudwatch", "metrics")]


def test_the_request_renames_ids_per_trigger() -> None:
    query = math_trigger("100 * timeouts / invocations").query
    sent = _queries("q3", SeriesRequest("t", query, 60))
    assert sent[0] == {"Id": "q3", "Expression": "100 * q3_timeouts / q3_invocations", "ReturnData": True}
    assert [q["Id"] for q in sent[1:]] == ["q3_timeouts", "q3_invocations"]


def test_validate_names_the_path_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(
        "app: shop\nenvironments: {prod: {}}\n"
        "components:\n  - {name: api, kind: lambda-alias, function: shop-api}\n"
        "triggers:\n"
        "  - name: timeout-rate\n"
        "    cloudwatch:\n"
        "      metrics:\n"
        "        timeouts: {namespace: AWS/Lambda, metric: Timeouts}\n"
        "        invocations: {namespace: AWS/Lambda, metric: Invocations}\n"
        '      expression: "100 * timeouts / invocatons"\n'
        '    when: "> 10"\n'
    )
    assert main(["validate", "-f", str(file)]) == 2
    err = capsys.readouterr().err
    assert "1 problem(s)" in err
    assert "triggers[0].cloudwatch.expression: the expression names invocatons, not in metrics" in err
