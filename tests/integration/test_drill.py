"""`lastgood drill`: a bad release re-deployed on purpose, caught by the guard on real (moto) CloudWatch metrics
written by the traffic simulator, rolled back, and recorded apart from real incidents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.ledger.tables import DrillRow
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint
from lastgood.testing.traffic import FunctionTraffic, TrafficSimulator

POLICY = """
policy:
  targets:
    mean_time_to_restore: 15m
    mean_time_to_detect: 1m
    rollback_time: {critical: 15m, high: 15m, medium: 15m, low: 15m}
  drills: {guard_for: 30s}
"""


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def setup(tmp_path: Path, endpoint: LocalEndpoint, aws: AwsClients, monkeypatch: pytest.MonkeyPatch) -> str:
    app = shop.create_shop(aws, "staging")
    text = shop.runbook_text(endpoint.url, "sqlite:///state.db", period="1s", for_="3s") + POLICY
    (tmp_path / "lastgood.yaml").write_text(text)
    monkeypatch.setenv("LASTGOOD_FILE", str(tmp_path / "lastgood.yaml"))
    assert main(["release", "record", "staging", "--version", "v1", "-o", "json"]) == 0
    bad = shop.publish_new_version(aws, app.functions[0], "v2")
    shop.shift_alias(aws, app.functions[0], "1", bad, 1.0)
    assert main(["release", "record", "staging", "--version", "v2", "-o", "json"]) == 0
    assert main(["rollback", "staging", "--yes", "-o", "json"]) == 0  # v2 is now marked bad
    return bad


def test_drill_catches_the_bad_release_and_records_times(tmp_path, aws_env, aws, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bad = setup(tmp_path, aws_env, aws, monkeypatch)
    traffic = TrafficSimulator(aws, [FunctionTraffic("shop-api-staging", 200.0, {bad: 0.4})])
    traffic.start()
    try:
        capsys.readouterr()
        code = main(["drill", "staging", "--yes", "-o", "json"])
    finally:
        traffic.stop()
    result = json.loads(capsys.readouterr().out)
    assert code == 0, result
    assert result["status"] == "passed" and "re-deployed release v2" in result["notes"]
    assert 0 < result["detect_seconds"] < 30 and result["restore_seconds"] >= 0
    assert result["targets"]["restore_seconds"] == 900 and result["targets"]["detect_seconds"] == 60
    assert result["targets"]["rollback_time_seconds"] == 900 and result["targets"]["severity"] is not None
    assert result["targets"]["results"] == {
        "detect": "met",
        "restore": "met",
        "rollback_time": "met",
        "rto": "no target",
    }
    assert aws.client("lambda").get_alias(FunctionName="shop-api-staging", Name="live")["FunctionVersion"] == "1"
    ledger = open_ledger(resolve_url("sqlite:///state.db", tmp_path))
    with ledger.session() as session:
        assert session.get(DrillRow, result["id"]).status == "passed"  # type: ignore[union-attr]
        rollbacks = store.list_rollbacks(session, "shop", "staging")
        drills = [r for r in rollbacks if r.drill]
        assert len(drills) == 2  # the re-deploy of the bad release and the guard's rollback
        assert next(r for r in rollbacks if not r.drill).requested_by == "tester"  # the real one stays real
        baseline = store.get_release(session, "shop", "staging", f"{result['id']}-good")
        assert not baseline.bad  # re-deploying the bad release judged nothing about the drill's baseline
        assert store.live_release(session, "shop", "staging").label == baseline.label  # type: ignore[union-attr]


def test_a_failing_drill_leaves_the_environment_on_its_good_release(  # type: ignore[no-untyped-def]
    tmp_path, aws_env, aws, capsys, monkeypatch
) -> None:
    setup(tmp_path, aws_env, aws, monkeypatch)
    path = tmp_path / "lastgood.yaml"
    path.write_text(path.read_text().replace("guard_for: 30s", "guard_for: 3s"))
    capsys.readouterr()
    code = main(["drill", "staging", "--yes", "-o", "json"])  # no traffic: the guard never fires, the drill fails
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["status"] == "failed", result
    assert f"restored {result['id']}-good" in result["notes"]
    assert aws.client("lambda").get_alias(FunctionName="shop-api-staging", Name="live")["FunctionVersion"] == "1"
    ledger = open_ledger(resolve_url("sqlite:///state.db", tmp_path))
    with ledger.session() as session:
        baseline = store.get_release(session, "shop", "staging", f"{result['id']}-good")
        assert not baseline.bad
        assert store.live_release(session, "shop", "staging").label == baseline.label  # type: ignore[union-attr]
        assert session.get(DrillRow, result["id"]).status == "failed"  # type: ignore[union-attr]
        assert all(r.status == "succeeded" for r in store.list_rollbacks(session, "shop", "staging"))


def test_drill_is_refused_on_protected_environments(tmp_path, aws_env, aws, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    shop.create_shop(aws, "prod")
    (tmp_path / "lastgood.yaml").write_text(shop.runbook_text(aws_env.url, "sqlite:///state.db") + POLICY)
    monkeypatch.setenv("LASTGOOD_FILE", str(tmp_path / "lastgood.yaml"))
    assert main(["drill", "prod"]) == 3
    assert "protected" in capsys.readouterr().err
