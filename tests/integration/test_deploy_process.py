"""`lastgood deploy` as a real process on the moto server: promote and abort take effect within 2 s of the
request, Ctrl-C pauses and `--resume` goes on, a killed process's deployment is resumed once its lease expired
(and refused, the owner named, while it is live), and a version of a release marked bad needs --allow-bad."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
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
from lastgood.ledger.tables import DeploymentRow
from lastgood.runtime.context import EnvContext
from lastgood.service.deploy import Deployment
from lastgood.testing import shop

API = "shop-api-prod"


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


@pytest.fixture
def deploy_dir(aws_env, aws: AwsClients, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The shop at release v1, 1-second triggers; no traffic (the steps here are ended by a person)."""
    shop.create_shop(aws, "prod")
    text = shop.runbook_text(aws_env.url, "sqlite:///.lastgood/state.db", period="1s", for_="3s")
    (tmp_path / "lastgood.yaml").write_text(text)
    record_release(context(tmp_path), "v1")
    return tmp_path


def context(directory: Path) -> EnvContext:
    runbook = load_runbook(directory / "lastgood.yaml")
    aws = AwsClients(runbook.environment("prod").aws)
    return EnvContext(runbook, "prod", open_ledger(resolve_url(runbook.state, runbook.base_dir)), aws)


def alias(aws: AwsClients) -> tuple[str, dict[str, Any]]:
    live = aws.client("lambda").get_alias(FunctionName=API, Name="live")
    return str(live["FunctionVersion"]), dict((live.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def lastgood(directory: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lastgood", *args, "-f", str(directory / "lastgood.yaml")]


def spawn(directory: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    command = lastgood(directory, *args, "--yes", "-o", "json")
    environ = {**os.environ, **env}
    return subprocess.Popen(command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(directory: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **env}
    return subprocess.run(lastgood(directory, *args), env=environ, capture_output=True, text=True, timeout=60)


def until(what: str, check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def first_step(directory: Path, process: subprocess.Popen[str]) -> Deployment:
    """The deployment once its first share of traffic is on the new version."""
    ctx = context(directory)

    def shifted() -> bool:
        assert process.poll() is None, process.communicate()
        rows = unfinished(ctx)
        return bool(rows) and rows[0].current_step >= 0

    until("the deployment never shifted its first step", shifted)
    return unfinished(ctx)[0]


def exited(process: subprocess.Popen[str], seconds: float = 30) -> tuple[int, float]:
    """Its exit code and when it was seen to exit (time.time())."""
    deadline = time.monotonic() + seconds
    while process.poll() is None:
        assert time.monotonic() < deadline, "the deploy process did not exit"
        time.sleep(0.02)
    return process.returncode, time.time()


def read_output(process: subprocess.Popen[str]) -> tuple[threading.Thread, dict[str, Any]]:
    """Reads the process's stdout in a thread, noting when its result began to arrive (time.time())."""
    seen: dict[str, Any] = {}

    def read() -> None:
        assert process.stdout is not None
        first = process.stdout.read(1)
        seen["at"] = time.time()
        seen["text"] = first + process.stdout.read()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread, seen


def events(directory: Path, type_: str) -> list[Any]:
    with context(directory).ledger.session() as session:
        return [e for e in store.events_since(session, "shop", "prod") if e.type == type_]


def requested_at(directory: Path, what: str) -> datetime:
    with context(directory).ledger.session() as session:
        events = store.events_since(session, "shop", "prod")
        return next(e.at for e in events if e.type == f"deploy-{what}-requested").replace(tzinfo=UTC)


def deploy_args(version: str) -> tuple[str, ...]:
    return ("deploy", "prod", "-c", "api", "--version", version, "--steps", "10,50,100", "--pause", "5m")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.mark.parametrize("what", ["promote", "abort"])
def test_promote_and_abort_take_effect_within_two_seconds(
    what: str, deploy_dir: Path, aws: AwsClients, processes: list[subprocess.Popen[str]]
) -> None:
    version = shop.publish_new_version(aws, API, "v2")
    deploying = spawn(deploy_dir, *deploy_args(version))
    processes.append(deploying)
    reader, output = read_output(deploying)
    deployment = first_step(deploy_dir, deploying)
    assert alias(aws) == ("1", {version: 0.1})
    asked = time.monotonic()
    done = run(deploy_dir, what, "prod", "-c", "api", "-o", "json")
    command_seconds = time.monotonic() - asked
    code, exit_time = exited(deploying)
    reader.join(timeout=10)
    assert done.returncode == 0, done.stderr
    result = json.loads(output["text"])
    ended = get_deployment(context(deploy_dir), deployment.id)
    assert ended.finished_at is not None
    request = requested_at(deploy_dir, what).timestamp()
    in_ledger = ended.finished_at.replace(tzinfo=UTC).timestamp() - request
    reported, to_exit = output["at"] - request, exit_time - request
    print(
        f"\n{what}: request -> deployment {ended.status} in the ledger {in_ledger:.2f}s, -> printed by the deploy "
        f"process {reported:.2f}s, -> that process exited {to_exit:.2f}s; `lastgood {what}` took {command_seconds:.2f}s"
    )
    assert ended.status == ("promoted" if what == "promote" else "aborted")
    assert result["status"] == ended.status and code == (0 if what == "promote" else 1)
    # The process's exit adds the interpreter's teardown, slow on a loaded machine: bounded loosely.
    assert in_ledger < 2 and reported < 2 and to_exit < 5
    assert alias(aws) == ((version, {}) if what == "promote" else ("1", {}))


def test_ctrl_c_pauses_and_resume_goes_on_from_the_current_step(
    deploy_dir: Path, aws: AwsClients, processes: list[subprocess.Popen[str]]
) -> None:
    version = shop.publish_new_version(aws, API, "v2")
    deploying = spawn(deploy_dir, *deploy_args(version))
    processes.append(deploying)
    deployment = first_step(deploy_dir, deploying)
    interrupted = time.time()
    deploying.send_signal(signal.SIGINT)
    code, exit_time = exited(deploying)
    out, err = deploying.communicate()
    print(f"\nCtrl-C -> paused and exited in {exit_time - interrupted:.2f}s")
    assert code == 130 and exit_time - interrupted < 2.5, err
    assert json.loads(out)["status"] == "paused"
    assert f"lastgood deploy prod --resume {deployment.id}" in err
    paused = get_deployment(context(deploy_dir), deployment.id)
    assert paused.status == "paused" and paused.current_step == 0 and paused.weight == 0.1
    assert alias(aws) == ("1", {version: 0.1})  # left where it was
    refused = run(deploy_dir, *deploy_args(version), "--release", "again", "--yes")
    assert refused.returncode == 3 and "already paused" in refused.stderr.replace("\n", " ")

    resumed = spawn(deploy_dir, "deploy", "prod", "--resume", deployment.id)
    processes.append(resumed)
    until(
        "the deployment was not resumed", lambda: get_deployment(context(deploy_dir), deployment.id).status == "running"
    )
    first_step(deploy_dir, resumed)
    other = run(deploy_dir, *deploy_args(version), "--release", "again", "--yes")
    assert other.returncode == 3 and "held by deploy" in other.stderr.replace("\n", " ")
    done = run(deploy_dir, "abort", "prod", "-o", "json")
    assert done.returncode == 0, done.stderr
    code, _ = exited(resumed)
    assert code == 1 and json.loads(resumed.communicate()[0])["status"] == "aborted"
    assert alias(aws) == ("1", {})


def test_a_killed_deploy_is_resumed_once_its_lease_has_expired(
    deploy_dir: Path, aws: AwsClients, processes: list[subprocess.Popen[str]]
) -> None:
    version = shop.publish_new_version(aws, API, "v2")
    lease = {"LASTGOOD_LEASE_SECONDS": "3"}
    deploying = spawn(deploy_dir, *deploy_args(version), **lease)
    processes.append(deploying)
    deployment = first_step(deploy_dir, deploying)
    refused = run(deploy_dir, "deploy", "prod", "--resume", deployment.id, "--yes", **lease)
    message = refused.stderr.replace("\n", " ")
    assert refused.returncode == 3 and f"held by deploy {deployment.id} of tester" in message
    assert f"pid {deploying.pid}" in message
    deploying.kill()
    deploying.wait()
    time.sleep(3.5)
    resumed = spawn(deploy_dir, "deploy", "prod", "--resume", deployment.id, **lease)
    processes.append(resumed)
    until("the deployment was not resumed", lambda: bool(events(deploy_dir, "deploy-resumed")))
    first_step(deploy_dir, resumed)
    done = run(deploy_dir, "promote", "prod", "-o", "json", **lease)
    assert done.returncode == 0, done.stderr
    code, _ = exited(resumed)
    assert code == 0 and json.loads(resumed.communicate()[0])["status"] == "promoted"
    assert alias(aws) == (version, {})
    resumed_event = events(deploy_dir, "deploy-resumed")[0]
    assert f"pid {deploying.pid}" in resumed_event.message and "is gone" in resumed_event.message


def test_a_version_of_a_release_marked_bad_needs_allow_bad(  # type: ignore[no-untyped-def]
    deploy_dir: Path, aws: AwsClients, capsys
) -> None:
    version = shop.publish_new_version(aws, API, "v2")
    ctx = context(deploy_dir)
    shop.shift_alias(aws, API, "1", version, 1.0)
    record_release(ctx, "v2")
    with ctx.session() as session:
        store.mark_bad(
            session, store.get_release(session, "shop", "prod", "v2"), "5% errors at checkout", ctx.clock.now()
        )
        store.set_live(session, "shop", "prod", store.get_release(session, "shop", "prod", "v1").id)
    shop.shift_alias(aws, API, "1", None, 0.0)
    file = str(deploy_dir / "lastgood.yaml")
    args = ["deploy", "prod", "-c", "api", "--version", version, "--steps", "100", "--pause", "1s", "--yes", "-f", file]
    assert main(args) == 3
    err = capsys.readouterr().err.replace("\n", " ")
    assert "release v2, marked bad: 5% errors at checkout" in err and "--allow-bad" in err
    assert alias(aws) == ("1", {})
    with ctx.session() as session:
        assert [r.label for r in store.list_releases(session, "shop", "prod")] == ["v2", "v1"]
        assert not list(session.query(DeploymentRow))
    assert main([*args, "--allow-bad", "--release", "v3"]) == 0
    out, err = capsys.readouterr()
    assert "promoted" in out and "(--allow-bad): version" in err and "marked bad: 5% errors at checkout" in err
    assert alias(aws) == (version, {})
    with ctx.session() as session:
        started = next(e for e in store.events_since(session, "shop", "prod") if e.type == "deploy-started")
    assert started.data["allowed_bad"] == {"label": "v2", "reason": "5% errors at checkout"}
