"""A `lastgood rollback` process is killed (SIGKILL) mid-way; a server started on the same ledger finds the
rollback left running, waits for the dead owner's lease to expire, and finishes it as lastgood-server, no step
applied twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lastgood.aws.clients import AwsClients
from lastgood.ledger import store
from lastgood.ledger.db import Ledger, open_ledger
from lastgood.server.app import create_app
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint
from server_fixture import add_users, make_state

FUNCTIONS = [f"srv-crash-fn{i:02d}" for i in range(10)]
LEASE = 4.0


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def write_runbook(directory: Path, endpoint: str, chain: bool = False) -> None:
    """`chain`: each function depends on the one before, so the rollback's steps run one at a time."""
    lines = [
        "app: crashy",
        "state: sqlite:///state.db",
        "environments:",
        f"  prod: {{aws: {{region: us-east-1, endpoint_url: '{endpoint}'}}}}",
        "components:",
    ]
    for n, name in enumerate(FUNCTIONS):
        after = f", depends_on: [{FUNCTIONS[n - 1]}]" if chain and n else ""
        lines.append(f"  - {{name: {name}, kind: lambda-alias, function: {name}{after}}}")
    (directory / "lastgood.yaml").write_text("\n".join(lines) + "\n")


def lastgood(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "lastgood", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_server_finishes_a_rollback_whose_process_was_killed(
    aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = shop._role(aws)
    for name in FUNCTIONS:
        shop.create_function(aws, name, role)
    write_runbook(tmp_path, aws_env.url)
    env = {**os.environ, "LASTGOOD_FILE": str(tmp_path / "lastgood.yaml"), "LASTGOOD_LEASE_SECONDS": str(LEASE)}
    assert lastgood("release", "record", "prod", "--version", "r1", env=env).wait(60) == 0
    for name in FUNCTIONS:
        shop.shift_alias(aws, name, "1", shop.publish_new_version(aws, name, "r2"), 1.0)
    assert lastgood("release", "record", "prod", "--version", "r2", env=env).wait(60) == 0

    process = lastgood("rollback", "prod", "--yes", "--parallel", "2", env={**env, "LASTGOOD_TEST_STEP_DELAY": "0.4"})
    ledger = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")
    deadline, rollback_id = time.monotonic() + 60, None
    while time.monotonic() < deadline and rollback_id is None:
        with ledger.session() as session:
            rollbacks = store.list_rollbacks(session, "crashy", "prod")
            if rollbacks and sum(s.status == "succeeded" for s in rollbacks[0].steps) >= 3:
                rollback_id = rollbacks[0].id
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert rollback_id is not None, "the rollback never got going"
    with ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        assert row.status == "running"
        finished_before = {s.component: (s.finished_at, s.attempts) for s in row.steps if s.status == "succeeded"}
    assert 3 <= len(finished_before) < len(FUNCTIONS)

    monkeypatch.setenv("LASTGOOD_LEASE_SECONDS", str(LEASE))
    state = make_state(tmp_path, guard_tick=0.2, recover_every=0.5)
    killed_at = time.monotonic()
    with TestClient(create_app(state)):
        deadline = time.monotonic() + 60
        status = "running"
        while time.monotonic() < deadline and status == "running":
            time.sleep(0.2)
            with ledger.session() as session:
                status = store.get_rollback(session, rollback_id).status
        took = time.monotonic() - killed_at
    assert status == "succeeded"
    assert took >= LEASE - 1.0, "the server must not take over before the dead owner's lease expired"
    with ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        assert all(s.status == "succeeded" for s in row.steps)
        for step in row.steps:
            if step.component in finished_before:  # not applied again
                assert (step.finished_at, step.attempts) == finished_before[step.component]
        events = store.events_of(session, rollback_id)
        succeeded = [e.data["component"] for e in events if e.type == "step-succeeded"]
        assert sorted(succeeded) == sorted(FUNCTIONS)  # each step succeeded exactly once
        takeovers = [e for e in events if e.type == "lease-taken-over"]
        assert len(takeovers) == 1 and takeovers[0].actor == "lastgood-server"
        assert f"pid {process.pid}" in takeovers[0].message
        assert store.live_release(session, "crashy", "prod").label == "r1"  # type: ignore[union-attr]
    client = aws.client("lambda")
    assert {client.get_alias(FunctionName=n, Name="live")["FunctionVersion"] for n in FUNCTIONS} == {"1"}


def test_a_rollback_the_server_interrupted_by_shutting_down_is_resumed_by_the_next_start(
    aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = shop._role(aws)
    for name in FUNCTIONS:
        shop.create_function(aws, name, role)
    write_runbook(tmp_path, aws_env.url, chain=True)
    env = {**os.environ, "LASTGOOD_FILE": str(tmp_path / "lastgood.yaml")}
    assert lastgood("release", "record", "prod", "--version", "r1", env=env).wait(60) == 0
    for name in FUNCTIONS:
        shop.shift_alias(aws, name, "1", shop.publish_new_version(aws, name, "r2"), 1.0)
    assert lastgood("release", "record", "prod", "--version", "r2", env=env).wait(60) == 0
    ledger = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")

    monkeypatch.setenv("LASTGOOD_TEST_STEP_DELAY", "0.4")
    first = make_state(tmp_path, guard_tick=0.2, recover_every=0.5)
    users = add_users(first)
    with TestClient(create_app(first)) as client:
        answer = client.post(
            "/api/v1/apps/crashy/environments/prod/rollbacks",
            json={"reason": "bad r2"},
            headers=users.headers("operator"),
        )
        assert answer.status_code == 202, answer.text
        rollback_id = answer.json()["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _succeeded(ledger, rollback_id) < 2:
            time.sleep(0.05)
    # the lifespan's shutdown: no new step, the calls in flight recorded, the rollback interrupted
    with ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        assert row.status == "interrupted"
        assert store.events_of(session, rollback_id)[-1].type == "server-stopped"
        done_before = {s.component: s.attempts for s in row.steps if s.status == "succeeded"}
    assert 2 <= len(done_before) < len(FUNCTIONS)

    monkeypatch.setenv("LASTGOOD_TEST_STEP_DELAY", "0")
    second = make_state(tmp_path, guard_tick=0.2, recover_every=0.5)
    with TestClient(create_app(second)):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _status(ledger, rollback_id) != "succeeded":
            time.sleep(0.1)
    with ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        assert row.status == "succeeded"
        for step in row.steps:
            if step.component in done_before:  # finished before the shutdown: not applied again
                assert step.attempts == done_before[step.component]
        succeeded = [e.data["component"] for e in store.events_of(session, rollback_id) if e.type == "step-succeeded"]
        assert sorted(succeeded) == sorted(FUNCTIONS)


def _succeeded(ledger: Ledger, rollback_id: str) -> int:
    with ledger.session() as session:
        return sum(s.status == "succeeded" for s in store.get_rollback(session, rollback_id).steps)


def _status(ledger: Ledger, rollback_id: str) -> str:
    with ledger.session() as session:
        return store.get_rollback(session, rollback_id).status
