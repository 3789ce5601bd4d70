"""Progressive delivery on the moto server, with the traffic simulator writing 1-second CloudWatch metrics."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.config.loader import load_runbook
from lastgood.domain.actor import Actor
from lastgood.engine.deploy.rows import get as get_deployment
from lastgood.engine.deploy.rows import request
from lastgood.engine.record import record_release
from lastgood.errors import BadInput
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.service.deploy import Deployer, DeployRequest, DeployResult, parse_steps
from lastgood.sources.cloudwatch import CloudWatchSource
from lastgood.testing import shop
from lastgood.testing.traffic import FunctionTraffic, TrafficSimulator

API = "shop-api-prod"
GOOD, BAD = 0.005, 0.40


@pytest.fixture
def deploy_dir(aws_env, aws: AwsClients, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The shop at release v1 with 1-second triggers: api-errors '> 2%' for 3s.

    The triggers see the whole function, old and new version together: at 10% a version with 40% errors shows
    as about 4.5%, so the threshold is 2% (the file's 5% would only catch it from 12.5% of traffic on).
    """
    shop.create_shop(aws, "prod")
    text = shop.runbook_text(aws_env.url, "sqlite:///.lastgood/state.db", period="1s", for_="3s")
    (tmp_path / "lastgood.yaml").write_text(text.replace('when: "> 5%"', 'when: "> 2%"'))
    record_release(context(tmp_path), "v1")
    return tmp_path


def context(directory: Path) -> EnvContext:
    runbook = load_runbook(directory / "lastgood.yaml")
    aws = AwsClients(runbook.environment("prod").aws)
    return EnvContext(runbook, "prod", open_ledger(resolve_url(runbook.state, runbook.base_dir)), aws)


@pytest.fixture
def traffic(aws: AwsClients) -> Iterator[FunctionTraffic]:
    function = FunctionTraffic(API, 400.0, {"1": GOOD}, GOOD)
    simulator = TrafficSimulator(aws, [function])
    simulator.start()
    time.sleep(1.5)
    yield function
    simulator.stop()


def new_version(aws: AwsClients, traffic: FunctionTraffic, error_rate: float) -> str:
    version = shop.publish_new_version(aws, API, "v2")
    traffic.error_rate_by_version[version] = error_rate
    return version


def ask(component: str, version: str, steps: list[float], pause: float, label: str | None = None) -> DeployRequest:
    return DeployRequest(component=component, version=version, steps=steps, pause_seconds=pause, label=label)


def alias(aws: AwsClients) -> tuple[str, dict[str, Any]]:
    live = aws.client("lambda").get_alias(FunctionName=API, Name="live")
    return str(live["FunctionVersion"]), dict((live.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = main([*args, "--output", "json"])
    out, _err = capsys.readouterr()
    return code, json.loads(out)


def test_steps_are_parsed_and_end_at_100() -> None:
    assert parse_steps("10,50,100") == [10.0, 50.0, 100.0]
    assert parse_steps("5, 25") == [5.0, 25.0, 100.0]
    for wrong in ("", "50,10", "0,100", "10,abc", "150"):
        with pytest.raises(BadInput):
            parse_steps(wrong)


@pytest.mark.slow
def test_a_bad_version_is_aborted_at_the_first_step(  # type: ignore[no-untyped-def]
    deploy_dir: Path, aws: AwsClients, traffic: FunctionTraffic, capsys
) -> None:
    version = new_version(aws, traffic, BAD)
    file = str(deploy_dir / "lastgood.yaml")
    args = ("deploy", "prod", "-c", "api", "--version", version, "--steps", "10,50,100", "--pause", "10s", "--yes")
    code, result = run_cli(capsys, *args, "-f", file)
    assert code == 1, result
    assert result["status"] == "aborted" and result["current_step"] == 0, result
    assert result["decisions"][-1]["decision"] == "fired"
    fired = next(v for v in result["decisions"][-1]["verdicts"] if v["trigger"] == "api-errors")
    assert fired["state"] == "firing" and all(v is not None and v > 2 for v in fired["values"])
    assert result["rollback"]["status"] == "succeeded"
    assert alias(aws) == ("1", {})  # back on the old version, no extra weight
    ctx = context(deploy_dir)
    with ctx.ledger.session() as session:
        live = store.live_release(session, "shop", "prod")
        assert live is not None and live.label == "v1"
        bad = store.get_release(session, "shop", "prod", version)
        assert bad.bad and "aborted" in (bad.bad_reason or "")
        types = [e.type for e in store.events_since(session, "shop", "prod")]
        judged = [e for e in store.events_since(session, "shop", "prod") if e.type == "deploy-judged"]
    assert types.index("deploy-started") < types.index("deploy-step") < types.index("deploy-judged")
    assert types.index("rollback-succeeded") < types.index("deploy-aborted")
    assert judged[-1].data["decision"] == "fired" and judged[-1].data["verdicts"]


@pytest.mark.slow
def test_a_good_version_is_promoted_through_every_step(  # type: ignore[no-untyped-def]
    deploy_dir: Path, aws: AwsClients, traffic: FunctionTraffic, capsys
) -> None:
    version = new_version(aws, traffic, GOOD)
    file = str(deploy_dir / "lastgood.yaml")
    args = ("deploy", "prod", "-c", "api", "--version", version, "--pause", "3s", "--release", "r2", "--yes")
    started = time.monotonic()
    code, result = run_cli(capsys, *args, "-f", file)
    assert code == 0, result
    assert result["status"] == "promoted" and result["release"] == "r2" and result["weight"] == 1.0
    assert [d["percent"] for d in result["decisions"]] == [10.0, 50.0]
    assert all(d["decision"] == "healthy" for d in result["decisions"])
    # Each step is watched for one full trigger window (3s + a period) at least.
    assert time.monotonic() - started >= 8
    assert alias(aws) == (version, {})
    ctx = context(deploy_dir)
    with ctx.ledger.session() as session:
        live = store.live_release(session, "shop", "prod")
        assert live is not None and live.label == "r2" and not live.bad
        api = next(c for c in live.components if c.component == "api")
        assert api.state == {"version": version, "weights": {}}
        steps = [e.data["percent"] for e in store.events_since(session, "shop", "prod") if e.type == "deploy-step"]
    assert steps == [10.0, 50.0]


def _deploy_in_thread(directory: Path, version: str) -> tuple[threading.Thread, dict[str, DeployResult], str]:
    ctx = context(directory)
    deployer = Deployer(ctx, CloudWatchSource(ctx.aws))
    row = deployer.start(ask("api", version, [10.0, 50.0, 100.0], 120.0))
    out: dict[str, DeployResult] = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", deployer.run(row.id)), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while get_deployment(ctx, row.id).current_step < 0:
        assert time.monotonic() < deadline, "the deployment never shifted its first step"
        time.sleep(0.2)
    return thread, out, row.id


@pytest.mark.slow
def test_a_person_aborts_from_another_thread_while_deploy_waits(
    deploy_dir: Path, aws: AwsClients, traffic: FunctionTraffic
) -> None:
    version = new_version(aws, traffic, GOOD)
    thread, out, deployment = _deploy_in_thread(deploy_dir, version)
    assert alias(aws) == ("1", {version: 0.1})
    request(dataclasses.replace(context(deploy_dir), actor=Actor(name="alice")), deployment, "abort")
    thread.join(timeout=30)
    assert out["result"].status == "aborted" and "alice" in out["result"].message
    assert alias(aws) == ("1", {})
    with context(deploy_dir).ledger.session() as session:
        assert store.get_release(session, "shop", "prod", version).bad


@pytest.mark.slow
def test_a_person_promotes_from_another_process_while_deploy_waits(
    deploy_dir: Path, aws: AwsClients, traffic: FunctionTraffic
) -> None:
    version = new_version(aws, traffic, GOOD)
    thread, out, deployment = _deploy_in_thread(deploy_dir, version)
    command = [
        sys.executable,
        "-m",
        "lastgood",
        "promote",
        "prod",
        "-c",
        "api",
        "-f",
        str(deploy_dir / "lastgood.yaml"),
    ]
    done = subprocess.run([*command, "-o", "json"], env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    promoted = json.loads(done.stdout)
    assert promoted["id"] == deployment and promoted["status"] == "promoted"
    thread.join(timeout=30)
    assert out["result"].status == "promoted"
    assert alias(aws) == (version, {})
    with context(deploy_dir).ledger.session() as session:
        live = store.live_release(session, "shop", "prod")
        assert live is not None and live.label == version
        requested = [e for e in store.events_since(session, "shop", "prod") if e.type == "deploy-promote-requested"]
    assert requested and requested[0].actor == "tester"


@pytest.mark.slow
def test_a_second_deployment_of_the_same_component_is_refused(deploy_dir: Path, aws: AwsClients) -> None:
    from lastgood.errors import Refused

    ctx = context(deploy_dir)
    version = shop.publish_new_version(aws, API, "v2")
    Deployer(ctx, CloudWatchSource(ctx.aws)).start(ask("api", version, [10.0, 100.0], 1.0))
    with pytest.raises(Refused, match="already running"):
        Deployer(ctx, CloudWatchSource(ctx.aws)).start(ask("api", version, [10.0, 100.0], 1.0, label="other"))
    with pytest.raises(BadInput, match="lambda-alias"):
        Deployer(ctx, CloudWatchSource(ctx.aws)).start(ask("api-config", version, [100.0], 1.0, label="x"))
