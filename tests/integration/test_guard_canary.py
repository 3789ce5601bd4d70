"""The canary judge in `lastgood guard`: a live alias sending part of its traffic to a second version is judged
version against version, on the moto server with per-version 1-second Lambda metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from canary_fixture import API, CANARY, canary_context
from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.engine.record import record_release
from lastgood.ledger import store
from lastgood.testing import shop
from lastgood.testing.traffic import FunctionTraffic


def canary_in_flight(aws: AwsClients, directory: Path, weight: float = 0.2) -> str:
    """Version 2 takes `weight` of the alias's traffic and is recorded as the live release v2."""
    version = shop.publish_new_version(aws, API, "v2")
    shop.shift_alias(aws, API, "1", version, weight)
    record_release(canary_context(directory), "v2")
    return version


def guard(capsys: pytest.CaptureFixture[str], directory: Path, seconds: int) -> tuple[int, dict[str, Any]]:
    code = main(["guard", "prod", "--for", f"{seconds}s", "-f", str(directory / "lastgood.yaml"), "--output", "json"])
    out, _err = capsys.readouterr()
    return code, json.loads(out)


def alias(aws: AwsClients) -> tuple[str, dict[str, Any]]:
    live = aws.client("lambda").get_alias(FunctionName=API, Name="live")
    return str(live["FunctionVersion"]), dict((live.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


@pytest.mark.slow
def test_the_guard_rolls_back_a_canary_worse_than_its_baseline(  # type: ignore[no-untyped-def]
    canary_dir: Path, aws: AwsClients, version_traffic: FunctionTraffic, capsys
) -> None:
    # 0.5% -> 5% errors on 20% of traffic: the whole function shows about 1.4%, far below the file's 5%.
    version = canary_in_flight(aws, canary_dir)
    version_traffic.error_rate_by_version[version] = 0.05
    code, outcome = guard(capsys, canary_dir, 30)
    assert code == 1 and outcome["status"] == "rolled-back", outcome
    fired = outcome["fired"]
    assert fired["trigger"] == "canary-judge" and fired["action"] == "rollback"
    assert "errors worse on version" in fired["detail"] and "api at 20%" in fired["detail"]
    (judged,) = outcome["canary"]
    assert judged["state"] == "rollback" and judged["canary_version"] == version and judged["baseline_version"] == "1"
    assert judged["statistic"] >= judged["threshold"] and judged["ratio"] > 1.5
    assert alias(aws) == ("1", {})
    with canary_context(canary_dir).ledger.session() as session:
        release = store.get_release(session, "shop", "prod", "v2")
        assert release.bad
        events = [e for e in store.events_since(session, "shop", "prod") if e.type == "guard-fired"]
    assert events and events[-1].data["trigger"] == "canary-judge"


@pytest.mark.slow
def test_the_guard_alerts_instead_of_rolling_back_when_both_versions_are_equally_bad(  # type: ignore[no-untyped-def]
    canary_dir: Path, aws: AwsClients, version_traffic: FunctionTraffic, capsys
) -> None:
    version = canary_in_flight(aws, canary_dir)
    version_traffic.error_rate_by_version.update({"1": 0.10, version: 0.10})
    code, outcome = guard(capsys, canary_dir, 9)
    assert code == 0 and outcome["status"] == "healthy", outcome
    assert outcome["rollback"] is None
    assert [a["trigger"] for a in outcome["alerts"]] == ["api-errors"]
    (judged,) = outcome["canary"]
    assert judged["state"] == "not-the-cause" and judged["statistic"] < judged["threshold"]
    assert alias(aws) == ("1", {version: pytest.approx(0.2)})
    with canary_context(canary_dir).ledger.session() as session:
        alerts = [e for e in store.events_since(session, "shop", "prod") if e.type == "guard-alert"]
        assert not store.get_release(session, "shop", "prod", "v2").bad
    assert any("not the release" in e.message for e in alerts)


@pytest.mark.slow
def test_without_a_canary_in_flight_the_guard_judges_triggers_only(  # type: ignore[no-untyped-def]
    canary_dir: Path, aws: AwsClients, version_traffic: FunctionTraffic, capsys
) -> None:
    version = canary_in_flight(aws, canary_dir, weight=1.0)  # all traffic on version 2: nothing to compare with
    version_traffic.error_rate_by_version[version] = 0.10
    code, outcome = guard(capsys, canary_dir, 15)
    assert outcome["canary"] == []
    assert code == 1 and outcome["fired"]["trigger"] == "api-errors", outcome


@pytest.mark.slow
def test_without_a_canary_block_a_weighted_alias_is_not_judged(  # type: ignore[no-untyped-def]
    canary_dir: Path, aws: AwsClients, version_traffic: FunctionTraffic, capsys
) -> None:
    file = canary_dir / "lastgood.yaml"
    file.write_text(file.read_text().replace(CANARY, ""))
    version = canary_in_flight(aws, canary_dir)
    version_traffic.error_rate_by_version[version] = 0.05
    code, outcome = guard(capsys, canary_dir, 6)
    assert code == 0 and outcome["canary"] == [] and outcome["fired"] is None, outcome


@pytest.mark.slow
def test_a_bad_datapoint_makes_the_judge_blind_once_reported_then_it_judges_again(  # type: ignore[no-untyped-def]
    canary_dir: Path, aws: AwsClients, version_traffic: FunctionTraffic, capsys
) -> None:
    """A negative error count in one period (a broken exporter): the guard reports the judge blind once, as a
    `guard-alert`, does not roll back, and the judge goes on with the next good period."""
    import threading
    from datetime import UTC, datetime, timedelta

    version = canary_in_flight(aws, canary_dir)

    def inject() -> None:
        dimensions = [
            {"Name": "FunctionName", "Value": API},
            {"Name": "Resource", "Value": f"{API}:live"},
            {"Name": "ExecutedVersion", "Value": version},
        ]
        # A period 2 s ahead: the datum is stored before the judge reads that period, however slow the put.
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
        datum = {"MetricName": "Errors", "Dimensions": dimensions, "Timestamp": at, "Value": -500.0, "Unit": "Count"}
        aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=[datum])

    timer = threading.Timer(4.0, inject)
    timer.start()
    try:
        code, outcome = guard(capsys, canary_dir, 10)
    finally:
        timer.cancel()
    assert code == 0 and outcome["status"] == "healthy", outcome
    (blind,) = outcome["blind"]
    assert "canary errors is negative" in blind and "judges again when good data return" in blind
    (judged,) = outcome["canary"]
    assert judged["state"] in ("continue", "warming-up") and judged["blind"] is None
    with canary_context(canary_dir).ledger.session() as session:
        alerts = [e for e in store.events_since(session, "shop", "prod") if e.type == "guard-alert"]
    assert [e.message for e in alerts if "blind" in e.message] == [blind]
