"""A real `lastgood rollback` process is killed mid-way (SIGKILL): `lastgood resume` is refused while its lease
is live, then takes it over and finishes without redoing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint

FUNCTIONS = [f"crash-fn{i:02d}" for i in range(12)]


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def write_runbook(directory: Path, endpoint: str) -> Path:
    lines = [
        "app: crashy",
        "state: sqlite:///state.db",
        "environments:",
        f"  prod: {{aws: {{region: us-east-1, endpoint_url: '{endpoint}'}}}}",
        "components:",
    ]
    lines += [f"  - {{name: {name}, kind: lambda-alias, function: {name}}}" for name in FUNCTIONS]
    path = directory / "lastgood.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def lastgood(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lastgood", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def versions(aws: AwsClients) -> dict[str, str]:
    client = aws.client("lambda")
    return {name: client.get_alias(FunctionName=name, Name="live")["FunctionVersion"] for name in FUNCTIONS}


def test_killed_rollback_resumes_without_redoing(aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path) -> None:
    role = shop._role(aws)
    for name in FUNCTIONS:
        shop.create_function(aws, name, role)
    runbook = write_runbook(tmp_path, aws_env.url)
    env = {**os.environ, "LASTGOOD_FILE": str(runbook)}
    assert lastgood("release", "record", "prod", "--version", "r1", env=env).wait(60) == 0
    for name in FUNCTIONS:
        shop.shift_alias(aws, name, "1", shop.publish_new_version(aws, name, "r2"), 1.0)
    assert lastgood("release", "record", "prod", "--version", "r2", env=env).wait(60) == 0

    env["LASTGOOD_LEASE_SECONDS"] = "10"  # long enough for the refused resume to start on a busy machine
    slow = {**env, "LASTGOOD_TEST_STEP_DELAY": "0.4"}
    process = lastgood("rollback", "prod", "--yes", "--parallel", "2", "-o", "json", env=slow)
    ledger = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")
    deadline = time.monotonic() + 60
    rollback_id = None
    while time.monotonic() < deadline:
        with ledger.session() as session:
            rollbacks = store.list_rollbacks(session, "crashy", "prod")
            done = [s for s in rollbacks[0].steps if s.status == "succeeded"] if rollbacks else []
            if len(done) >= 4:
                rollback_id = rollbacks[0].id
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert rollback_id is not None, "the rollback never got going"

    with ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        assert row.status == "running"  # the process died; nothing marked it finished
        finished_before = {s.component: (s.finished_at, s.attempts) for s in row.steps if s.status == "succeeded"}
        unfinished = [s.component for s in row.steps if s.status != "succeeded"]
    assert 4 <= len(finished_before) < len(FUNCTIONS)
    assert unfinished
    live = versions(aws)
    assert all(live[name] == "1" for name in finished_before)
    assert any(live[name] == "2" for name in unfinished)

    # The owner's lease is still live: resume is refused, naming the owner, and changes nothing.
    refused = lastgood("resume", rollback_id, env=env)
    _, err = refused.communicate(timeout=60)
    assert refused.returncode == 3, err
    assert f"rollback {rollback_id} is being run by" in err and f"pid {process.pid}" in err
    assert versions(aws) == live
    time.sleep(10.5)  # the lease expires: anyone may take the rollback over

    resumed = lastgood("resume", rollback_id, "-o", "json", env=env)
    out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, err
    result = json.loads(out)
    assert result["status"] == "succeeded"
    assert set(versions(aws).values()) == {"1"}

    with ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        assert all(s.status == "succeeded" for s in row.steps)
        for step in row.steps:
            if step.component in finished_before:
                assert (step.finished_at, step.attempts) == finished_before[step.component]
        events = store.events_of(session, rollback_id)
        succeeded = [e.data["component"] for e in events if e.type == "step-succeeded"]
        assert sorted(succeeded) == sorted(FUNCTIONS)  # each step succeeded exactly once
        assert [e.type for e in events].count("rollback-resumed") == 1
        assert [e.type for e in events].count("lease-taken-over") == 1
        releases = {r.label: r for r in store.list_releases(session, "crashy", "prod")}
        assert releases["r2"].bad
        assert store.live_release(session, "crashy", "prod").label == "r1"  # type: ignore[union-attr]
