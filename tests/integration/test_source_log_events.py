"""`log_events:` matching log events counted per period, on moto's server (FilterLogEvents with single terms
and exact phrases, which moto evaluates), plus the bounds and failures as error Series."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.clock import FakeClock
from lastgood.config.loader import load_runbook
from lastgood.config.models import Trigger
from lastgood.engine.record import record_release
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.service.guard import guard_for
from lastgood.sources.base import SeriesRequest
from lastgood.sources.log_events import LogEventsQuery, LogEventsSource
from lastgood.sources.registry import build_source
from lastgood.testing import shop

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
GROUP = "/aws/lambda/shop-api"


def put_events(aws: AwsClients, events: list[tuple[float, str]], group: str = GROUP) -> None:
    """events: (seconds after START, message)."""
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    stamped = [{"timestamp": int((START.timestamp() + at) * 1000), "message": text} for at, text in events]
    logs.put_log_events(logGroupName=group, logStreamName="s1", logEvents=sorted(stamped, key=lambda e: e["timestamp"]))


EVENTS = [
    (5, "ERROR db: connection refused"),
    (59.999, "INFO ok"),
    (60, "ERROR timeout"),  # the second period's first instant
    (75, "INFO ok"),
    (130, "ERROR db: connection refused"),
    (200, "ERROR after the window"),
]


def fetch(aws: AwsClients, **query: object) -> dict[str, object]:
    request = SeriesRequest("errors", LogEventsQuery.model_validate({"log_group": GROUP, **query}), 60)
    got = LogEventsSource(aws).fetch([request], START, START + timedelta(minutes=3))["errors"]
    return {
        "status": got.status,
        "error": got.error,
        "counts": [got.points.get(START + timedelta(minutes=m)) for m in range(3)],
    }


@pytest.mark.slow
def test_matching_events_are_counted_in_their_period(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    put_events(aws, EVENTS)
    assert fetch(aws, pattern="ERROR")["counts"] == [1.0, 1.0, 1.0]
    assert fetch(aws, pattern='"connection refused"')["counts"] == [1.0, 0.0, 1.0]  # 0 where nothing matched
    assert fetch(aws)["counts"] == [2.0, 2.0, 1.0]  # no pattern: every event


@pytest.mark.slow
def test_failures_and_the_bound_are_error_series(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    put_events(aws, EVENTS)
    too_many = fetch(aws, pattern="ERROR", max_events=2)
    assert too_many["status"] == "error" and "more than 2 matching events" in str(too_many["error"])
    missing = fetch(aws, log_group="/aws/lambda/nope")
    assert missing["status"] == "error" and "/aws/lambda/nope" in str(missing["error"])


@pytest.mark.slow
def test_the_same_query_in_two_requests_is_read_once(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    put_events(aws, EVENTS)
    calls: list[str] = []
    aws.client("logs").meta.events.register("before-call.logs.FilterLogEvents", lambda **kw: calls.append("x"))
    query = LogEventsQuery(log_group=GROUP, pattern="ERROR")
    requests = [SeriesRequest("a", query, 60), SeriesRequest("b", query, 120)]
    got = LogEventsSource(aws).fetch(requests, START, START + timedelta(minutes=4))
    assert calls == ["x"]
    assert list(got["a"].points.values()) == [1.0, 1.0, 1.0, 1.0] and list(got["b"].points.values()) == [2.0, 2.0]


def test_a_log_events_trigger_in_the_file() -> None:
    trigger = Trigger.model_validate(
        {"name": "errors-in-logs", "log_events": {"log_group": GROUP, "pattern": "ERROR"}, "when": "> 20 per 5m"}
    )
    assert trigger.source_type == "log_events" and trigger.period == 300
    with pytest.raises(ValueError, match="log_group"):
        Trigger.model_validate({"name": "n", "log_events": {"pattern": "ERROR"}, "when": "> 1"})
    with pytest.raises(ValueError, match="'per' does not apply to a log_events trigger"):
        Trigger.model_validate(
            {"name": "n", "log_events": {"log_group": GROUP}, "per": {"log_group": GROUP}, "when": "> 1"}
        )
    assert isinstance(build_source("log_events", AwsClients(), [trigger]), LogEventsSource)


LOG_TRIGGER = """triggers:
  - name: errors-in-logs
    log_events: {log_group: /aws/lambda/shop-api-{env}, pattern: ERROR}
    when: "> 20 per 5m"
    severity: critical
    action: rollback
"""


@pytest.mark.slow
def test_the_guard_rolls_back_on_errors_counted_from_logs(shop_dir: Path, aws: AwsClients) -> None:
    """The seeds' 'errors counted from logs', end to end: a release goes bad, its log fills with ERROR lines, the
    guard counts them per 5 minutes on moto's server and rolls the release back."""
    file = shop_dir / "lastgood.yaml"
    file.write_text(re.sub(r"triggers:\n(?:  .*\n)+", LOG_TRIGGER, file.read_text()))
    runbook = load_runbook(file)
    ctx = EnvContext(runbook, "prod", open_ledger(resolve_url(runbook.state, runbook.base_dir)), aws, FakeClock(START))
    record_release(ctx, "v1")
    for name in ("shop-api-prod", "shop-worker-prod"):
        shop.shift_alias(aws, name, "1", shop.publish_new_version(aws, name, "v2"), 1.0)
    record_release(ctx, "v2")
    quiet = [(m * 60.0, "ERROR now and then") for m in range(10)]  # 5 in 5 minutes: under 20
    bad = [(600 + s * 10.0, "ERROR db: connection refused") for s in range(60)]  # 30 in each 5 minutes
    put_events(aws, quiet + bad, "/aws/lambda/shop-api-prod")
    outcome = guard_for(ctx).run(duration=25 * 60)
    assert outcome.status == "rolled-back", outcome.message
    assert outcome.fired is not None and outcome.fired.trigger == "errors-in-logs" and outcome.fired.value >= 20
    assert aws.client("lambda").get_alias(FunctionName="shop-api-prod", Name="live")["FunctionVersion"] == "1"
