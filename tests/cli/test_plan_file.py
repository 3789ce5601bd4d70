"""plan --out FILE / rollback --plan FILE, and plan --detailed-exitcode, on the moto server over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.service.plans import CHANGES_PENDING
from lastgood.testing import shop

SECRET_VALUES = ("demo-password-1", "rotated-for-v2", "demo-signing-key-1")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def bad_release(aws: AwsClients, capsys: pytest.CaptureFixture[str]) -> None:
    """v1 recorded, then a bad v2 deployed and recorded: a rollback to v1 has four steps."""
    assert run(capsys, "release", "record", "prod", "--version", "v1")[0] == 0
    s = shop.Shop("prod", ("shop-api-prod", "shop-worker-prod"), "/shop/prod/api/", "shop/prod/db")
    for name in s.functions:
        shop.shift_alias(aws, name, "1", shop.publish_new_version(aws, name, "v2"), 1.0)
    shop.deploy_config_change(aws, s, "v2")
    assert run(capsys, "release", "record", "prod", "--version", "v2")[0] == 0


def alias_version(aws: AwsClients, name: str = "shop-api-prod") -> str:
    return str(aws.client("lambda").get_alias(FunctionName=name, Name="live")["FunctionVersion"])


@pytest.fixture
def planned(shop_dir: Path, aws: AwsClients, capsys, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    bad_release(aws, capsys)
    code, _out, err = run(capsys, "plan", "prod", "--out", "rb.plan")
    assert code == 0, err
    assert "lastgood rollback prod --plan rb.plan" in err
    return shop_dir / "rb.plan"


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_a_saved_plan_runs_when_nothing_changed(planned: Path, aws: AwsClients, capsys) -> None:  # type: ignore[no-untyped-def]
    saved = json.loads(planned.read_text())
    assert saved["format"] == "lastgood-plan/1" and saved["to_release"] == "v1" and saved["from_release"] == "v2"
    assert sorted(s["component"] for s in saved["steps"]) == ["api", "api-config", "db-credentials", "worker"]
    assert set(saved["live"]) == {"api", "api-config", "db-credentials", "worker"}
    assert planned.stat().st_mode & 0o077 == 0  # the owner's only
    code, out, err = run(capsys, "rollback", "prod", "--plan", str(planned), "--yes", "-o", "json")
    assert code == 0, err
    assert json.loads(out)["status"] == "succeeded"
    assert alias_version(aws) == "1"


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_a_saved_plan_is_refused_when_the_live_state_changed(planned: Path, aws: AwsClients, capsys) -> None:  # type: ignore[no-untyped-def]
    # Someone moves the worker by hand after the plan was written.
    shop.shift_alias(aws, "shop-worker-prod", "1", None, 0.0)
    code, out, err = run(capsys, "rollback", "prod", "--plan", str(planned), "--yes")
    assert code == 3, (out, err)
    assert "worker's live state changed" in err and "Nothing was changed" in err
    assert "api's live state" not in err  # only what changed is named
    assert alias_version(aws) != "1"  # the api was not rolled back
    status = json.loads(run(capsys, "status", "prod", "-o", "json")[1])
    assert status["last_rollback"] is None  # and no rollback was recorded


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_a_saved_plan_is_refused_when_the_live_release_changed(planned: Path, aws: AwsClients, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(capsys, "release", "record", "prod", "--version", "v3")[0] == 0
    code, _out, err = run(capsys, "rollback", "prod", "--plan", str(planned), "--yes")
    assert code == 3
    assert "the live release is v3, not v2" in err
    assert alias_version(aws) != "1"


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_an_edited_or_foreign_plan_file_is_bad_input(planned: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    saved = json.loads(planned.read_text())
    saved["to_release"] = "v0"
    edited = planned.with_name("edited.plan")
    edited.write_text(json.dumps(saved))
    code, _out, err = run(capsys, "rollback", "prod", "--plan", str(edited), "--yes")
    assert code == 2 and "was edited after it was written" in err
    junk = planned.with_name("junk.plan")
    junk.write_text("not json at all")
    code, _out, err = run(capsys, "rollback", "prod", "--plan", str(junk), "--yes")
    assert code == 2 and "not a plan written by `lastgood plan --out`" in err
    code, _out, err = run(capsys, "rollback", "prod", "--plan", str(planned.with_name("missing.plan")), "--yes")
    assert code == 2 and "cannot read it" in err
    code, _out, err = run(capsys, "rollback", "staging", "--plan", str(planned), "--yes")
    assert code == 2 and "the plan is for prod, not staging" in err
    code, _out, err = run(capsys, "rollback", "prod", "--plan", str(planned), "--to", "v1", "--yes")
    assert code == 2 and "drop --to and --only" in err


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_the_plan_file_never_holds_a_secret_value(planned: Path, aws: AwsClients) -> None:
    text = planned.read_text()
    assert all(value not in text for value in SECRET_VALUES)
    live = aws.client("secretsmanager").get_secret_value(SecretId="shop/prod/db")["SecretString"]
    assert live not in text and json.loads(live)["password"] not in text
    signing = aws.client("ssm").get_parameter(Name="/shop/prod/api/signing-key", WithDecryption=True)
    assert signing["Parameter"]["Value"] not in text


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_detailed_exitcode_tells_changes_pending_from_nothing_to_do(  # type: ignore[no-untyped-def]
    shop_dir: Path, aws: AwsClients, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(shop_dir)
    bad_release(aws, capsys)
    code, out, _err = run(capsys, "plan", "prod", "--detailed-exitcode")
    assert code == CHANGES_PENDING == 10 and "4 to change" in out
    assert run(capsys, "plan", "prod")[0] == 0  # without the flag, as before
    assert run(capsys, "rollback", "prod", "--yes")[0] == 0
    code, out, _err = run(capsys, "plan", "prod", "--to", "v1", "--detailed-exitcode")
    assert code == 0 and "nothing to change" in out
    code, _out, err = run(capsys, "plan", "prod", "--to", "nope", "--detailed-exitcode")
    assert code == 2 and "no release 'nope'" in err
