"""The canary judge in `lastgood deploy`, on the moto server, with per-version 1-second Lambda metrics.

Stubber-only path: the CloudWatch latency statistics (percentiles `p50`..`p99` and percentile rank `PR(:x)`):
moto 5.2's GetMetricData computes only Sum, Average, Minimum, Maximum and SampleCount.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from canary_fixture import API, CANARY
from canary_fixture import canary_context as context
from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.config.loader import parse_runbook
from lastgood.guard.canary import CanaryFeed
from lastgood.ledger import store
from lastgood.sources.cloudwatch import CloudWatchSource
from lastgood.testing import shop
from lastgood.testing.traffic import FunctionTraffic

pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def deploy(capsys: pytest.CaptureFixture[str], directory: Path, version: str, pause: str) -> tuple[int, dict[str, Any]]:
    args = ["deploy", "prod", "-c", "api", "--version", version, "--steps", "10,50,100", "--pause", pause, "--yes"]
    code = main([*args, "-f", str(directory / "lastgood.yaml"), "--output", "json"])
    out, _err = capsys.readouterr()
    return code, json.loads(out)


def alias(aws: AwsClients) -> tuple[str, dict[str, Any]]:
    live = aws.client("lambda").get_alias(FunctionName=API, Name="live")
    return str(live["FunctionVersion"]), dict((live.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def test_a_canary_worse_than_the_baseline_is_aborted_by_the_judge_below_the_absolute_threshold(  # type: ignore[no-untyped-def]
    canary_dir: Path, aws: AwsClients, version_traffic: FunctionTraffic, capsys
) -> None:
    # 0.5% -> 5% errors on the new version: at 10% of traffic the whole function shows about 1%, far below 5%.
    version = shop.publish_new_version(aws, API, "v2")
    version_traffic.error_rate_by_version[version] = 0.05
    code, result = deploy(capsys, canary_dir, version, "30s")
    assert code == 1, result
    assert result["status"] == "aborted" and result["current_step"] == 0, result
    decision = result["decisions"][-1]
    assert decision["decision"] == "canary-rollback", decision
    # The absolute trigger never fired: the judge alone saw it.
    errors_trigger = next(v for v in decision["verdicts"] if v["trigger"] == "api-errors")
    assert errors_trigger["state"] != "firing"
    canary = decision["canary"]
    assert canary["state"] == "rollback" and canary["metric"] == "errors"
    assert canary["statistic"] >= canary["threshold"] == pytest.approx(4.605, abs=0.01)  # log(1 / 0.01)
    assert canary["ratio"] > 1.5
    assert canary["canary_version"] == version and canary["baseline_version"] == "1"
    streams = canary["evidence"]["errors"]["streams"]["errors"]
    assert streams["canary_events"] > 0 and streams["intervals"] >= 1  # the baseline may have had no error yet
    assert canary["periods_judged"] > 2  # past the warmup
    assert "e-value" in decision["reason"] and "canary/baseline ratio" in decision["reason"]
    assert result["rollback"]["status"] == "succeeded"
    assert alias(aws) == ("1", {})
    with context(canary_dir).ledger.session() as session:
        bad = store.get_release(session, "shop", "prod", version)
        assert bad.bad and "canary judge" in (bad.bad_reason or "")
        judged = [e for e in store.events_since(session, "shop", "prod") if e.type == "deploy-judged"]
        rows = store.events_since(session, "shop", "prod")
    assert judged[-1].data["decision"] == "canary-rollback"
    assert judged[-1].data["canary"]["statistic"] == canary["statistic"]
    assert not any(e.type == "deploy-alert" for e in rows)


class SlackReceiver:
    """A local Slack incoming webhook: records each message's text."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.texts.append(str(body.get("text", "")))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slack() -> Iterator[SlackReceiver]:
    receiver = SlackReceiver()
    yield receiver
    receiver.close()


def test_a_good_canary_in_a_shared_incident_is_not_rolled_back(  # type: ignore[no-untyped-def]
    canary_dir: Path, aws: AwsClients, version_traffic: FunctionTraffic, slack: SlackReceiver, capsys
) -> None:
    # Both versions fail 10% of requests (a shared dependency is down): the absolute trigger fires, yet the new
    # version is no worse than the old one. The team is told, on the file's Slack channel.
    file = canary_dir / "lastgood.yaml"
    file.write_text(file.read_text() + f"notifications:\n  channels:\n    - slack: {{webhook_url: {slack.url}}}\n")
    version = shop.publish_new_version(aws, API, "v2")
    version_traffic.error_rate_by_version.update({"1": 0.10, version: 0.10})
    code, result = deploy(capsys, canary_dir, version, "3s")
    assert code == 0, result
    assert result["status"] == "promoted" and result["rollback"] is None, result
    # At each step: one decision when the trigger fires (the alert), one at the end of the step.
    assert [d["percent"] for d in result["decisions"]] == [10.0, 10.0, 50.0, 50.0]
    for decision in result["decisions"]:
        assert decision["decision"] == "not-the-cause", decision
        fired = next(v for v in decision["verdicts"] if v["trigger"] == "api-errors")
        assert fired["state"] == "firing"
        assert decision["canary"]["state"] == "not-the-cause"
        assert decision["canary"]["statistic"] < decision["canary"]["threshold"]
        assert "both versions are equally bad" in decision["reason"]
    assert alias(aws) == (version, {})
    with context(canary_dir).ledger.session() as session:
        live = store.live_release(session, "shop", "prod")
        assert live is not None and live.label == version and not live.bad
        alerts = [e for e in store.events_since(session, "shop", "prod") if e.type == "deploy-alert"]
    assert alerts and "not the release" in alerts[0].message
    assert alerts[0].data["canary"]["state"] == "not-the-cause"
    deadline = time.monotonic() + 10
    while not any("not-the-cause" in t or "not the release" in t for t in slack.texts) and time.monotonic() < deadline:
        time.sleep(0.1)
    told = [t for t in slack.texts if "Alert, not the release" in t]
    assert told, slack.texts
    assert "api-errors" in told[0] and result["id"] in told[0] and "no rollback" in told[0]


def test_without_a_canary_block_a_shared_incident_still_aborts(  # type: ignore[no-untyped-def]
    canary_dir: Path, aws: AwsClients, version_traffic: FunctionTraffic, capsys
) -> None:
    file = canary_dir / "lastgood.yaml"
    file.write_text(file.read_text().replace(CANARY, ""))
    version = shop.publish_new_version(aws, API, "v2")
    version_traffic.error_rate_by_version.update({"1": 0.10, version: 0.10})
    code, result = deploy(capsys, canary_dir, version, "3s")
    assert code == 1 and result["status"] == "aborted", result
    assert result["decisions"][-1]["decision"] == "fired" and result["decisions"][-1]["canary"] is None


def test_the_feed_reads_per_version_counts_from_cloudwatch(canary_dir: Path, aws: AwsClients, version_traffic) -> None:  # type: ignore[no-untyped-def]
    version = shop.publish_new_version(aws, API, "v2")
    shop.shift_alias(aws, API, "1", version, 0.25)
    ctx = context(canary_dir)
    canary = ctx.runbook.canary_for("prod")
    assert canary is not None
    started = datetime.now(UTC)
    feed = CanaryFeed(canary, version, "1", CloudWatchSource(ctx.aws), started, {"function": API, "alias": "live"})
    time.sleep(3.2)
    readings = feed.poll(datetime.now(UTC))
    complete = [r.interval for r in readings if r.interval is not None]
    assert len(complete) >= 2, readings
    for interval in complete:
        total = interval.canary_requests + interval.baseline_requests
        assert 300 < total < 500  # the simulator's 400 a second, split between the two versions
        assert interval.share is not None and 0.15 < interval.share < 0.35


# A file judging p99 latency per version, for the CloudWatch latency path (Stubber: moto has no percentiles).
LATENCY_RUNBOOK = """\
app: shop
environments: {prod: {}}
components: [{name: api, kind: lambda-alias, function: shop-api-{env}}]
canary:
  period: 1m
  warmup: 0s
  latency: [p99]
  cloudwatch:
    requests: {namespace: AWS/Lambda, metric: Invocations, dimensions: {ExecutedVersion: "{version}"}}
    errors: {namespace: AWS/Lambda, metric: Errors, dimensions: {ExecutedVersion: "{version}"}}
    latency: {namespace: AWS/Lambda, metric: Duration, dimensions: {ExecutedVersion: "{version}"}}
"""


def test_cloudwatch_latency_uses_baseline_percentiles_then_percentile_ranks(aws: AwsClients) -> None:
    """Stubber: moto has no percentile statistics. The request shapes are the ones real CloudWatch takes."""
    canary = parse_runbook(LATENCY_RUNBOOK).canary_for("prod")
    assert canary is not None
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    minute = timedelta(minutes=1)

    def result(query_id: str, value: float, at: datetime) -> dict[str, Any]:
        return {"Id": query_id, "Label": query_id, "Timestamps": [at], "Values": [value], "StatusCode": "Complete"}

    client = aws.client("cloudwatch")
    with Stubber(client) as stub:
        counts = [("q0", 100.0), ("q1", 900.0), ("q2", 1.0), ("q3", 9.0)]  # requests c/b, errors c/b
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [result(i, v, t0) for i, v in counts]},
            {"MetricDataQueries": ANY, "StartTime": t0 - minute, "EndTime": t0 + minute},
        )
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [
                    result("q0", 250.0, t0 - minute),  # the baseline's p99 in the previous minute: 250 ms
                    result("q1", 100.0, t0),  # SampleCount, canary
                    result("q2", 900.0, t0),  # SampleCount, baseline
                ]
            },
            {"MetricDataQueries": ANY, "StartTime": t0 - minute, "EndTime": t0 + minute},
        )
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [result("q0", 90.0, t0), result("q1", 99.0, t0)]},  # % at or below 250 ms
            {"MetricDataQueries": ANY, "StartTime": t0, "EndTime": t0 + minute},
        )
        feed = CanaryFeed(canary, "8", "7", CloudWatchSource(aws), t0)
        (reading,) = feed.poll(t0 + minute)
        stub.assert_no_pending_responses()
    assert reading.interval is not None
    assert dict(reading.thresholds) == {"p99": 250.0}
    assert dict(reading.interval.canary_slow) == {"p99": pytest.approx(10.0)}  # 100 * (1 - 0.90)
    assert dict(reading.interval.baseline_slow) == {"p99": pytest.approx(9.0)}  # 900 * (1 - 0.99)
    assert reading.interval.share == pytest.approx(0.1)


def test_cloudwatch_latency_queries_name_the_statistics(aws: AwsClients) -> None:
    """The exact stats sent: p99 of the baseline, SampleCount of both, then PR(:threshold) of both."""
    canary = parse_runbook(LATENCY_RUNBOOK).canary_for("prod")
    assert canary is not None
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    sent: list[list[tuple[str, str, str]]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(
            [
                (
                    q["MetricStat"]["Metric"]["MetricName"],
                    q["MetricStat"]["Stat"],
                    q["MetricStat"]["Metric"]["Dimensions"][0]["Value"],
                )
                for q in params["MetricDataQueries"]
            ]
        )

    client = aws.client("cloudwatch")
    client.meta.events.register("provide-client-params.cloudwatch.GetMetricData", record)
    try:
        with Stubber(client) as stub:
            stamp = t0
            for ids in (("q0", "q1", "q2", "q3"), ("q0", "q1", "q2"), ("q0", "q1")):
                values = {"q0": 100.0, "q1": 900.0, "q2": 1.0, "q3": 9.0} if len(ids) == 4 else {}
                results = []
                for i in ids:
                    at = t0 - timedelta(minutes=1) if (len(ids) == 3 and i == "q0") else stamp
                    results.append(
                        {"Id": i, "Timestamps": [at], "Values": [values.get(i, 50.0)], "StatusCode": "Complete"}
                    )
                stub.add_response("get_metric_data", {"MetricDataResults": results})
            CanaryFeed(canary, "8", "7", CloudWatchSource(aws), t0).poll(t0 + timedelta(minutes=1))
    finally:
        client.meta.events.unregister("provide-client-params.cloudwatch.GetMetricData", record)
    assert sent[0] == [
        ("Invocations", "Sum", "8"),
        ("Invocations", "Sum", "7"),
        ("Errors", "Sum", "8"),
        ("Errors", "Sum", "7"),
    ]
    assert sent[1] == [("Duration", "p99", "7"), ("Duration", "SampleCount", "8"), ("Duration", "SampleCount", "7")]
    assert sent[2] == [("Duration", "PR(:50)", "8"), ("Duration", "PR(:50)", "7")]


def test_a_bad_datapoint_makes_the_judge_blind_once_told_then_the_deployment_goes_on(  # type: ignore[no-untyped-def]
    canary_dir: Path, aws: AwsClients, version_traffic: FunctionTraffic, slack: SlackReceiver, capsys
) -> None:
    """A negative error count in one period of the 10% step: one `deploy-alert` and one `canary-blind` message
    on the file's channel, no abort; the judge judges the next periods and the deployment is promoted."""
    file = canary_dir / "lastgood.yaml"
    file.write_text(file.read_text() + f"notifications:\n  channels:\n    - slack: {{webhook_url: {slack.url}}}\n")
    version = shop.publish_new_version(aws, API, "v2")

    def inject() -> None:
        dimensions = [
            {"Name": "FunctionName", "Value": API},
            {"Name": "Resource", "Value": f"{API}:live"},
            {"Name": "ExecutedVersion", "Value": version},
        ]
        # A period 1 s ahead: the datum is stored before the judge reads that period, however slow the put.
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
        datum = {"MetricName": "Errors", "Dimensions": dimensions, "Timestamp": at, "Value": -500.0, "Unit": "Count"}
        aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[datum])

    def when_shifted() -> None:  # once the new version takes traffic, poison one of its periods
        deadline = time.monotonic() + 20
        while alias(aws)[1].get(version) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)
        inject()

    poisoner = threading.Thread(target=when_shifted, daemon=True)
    poisoner.start()
    code, result = deploy(capsys, canary_dir, version, "5s")
    poisoner.join(timeout=1)
    assert code == 0 and result["status"] == "promoted", result
    with context(canary_dir).ledger.session() as session:
        alerts = [e for e in store.events_since(session, "shop", "prod") if e.type == "deploy-alert"]
    blind = [e for e in alerts if "blind" in e.message]
    assert len(blind) == 1 and "canary errors is negative" in blind[0].message, [e.message for e in alerts]
    deadline = time.monotonic() + 10
    while not any("Canary judge blind" in t for t in slack.texts) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len([t for t in slack.texts if "Canary judge blind" in t]) == 1, slack.texts
