"""The guard reads CloudWatch (the moto server) and rolls back by itself when a rollback trigger holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.clock import FakeClock
from lastgood.config.loader import load_runbook
from lastgood.config.models import MetricQuery
from lastgood.engine.record import record_release
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.service.guard import guard_for
from lastgood.sources.base import SeriesRequest
from lastgood.sources.cloudwatch import CloudWatchSource
from lastgood.testing import shop

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


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_unreachable_source_is_an_error_not_an_exception(aws_env) -> None:  # type: ignore[no-untyped-def]
    from lastgood.config.models import AwsSettings

    dead = AwsClients(AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9"))
    query = MetricQuery(namespace="AWS/Lambda", metric="Errors")
    got = CloudWatchSource(dead).fetch([SeriesRequest("x", query, 60)], START, START + timedelta(minutes=1))
    assert got["x"].status == "error" and got["x"].error


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_guard_rolls_back_when_error_rate_holds(shop_dir: Path, aws: AwsClients) -> None:
    clock = FakeClock(START)
    ctx = context(shop_dir, clock)
    bad_release(aws, ctx)
    # 1% errors for 10 minutes, then 20% from minute 10 on.
    put_minutes(aws, "shop-api-prod", [(m, 1000, 10 if m < 10 else 200) for m in range(20)])
    outcome = guard_for(ctx, CloudWatchSource(aws)).run(duration=30 * 60)
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


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
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
    outcome = guard_for(ctx, CloudWatchSource(aws)).run(duration=10 * 60)
    assert outcome.status == "healthy"
    assert [a.trigger for a in outcome.alerts] == ["api-throttles"]  # reported once, not every period
    assert aws.client("lambda").get_alias(FunctionName="shop-api-prod", Name="live")["FunctionVersion"] == "2"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_guard_with_nothing_to_roll_back_to_refuses(shop_dir: Path, aws: AwsClients) -> None:
    clock = FakeClock(START)
    ctx = context(shop_dir, clock)
    record_release(ctx, "v1")
    put_minutes(aws, "shop-api-prod", [(m, 100, 50) for m in range(10)])
    outcome = guard_for(ctx, CloudWatchSource(aws)).run(duration=10 * 60)
    assert outcome.status == "nothing-to-roll-back-to" and outcome.exit_code == 3


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_guard_without_data_is_blind_not_healthy(shop_dir: Path, aws: AwsClients) -> None:
    ctx = context(shop_dir, FakeClock(START))
    bad_release(aws, ctx)
    outcome = guard_for(ctx, CloudWatchSource(aws)).run(duration=10 * 60)
    assert outcome.status == "blind" and outcome.exit_code == 4 and outcome.evaluations == 11
    assert "api-errors: no data (11 of 11 evaluations)" in outcome.message
    assert [t["sight"] for t in outcome.to_dict()["triggers"]] == ["blind"]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_guard_with_its_metrics_endpoint_down_is_blind(shop_dir: Path, aws: AwsClients) -> None:
    """Issue 14: the metrics endpoint down for the whole window was 'healthy', exit 0."""
    from lastgood.config.models import AwsSettings

    ctx = context(shop_dir, FakeClock(START))
    bad_release(aws, ctx)
    dead = CloudWatchSource(AwsClients(AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9")))
    outcome = guard_for(ctx, dead).run(duration=6 * 60)
    assert outcome.status == "blind" and outcome.exit_code == 4
    assert "api-errors: its source failed (7 of 7 evaluations)" in outcome.message
    assert outcome.to_dict()["triggers"][0]["last"]["state"] == "error"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_guard_cut_short_while_breaching_is_inconclusive(shop_dir: Path, aws: AwsClients) -> None:
    """Issue 14: `--for 70s` while api-errors breached at 19.6% for 2 of its 5 periods was 'healthy', exit 0."""
    ctx = context(shop_dir, FakeClock(START + timedelta(minutes=10)))
    bad_release(aws, ctx)
    put_minutes(aws, "shop-api-prod", [(m, 1000, 10 if m < 8 else 196) for m in range(11)])
    outcome = guard_for(ctx, CloudWatchSource(aws)).run(duration=70)
    assert outcome.status == "inconclusive" and outcome.exit_code == 5
    assert "api-errors: still breaching when the watch ended, before its 5m window completed" in outcome.message
    assert "19.6%" in outcome.message and "3/5 periods" in outcome.message


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_guard_watching_a_whole_window_of_good_data_is_healthy(shop_dir: Path, aws: AwsClients) -> None:
    ctx = context(shop_dir, FakeClock(START))
    bad_release(aws, ctx)
    put_minutes(aws, "shop-api-prod", [(m, 1000, 10) for m in range(-5, 12)])
    outcome = guard_for(ctx, CloudWatchSource(aws)).run(duration=5 * 60)
    assert outcome.status == "healthy" and outcome.exit_code == 0, outcome.message
    assert outcome.to_dict()["triggers"][0]["sight"] == "seen"


# --- metric math, baselines, sources by type ------------------------------------------------------------------------


@pytest.mark.slow
def test_metric_math_against_moto(aws_env, aws: AwsClients) -> None:  # type: ignore[no-untyped-def]
    """moto evaluates only an expression that names one metric id (moto/cloudwatch/metric_data_expression_parser.py),
    so this checks the wire shapes and id mapping end to end; arithmetic is pinned with Stubber below."""
    from lastgood.sources.cloudwatch import MetricMath

    put_minutes(aws, "f", [(0, 100, 1), (1, 200, 2)])
    math = MetricMath(
        expression="m1",
        metrics={
            "m1": MetricQuery(namespace="AWS/Lambda", metric="Invocations", dimensions={"FunctionName": "f"}),
            "m2": MetricQuery(namespace="AWS/Lambda", metric="Errors", dimensions={"FunctionName": "f"}),
        },
    )
    plain = MetricQuery(namespace="AWS/Lambda", metric="Errors", dimensions={"FunctionName": "f"})
    requests = [SeriesRequest("math", math, 60), SeriesRequest("plain", plain, 60), SeriesRequest("again", math, 60)]
    got = CloudWatchSource(aws).fetch(requests, START, START + timedelta(minutes=5))
    assert got["math"].points == {START: 100.0, START + timedelta(minutes=1): 200.0}
    assert got["again"].points == got["math"].points  # the same ids (m1) in two requests do not collide
    assert got["plain"].points == {START: 1.0, START + timedelta(minutes=1): 2.0}


def test_metric_math_request_shapes_with_stubber() -> None:
    import boto3
    from botocore.stub import Stubber

    from lastgood.sources.cloudwatch import MetricMath

    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    errors = MetricQuery(namespace="AWS/Lambda", metric="Errors", dimensions={"FunctionName": "f"})
    calls = MetricQuery(namespace="AWS/Lambda", metric="Invocations", dimensions={"FunctionName": "f"})
    math = MetricMath(expression="100 * m1 / m2", metrics={"m1": errors, "m2": calls})

    def stat(query_id: str, metric: str) -> dict:  # type: ignore[type-arg]
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": metric,
                    "Dimensions": [{"Name": "FunctionName", "Value": "f"}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": False,
        }

    end = START + timedelta(minutes=2)
    expected = {
        "MetricDataQueries": [
            {"Id": "q0", "Expression": "100 * q0_m1 / q0_m2", "ReturnData": True},
            stat("q0_m1", "Errors"),
            stat("q0_m2", "Invocations"),
            {"Id": "q1", "Expression": "100 * q1_m1 / q1_m2", "ReturnData": True},
            stat("q1_m1", "Errors"),
            stat("q1_m2", "Invocations"),
        ],
        "StartTime": START,
        "EndTime": end,
    }
    response = {
        "MetricDataResults": [
            {"Id": "q0", "Label": "q0", "Timestamps": [START], "Values": [2.5], "StatusCode": "Complete"},
            {
                "Id": "q1",
                "Label": "q1",
                "Timestamps": [],
                "Values": [],
                "StatusCode": "InternalError",
                "Messages": [{"Code": "DivisionByZero", "Value": "division by zero"}],
            },
        ]
    }
    stubber = Stubber(client)
    stubber.add_response("get_metric_data", response, expected)

    class Clients:
        def client(self, service: str) -> object:
            return client

    with stubber:
        got = CloudWatchSource(Clients()).fetch(  # type: ignore[arg-type]
            [SeriesRequest("rate", math, 60), SeriesRequest("broken", math, 60)], START, end
        )
    stubber.assert_no_pending_responses()
    assert got["rate"].points == {START: 2.5} and got["rate"].status == "ok"
    assert got["broken"].status == "error" and "division by zero" in (got["broken"].error or "")


BASELINE_TRIGGER = """
  - name: api-errors-vs-baseline
    cloudwatch: {namespace: AWS/Lambda, metric: Errors, dimensions: {FunctionName: shop-api-{env}}}
    when: "> 5x baseline"
    baseline: 10m
    for: 3m
    period: 1m
    severity: critical
    action: rollback
"""


@pytest.mark.slow
def test_guard_compares_with_the_baseline_before_the_live_release(shop_dir: Path, aws: AwsClients) -> None:
    (shop_dir / "lastgood.yaml").write_text((shop_dir / "lastgood.yaml").read_text() + BASELINE_TRIGGER)
    ctx = context(shop_dir, FakeClock(START))
    bad_release(aws, ctx)  # v2 is recorded at START: the baseline is START-10m .. START
    # Before: 2 errors a minute. After: 20 a minute, 2% of 1000 calls, so the "> 5%" trigger stays quiet.
    put_minutes(aws, "shop-api-prod", [(m, 1000, 2) for m in range(-10, 0)] + [(m, 1000, 20) for m in range(10)])
    outcome = guard_for(ctx).run(duration=10 * 60)  # no source given: sources/registry.py builds CloudWatch's
    assert outcome.status == "rolled-back", outcome.message
    assert outcome.fired is not None and outcome.fired.trigger == "api-errors-vs-baseline"
    assert "baseline 2" in outcome.fired.detail
    assert outcome.detected_at == START + timedelta(minutes=3)  # minutes 0, 1, 2 complete


@pytest.mark.slow
def test_guard_builds_one_source_per_type(shop_dir: Path, aws: AwsClients) -> None:
    from lastgood.sources.http_probe import ProbeSource
    from lastgood.sources.prometheus import PrometheusSource

    extra = """
  - name: prom
    prometheus: {url: "http://127.0.0.1:9", query: "sum(up)"}
    when: "> 1"
  - name: probe
    probe: {url: "http://127.0.0.1:9/", rate: 1}
    when: "> 50%"
    period: 2s
    for: 2s
"""
    (shop_dir / "lastgood.yaml").write_text((shop_dir / "lastgood.yaml").read_text() + extra)
    ctx = context(shop_dir, FakeClock(START))
    guard = guard_for(ctx, CloudWatchSource(aws))
    try:
        assert sorted(guard.sources) == ["cloudwatch", "probe", "prometheus"]
        assert isinstance(guard.sources["prometheus"], PrometheusSource)
        assert isinstance(guard.sources["probe"], ProbeSource)
        states = {v.trigger: v.state for v in guard.evaluate()}
        assert states["prom"] == "error"  # nothing listens on port 9: an error verdict, not an exception
        assert states["probe"] == "no-data"  # the fake clock's periods are long before the probe started
    finally:
        from lastgood.sources.registry import close_sources

        close_sources(guard.sources)
