"""`lastgood pause ID` / `lastgood resume ID` of a deployment, and `watch` and `status` of it, with `deploy` as a
real process on the moto server: the pause takes effect within seconds, a paused deployment neither shifts nor
promotes, resume goes on from the current step in a new process, watch ends with the deployment's outcome."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.config.loader import load_runbook
from lastgood.engine.deploy.rows import get as get_deployment
from lastgood.engine.deploy.rows import unfinished
from lastgood.engine.record import record_release
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.testing import shop

pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset

API = "shop-api-prod"


@pytest.fixture
def deploy_dir(aws_env, aws: AwsClients, tmp_path: Path, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    """The shop at release v1; no traffic (each step here is ended by a person, its pause is 5 minutes)."""
    shop.create_shop(aws, "prod")
    text = shop.runbook_text(aws_env.url, "sqlite:///.lastgood/state.db", period="1s", for_="3s")
    (tmp_path / "lastgood.yaml").write_text(text)
    record_release(context(tmp_path), "v1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def context(directory: Path) -> EnvContext:
    runbook = load_runbook(directory / "lastgood.yaml")
    aws = AwsClients(runbook.environment("prod").aws)
    return EnvContext(runbook, "prod", open_ledger(resolve_url(runbook.state, runbook.base_dir)), aws)


def alias(aws: AwsClients) -> tuple[str, dict[str, Any]]:
    live = aws.client("lambda").get_alias(FunctionName=API, Name="live")
    return str(live["FunctionVersion"]), dict((live.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def spawn(processes: list[subprocess.Popen[str]], *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "lastgood", *args]
    process = subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    processes.append(process)
    return process


def until(what: str, check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main([*args, "-o", "json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else None, err


def deploying(deploy_dir: Path, aws: AwsClients, processes: list[subprocess.Popen[str]]) -> tuple[str, str]:
    """A `deploy` process with its first step (10%) on the new version; (deployment id, version)."""
    version = shop.publish_new_version(aws, API, "v2")
    deploy = ("deploy", "prod", "-c", "api", "--version", version, "--steps", "10,50,100", "--pause", "5m", "--yes")
    process = spawn(processes, *deploy)
    ctx = context(deploy_dir)

    def shifted() -> bool:
        assert process.poll() is None, process.communicate()
        rows = unfinished(ctx)
        return bool(rows) and rows[0].current_step >= 0

    until("the deployment never shifted its first step", shifted)
    return unfinished(ctx)[0].id, version


def test_pause_stops_a_running_deployment_and_resume_goes_on(  # type: ignore[no-untyped-def]
    deploy_dir: Path, aws: AwsClients, capsys, processes
) -> None:
    deployment_id, version = deploying(deploy_dir, aws, processes)
    deploy = processes[0]
    code, status, _err = run(capsys, "status", "prod")
    assert code == 0 and [d["status"] for d in status["deployments"]] == ["running"]
    assert status["deployments"][0]["percent"] == 10 and status["deployments"][0]["id"] == deployment_id

    asked = time.monotonic()
    code, paused, err = run(capsys, "pause", deployment_id)
    assert code == 0, err
    assert paused["status"] == "paused" and "paused by tester" in paused["message"]
    assert deploy.wait(timeout=30) == 130  # its `deploy` process paused and ended, as after Ctrl-C
    assert time.monotonic() - asked < 15
    assert alias(aws) == ("1", {version: 0.1})  # the traffic stays where the step put it

    time.sleep(1.5)  # nobody runs it now: it neither shifts nor promotes
    row = get_deployment(context(deploy_dir), deployment_id)
    assert row.status == "paused" and row.current_step == 0 and row.requested is None
    assert alias(aws) == ("1", {version: 0.1})
    with context(deploy_dir).ledger.session() as session:
        types = [e.type for e in store.events_since(session, "shop", "prod")]
    assert "deploy-paused" in types and "deploy-promoted" not in types and types.count("deploy-step") == 1

    code, text_out, _err = main(["status", "prod"]), *capsys.readouterr()
    assert f"lastgood resume {deployment_id}" in text_out and "paused at 10%" in text_out
    code, shown, _err = run(capsys, "show", deployment_id)  # `show` takes a deployment's id too
    assert code == 0 and shown["kind"] == "deployment" and shown["status"] == "paused"
    assert [(s["name"], s["status"]) for s in shown["steps"]] == [
        ("10%", "paused"),
        ("50%", "pending"),
        ("100%", "pending"),
    ]
    code, again, _err = run(capsys, "pause", deployment_id)
    assert code == 3 and "paused already" in again["message"]
    code = main(["watch", deployment_id])  # piped: JSON lines; a paused deployment has ended its run
    line = json.loads(capsys.readouterr().out)
    assert code == 130 and line["status"] == "paused" and line["exit_code"] == 130

    resumed = spawn(processes, "resume", deployment_id, "--yes", "-o", "json")
    until(
        "resume never ran the deployment",
        lambda: get_deployment(context(deploy_dir), deployment_id).status == "running",
    )
    watcher = spawn(processes, "watch", deployment_id, "--interval", "0.2s")
    assert watcher.stdout is not None
    first = json.loads(watcher.stdout.readline())
    assert first["status"] == "running" and first["steps"][0]["status"] == "running"
    code, promoted, err = run(capsys, "promote", "prod")
    assert code == 0 and promoted["status"] == "promoted", err
    rest, _ = watcher.communicate(timeout=60)
    lines = [first, *(json.loads(line) for line in rest.splitlines())]
    assert watcher.returncode == 0 and lines[-1]["status"] == "promoted" and lines[-1]["done"]
    out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    assert json.loads(out)["status"] == "promoted"
    assert alias(aws) == (version, {})


def test_a_deployment_whose_process_is_gone_is_paused_here(  # type: ignore[no-untyped-def]
    deploy_dir: Path, aws: AwsClients, capsys, processes, monkeypatch
) -> None:
    monkeypatch.setenv("LASTGOOD_LEASE_SECONDS", "2")  # the killed process's claim expires 2 s after its last beat
    deployment_id, version = deploying(deploy_dir, aws, processes)
    processes[0].kill()
    processes[0].wait()
    until("the killed process's lease never expired", lambda: _lease_expired(deploy_dir))
    code, paused, err = run(capsys, "pause", deployment_id, "--wait", "2s")
    assert code == 0, err
    assert paused["status"] == "paused" and alias(aws) == ("1", {version: 0.1})


def _lease_expired(directory: Path) -> bool:
    from lastgood.runtime.lease import current_holder

    return current_holder(context(directory)) is None
