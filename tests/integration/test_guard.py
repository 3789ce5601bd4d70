"""The guard reads CloudWatch (the moto server) and rolls back by itself when a rollback trigger holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.clock import FakeClock
from lastgood.config.loader import load_runbook
from lastgood.config.models import MetricQuery
from lastgood.demo import shop
from lastgood.engine.context import EnvContext
from lastgood.engine.record import record_release
from lastgood.guard.loop import Guard
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.sources.base import SeriesRequest
from lastgood.sources.cloudwatch import CloudWatchSource

START = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)


def put_minutes(aws: AwsClients, function: str, rows: list[tuple[int, float, float]]) -> None:
    """rows: (minute offset from START, invocations, errors)."""
    data = []
    for minute, invocations, errors in rows:
        at = START + timedelta(minutes=minute)
        dims = [{"Name": "FunctionName", "Value": function}]
        data += [
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": at, "Value": invocations},
            {"MetricName": "Errors", "Dimensions": dims, "Timestamp": at, "Value": errors},
        ]
    aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=data)


def context(shop_dir: Path, clock: FakeClock) -> EnvContext:
    runbook = load_runbook(shop_dir / "lastgood.yaml")
    aws = AwsClients(runbook.environment("prod").aws)
    return EnvContext(runbook, "prod", open_ledger(resolve_url(runbook.state, runbook.base_dir)), aws, clock)


def bad_release(aws: AwsClients, ctx: EnvContext) -> None:
    record_release(ctx, "v1")
    for name in ("shop-api-prod", "shop-worker-prod"):
        shop.shift_alias(aws, name, "1", shop.publish_new_version(aws, name, "v2"), 1.0)
    record_release(ctx, "v2")


def test_cloudwatch_source_batches_and_reports_no_data(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    put_minutes(aws, "f", [(0, 100, 1), (1, 200, 2)])
    query = MetricQuery(namespace="AWS/Lambda", metric="Invocations", dimensions={"FunctionName": "f"})
    missing = MetricQuery(namespace="AWS/Lambda", metric="Invocations", dimensions={"FunctionName": "nope"})
    requests = [SeriesRequest("a", query, 60), SeriesRequest("b", missing, 60)]
    got = CloudWatchSource(aws).fetch(requests, START, START + timedelta(minutes=5))
    assert got["a"].status == "ok"
    assert got["a"].points == {START: 100.0, START + timedelta(minutes=1): 200.0}
    assert got["b"].status == "no-data"


def test_unreachable_source_is_an_error_not_an_exception(aws_env) -> None:  # type: ignore[no-untyped-def]
    from lastgood.config.models import AwsSettings

    dead = AwsClients(AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9"))
    query = MetricQuery(namespace="AWS/Lambda", metric="Errors")
    got = CloudWatchSource(dead).fetch([SeriesRequest("x", query, 60)], START, START + timedelta(minutes=1))
    assert got["x"].status == "error" and got["x"].error


def test_guard_rolls_back_when_error_rate_holds(shop_dir: Path, aws: AwsClients) -> None:
    clock = FakeClock(START)
    ctx = context(shop_dir, clock)
    bad_release(aws, ctx)
    # 1% errors for 10 minutes, then 20% from minute 10 on.
    put_minutes(aws, "shop-api-prod", [(m, 1000, 10 if m < 10 else 200) for m in range(20)])
    outcome = Guard(ctx, CloudWatchSource(aws)).run(duration=30 * 60)
    assert outcome.status == "rolled-back"
    assert outcome.fired is not None and outcome.fired.trigger == "api-errors"
    # "> 5% for 5m" on 1-minute periods: minutes 10..14 must be complete, so it fires at minute 15.
    assert outcome.detected_at == START + timedelta(minutes=15)
    assert aws.client("lambda").get_alias(FunctionName="shop-api-prod", Name="live")["FunctionVersion"] == "1"
    with ctx.ledger.session() as session:
        rollback = store.get_rollback(session, outcome.rollback.id)  # type: ignore[union-attr]
        assert rollback.requested_by == "lastgood-guard" and "api-errors" in rollback.reason
        types = [e.type for e in store.events_of(session, rollback.id)]
        assert types[0] == "guard-fired" and types[-1] == "rollback-succeeded"


def test_guard_alert_trigger_only_reports(shop_dir: Path, aws: AwsClients) -> None:
    clock = FakeClock(START)
    ctx = context(shop_dir, clock)
    bad_release(aws, ctx)
    rows = [(m, 1000, 1) for m in range(12)]
    put_minutes(aws, "shop-api-prod", rows)
    throttles = [
        {
            "MetricName": "Throttles",
            "Dimensions": [{"Name": "FunctionName", "Value": "shop-api-prod"}],
            "Timestamp": START + timedelta(minutes=m),
            "Value": 500.0,
        }
        for m in range(12)
    ]
    aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=throttles)
    outcome = Guard(ctx, CloudWatchSource(aws)).run(duration=10 * 60)
    assert outcome.status == "healthy"
    assert [a.trigger for a in outcome.alerts] == ["api-throttles"]  # reported once, not every period
    assert aws.client("lambda").get_alias(FunctionName="shop-api-prod", Name="live")["FunctionVersion"] == "2"


def test_guard_with_nothing_to_roll_back_to_refuses(shop_dir: Path, aws: AwsClients) -> None:
    clock = FakeClock(START)
    ctx = context(shop_dir, clock)
    record_release(ctx, "v1")
    put_minutes(aws, "shop-api-prod", [(m, 100, 50) for m in range(10)])
    outcome = Guard(ctx, CloudWatchSource(aws)).run(duration=10 * 60)
    assert outcome.status == "nothing-to-roll-back-to" and outcome.exit_code == 3


@pytest.mark.parametrize("missing", ["no data at all"])
def test_guard_without_data_stays_healthy(shop_dir: Path, aws: AwsClients, missing: str) -> None:
    ctx = context(shop_dir, FakeClock(START))
    bad_release(aws, ctx)
    outcome = Guard(ctx, CloudWatchSource(aws)).run(duration=10 * 60)
    assert outcome.status == "healthy" and outcome.evaluations == 11
