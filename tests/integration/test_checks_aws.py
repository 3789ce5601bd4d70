"""The metric and logs checks against moto's server over HTTP: CloudWatch GetMetricData judged as the guard
judges a trigger, and CloudWatch Logs FilterLogEvents counted; each passes and fails."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.checks.base import CheckContext
from lastgood.checks.run import run_check
from lastgood.clock import FakeClock
from lastgood.config.models import Trigger
from lastgood.config.validation import Check

NOW = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)

TRIGGER = Trigger.model_validate(
    {
        "name": "api-errors",
        "when": "> 5%",
        "for": "2m",
        "cloudwatch": {"namespace": "AWS/Lambda", "metric": "Errors", "dimensions": {"FunctionName": "api"}},
        "per": {"namespace": "AWS/Lambda", "metric": "Invocations", "dimensions": {"FunctionName": "api"}},
        "action": "rollback",
    }
)


def put_minutes(aws: AwsClients, start: datetime, rows: list[tuple[float, float]]) -> None:
    dims = [{"Name": "FunctionName", "Value": "api"}]
    data = []
    for minute, (invocations, errors) in enumerate(rows):
        at = start + timedelta(minutes=minute)
        data += [
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": at, "Value": invocations},
            {"MetricName": "Errors", "Dimensions": dims, "Timestamp": at, "Value": errors},
        ]
    aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=data)


def context(aws: AwsClients, clock: FakeClock) -> CheckContext:
    return CheckContext("shop", "prod", aws, [TRIGGER], clock.now(), Path.cwd(), clock.now, clock.sleep)


METRIC = Check.model_validate({"name": "back-to-normal", "metric": {"trigger": "api-errors", "quiet_for": "5m"}})


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_metric_check_passes_when_the_trigger_stays_quiet(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    put_minutes(aws, NOW, [(100, 1)] * 8)  # 1% errors, under the trigger's 5%
    clock = FakeClock(NOW)
    result = run_check(METRIC, context(aws, clock))
    assert result.passed, result.detail
    assert result.data["values"] == [1.0] * 5
    assert result.seconds == 6 * 60.0  # it waited quiet_for and one period after the restore, on the fake clock


def test_metric_check_fails_while_the_trigger_breaches(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    put_minutes(aws, NOW, [(100, 1), (100, 1), (100, 20), (100, 1), (100, 1), (100, 1)])
    result = run_check(METRIC, context(aws, FakeClock(NOW)))
    assert not result.passed
    assert "1 of 5 periods breaching" in result.detail


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_metric_check_without_data_cannot_say_normal(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    result = run_check(METRIC, context(aws, FakeClock(NOW)))
    assert not result.passed and "no data" in result.detail


def put_logs(aws: AwsClients, group: str, at: datetime, messages: list[str]) -> None:
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    stamp = int(at.timestamp() * 1000)
    events = [{"timestamp": stamp + i, "message": m} for i, m in enumerate(messages)]
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=events)


def logs_check(max_matches: int) -> Check:
    return Check.model_validate(
        {
            "name": "no-errors",
            "logs": {"log_groups": ["/aws/lambda/api"], "pattern": "ERROR", "max_matches": max_matches, "within": "5m"},
        }
    )


def test_logs_check_fails_on_too_many_matches_and_passes_under_the_bound(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    put_logs(aws, "/aws/lambda/api", now - timedelta(minutes=1), ["ERROR boom", "INFO fine", "ERROR again"])
    clock = FakeClock(now)
    failed = run_check(logs_check(1), context(aws, clock))
    assert not failed.passed
    assert failed.data["matches"] == 2 and "2+ events match 'ERROR'" in failed.detail
    assert any("ERROR boom" in e for e in failed.data["examples"])
    assert run_check(logs_check(2), context(aws, clock)).passed


def test_logs_check_counts_only_its_window(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    now = datetime.now(UTC)
    put_logs(aws, "/aws/lambda/api", now - timedelta(minutes=30), ["ERROR long ago"])
    result = run_check(logs_check(0), context(aws, FakeClock(now)))
    assert result.passed, result.detail
    assert result.data["matches"] == 0


def test_logs_check_fails_on_a_missing_log_group(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    result = run_check(logs_check(0), context(aws, FakeClock(datetime.now(UTC))))
    assert not result.passed and "could not read the logs" in result.detail
