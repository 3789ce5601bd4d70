"""record -> bad deploy -> plan -> rollback -> verify, through the CLI, against the moto server over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.testing import shop


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code, out, _err = run(capsys, *args, "--output", "json")
    return code, json.loads(out)


def bad_deploy(aws: AwsClients, weight: float = 1.0) -> None:
    s = shop.Shop("prod", ("shop-api-prod", "shop-worker-prod"), "/shop/prod/api/", "shop/prod/db")
    for name in s.functions:
        version = shop.publish_new_version(aws, name, "v2")
        shop.shift_alias(aws, name, "1", version, weight)
    shop.deploy_config_change(aws, s, "v2")


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_record_plan_rollback_verify(shop_dir: Path, aws: AwsClients, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    code, v1 = run_json(capsys, "release", "record", "prod", "--version", "v1")
    assert code == 0
    assert v1["components"]["api"]["state"] == {"version": "1", "weights": {}}
    secret_before = aws.client("secretsmanager").describe_secret(SecretId="shop/prod/db")

    bad_deploy(aws, weight=0.1)
    assert run_json(capsys, "release", "record", "prod", "--version", "v2")[0] == 0

    code, plan = run_json(capsys, "plan", "prod")
    assert code == 0
    steps = {s["component"]: s for s in plan["steps"]}
    assert set(steps) == {"api", "worker", "api-config", "db-credentials"}
    assert plan["from_release"] == "v2" and plan["to_release"] == "v1"
    assert steps["api-config"]["waits_for"] == ["worker"]
    # plan changed nothing
    alias = aws.client("lambda").get_alias(FunctionName="shop-api-prod", Name="live")
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.1}

    code, result = run_json(capsys, "rollback", "prod", "--yes")
    assert result["status"] == "succeeded", json.dumps(result)
    assert code == 0
    assert sorted(result["done"]) == ["api", "api-config", "db-credentials", "worker"]

    lam = aws.client("lambda")
    for name in ("shop-api-prod", "shop-worker-prod"):
        alias = lam.get_alias(FunctionName=name, Name="live")
        assert alias["FunctionVersion"] == "1"
        assert not alias.get("RoutingConfig", {}).get("AdditionalVersionWeights")
    value = aws.client("ssm").get_parameter(Name="/shop/prod/api/pricing-engine")["Parameter"]["Value"]
    assert value == "v1"
    stages = aws.client("secretsmanager").describe_secret(SecretId="shop/prod/db")["VersionIdsToStages"]
    current = [v for v, s in stages.items() if "AWSCURRENT" in s]
    before = [v for v, s in secret_before["VersionIdsToStages"].items() if "AWSCURRENT" in s]
    assert current == before

    code, listing = run_json(capsys, "release", "list", "prod")
    by_label = {r["label"]: r for r in listing["releases"]}
    assert by_label["v1"]["live"] and not by_label["v1"]["bad"]
    assert by_label["v2"]["bad"] and not by_label["v2"]["live"]
    assert [r["label"] for r in listing["releases"]] == ["v2", "v1"]

    # Nothing left to roll back to: v1 is live and nothing older exists.
    code, _out, err = run(capsys, "rollback", "prod", "--yes")
    assert code == 3
    assert "nothing to roll back to" in err

    code, shown = run_json(capsys, "show", result["id"])
    types = [e["type"] for e in shown["timeline"]]
    assert types[0] == "rollback-requested" and types[-1] == "rollback-succeeded"
    assert types.count("step-succeeded") == 4


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_plan_is_empty_when_already_at_target(shop_dir: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    run(capsys, "release", "record", "prod", "--version", "v1")
    code, plan = run_json(capsys, "plan", "prod", "--to", "v1")
    assert code == 0
    assert plan["steps"] == [] and sorted(plan["unchanged"]) == ["api", "api-config", "db-credentials", "worker"]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_only_rolls_back_named_components(shop_dir: Path, aws: AwsClients, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    run(capsys, "release", "record", "prod", "--version", "v1")
    bad_deploy(aws)
    run(capsys, "release", "record", "prod", "--version", "v2")
    code, result = run_json(capsys, "rollback", "prod", "--only", "api", "--yes")
    assert code == 0 and result["done"] == ["api"]
    lam = aws.client("lambda")
    assert lam.get_alias(FunctionName="shop-api-prod", Name="live")["FunctionVersion"] == "1"
    assert lam.get_alias(FunctionName="shop-worker-prod", Name="live")["FunctionVersion"] == "2"
    # A partial rollback leaves the live pointer and does not condemn the release.
    code, listing = run_json(capsys, "release", "list", "prod")
    assert [r["label"] for r in listing["releases"] if r["live"]] == ["v2"]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_protected_environment_needs_the_phrase(shop_dir: Path, aws: AwsClients, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import io

    monkeypatch.chdir(shop_dir)
    run(capsys, "release", "record", "prod", "--version", "v1")
    bad_deploy(aws)
    run(capsys, "release", "record", "prod", "--version", "v2")
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    code, _out, err = run(capsys, "rollback", "prod")
    assert code == 3 and "rollback-production" in err
    assert aws.client("lambda").get_alias(FunctionName="shop-api-prod", Name="live")["FunctionVersion"] == "2"
    monkeypatch.setattr("sys.stdin", io.StringIO("rollback-production\n"))
    code, _out, _err = run(capsys, "rollback", "prod")
    assert code == 0
    assert aws.client("lambda").get_alias(FunctionName="shop-api-prod", Name="live")["FunctionVersion"] == "1"


def test_unknown_release_and_component_are_bad_input(shop_dir: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    run(capsys, "release", "record", "prod", "--version", "v1")
    code, _out, err = run(capsys, "plan", "prod", "--to", "v0")
    assert code == 2 and "no release 'v0'" in err
    code, _out, err = run(capsys, "plan", "prod", "--to", "v1", "--only", "apii")
    assert code == 2 and "did you mean 'api'" in err
    code, _out, err = run(capsys, "release", "record", "prod", "--version", "v1")
    assert code == 2 and "already exists" in err


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_failed_step_leaves_a_clear_state_and_resume_command(
    shop_dir: Path, aws: AwsClients, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    run(capsys, "release", "record", "prod", "--version", "v1")
    bad_deploy(aws)
    run(capsys, "release", "record", "prod", "--version", "v2")
    # The parameter is deleted after the release: its history, and so its old value, is gone.
    aws.client("ssm").delete_parameter(Name="/shop/prod/api/pricing-engine")
    code, result = run_json(capsys, "rollback", "prod", "--yes")
    assert code == 1
    assert result["status"] == "failed"
    assert list(result["failed"]) == ["api-config"]
    assert "pricing-engine" in result["failed"]["api-config"]
    assert sorted(result["done"]) == ["api", "db-credentials", "worker"]
    assert result["resume"] == f"lastgood resume {result['id']}"
    # Text mode names what was done, what failed and the command to resume.
    code, _out, _err = run(capsys, "resume", result["id"])
    assert code == 1
    code, out, _err = run(capsys, "show", result["id"])
    assert "failed" in out and "lastgood resume" in out
    code, listing = run_json(capsys, "release", "list", "prod")
    assert [r["label"] for r in listing["releases"] if r["live"]] == ["v2"]  # not settled on v1


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_missing_resource_is_bad_input_and_changes_nothing(
    shop_dir: Path, aws: AwsClients, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    run(capsys, "release", "record", "prod", "--version", "v1")
    bad_deploy(aws)
    run(capsys, "release", "record", "prod", "--version", "v2")
    aws.client("lambda").delete_alias(FunctionName="shop-worker-prod", Name="live")
    code, _out, err = run(capsys, "rollback", "prod", "--yes")
    assert code == 2
    assert "worker" in err and "shop-worker-prod" in err
    assert aws.client("lambda").get_alias(FunctionName="shop-api-prod", Name="live")["FunctionVersion"] == "2"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_secret_values_never_reach_the_ledger_or_output(shop_dir: Path, aws: AwsClients, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    _c, out1, _e = run(capsys, "release", "record", "prod", "--version", "v1", "-o", "json")
    bad_deploy(aws)
    _c, out2, _e = run(capsys, "release", "record", "prod", "--version", "v2", "-o", "json")
    _c, out3, err3 = run(capsys, "rollback", "prod", "--yes")
    ledger_bytes = (shop_dir / ".lastgood" / "state.db").read_bytes()
    for wal in (shop_dir / ".lastgood").glob("state.db-wal"):
        ledger_bytes += wal.read_bytes()
    for secret in ("demo-signing-key-1", "demo-password-1", "rotated-for-v2"):
        for text in (out1, out2, out3, err3):
            assert secret not in text
        assert secret.encode() not in ledger_bytes
