"""Real processes racing on one environment: two `rollback --yes`, two guards, a guard during a rollback, Ctrl-C.

Exactly one acts; the other is refused (exit 3) naming the holder, or joins the running rollback. The ledger
is SQLite or PostgreSQL; AWS is moto's server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import load_runbook
from lastgood.engine.record import record_release
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.ledger.tables import RollbackRow
from lastgood.runtime.context import EnvContext
from lastgood.testing.endpoint import LocalEndpoint

PARAMS = [f"/race/p{i}" for i in range(3)]
PAIRS = 10  # per ledger backend: 20 raced pairs in all (the count is arbitrary; each pair is one more trial)
TRIGGER = """triggers:
  - name: errors
    cloudwatch: {namespace: AWS/Lambda, metric: Errors, dimensions: {FunctionName: race-fn}}
    per: {namespace: AWS/Lambda, metric: Invocations, dimensions: {FunctionName: race-fn}}
    when: "> 5%"
    for: 2m
    severity: critical
    action: rollback
"""


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def write_runbook(directory: Path, endpoint: str, triggers: str = "") -> Path:
    lines = [
        "app: race",
        "state: sqlite:///state.db",
        "environments:",
        f"  prod: {{aws: {{region: us-east-1, endpoint_url: '{endpoint}'}}}}",
        "components:",
    ]
    lines += [f"  - {{name: p{i}, kind: ssm-parameter, parameters: ['{p}']}}" for i, p in enumerate(PARAMS)]
    path = directory / "lastgood.yaml"
    path.write_text("\n".join(lines) + "\n" + triggers)
    return path


def lastgood(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lastgood", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lastgood", *args], env=env, capture_output=True, text=True, timeout=120
    )


def put_all(aws: AwsClients, value: str) -> None:
    for name in PARAMS:
        aws.client("ssm").put_parameter(Name=name, Value=value, Type="String", Overwrite=True)


def versions(aws: AwsClients) -> dict[str, int]:
    return {name: aws.client("ssm").get_parameter(Name=name)["Parameter"]["Version"] for name in PARAMS}


def setup(aws: AwsClients, tmp_path: Path, endpoint: str, state: str | None, triggers: str = "") -> dict[str, str]:
    env = {**os.environ, "LASTGOOD_FILE": str(write_runbook(tmp_path, endpoint, triggers))}
    if state:
        env["LASTGOOD_STATE"] = state
    put_all(aws, "good")
    assert run("release", "record", "prod", "--version", "good", env=env).returncode == 0
    return env


def record_in_process(env: dict[str, str], label: str) -> None:
    """`release record` without a process of its own: the race is between the rollbacks, not the records."""
    runbook = load_runbook(Path(env["LASTGOOD_FILE"]))
    ledger = open_ledger(env.get("LASTGOOD_STATE") or resolve_url(runbook.state, runbook.base_dir))
    try:
        record_release(EnvContext(runbook, "prod", ledger, AwsClients(runbook.environment("prod").aws)), label)
    finally:
        ledger.engine.dispose()


def race_pairs(aws: AwsClients, env: dict[str, str]) -> None:
    slow = {**env, "LASTGOOD_TEST_STEP_DELAY": "2.0"}
    for pair in range(PAIRS):
        put_all(aws, f"bad-{pair}")
        record_in_process(env, f"bad-{pair}")
        before = versions(aws)
        first = lastgood("rollback", "prod", "--yes", "-o", "json", env=slow)
        second = lastgood("rollback", "prod", "--yes", "-o", "json", env=slow)
        outcomes = [(p, *p.communicate(timeout=120)) for p in (first, second)]
        codes = sorted(p.returncode for p, _, _ in outcomes)
        assert codes == [0, 3], f"pair {pair}: {[(p.returncode, err[-400:]) for p, _, err in outcomes]}"
        winner, out, _ = next(o for o in outcomes if o[0].returncode == 0)
        _, refused_out, refused_err = next(o for o in outcomes if o[0].returncode == 3)
        refusal = refused_out + refused_err  # -o json: the error is a JSON object on stdout
        rollback_id = json.loads(out)["id"]
        assert f"prod is held by rollback {rollback_id}" in refusal, refusal
        assert f"pid {winner.pid}" in refusal and "Nothing was changed" in refusal
        after = versions(aws)
        assert {name: after[name] - before[name] for name in PARAMS} == dict.fromkeys(PARAMS, 1), f"pair {pair}"


def test_racing_rollbacks_sqlite(aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path) -> None:
    race_pairs(aws, setup(aws, tmp_path, aws_env.url, None))
    with open_ledger(f"sqlite:///{tmp_path / 'state.db'}").session() as session:
        rows = store.list_rollbacks(session, "race", "prod", 100)
        assert len(rows) == PAIRS and {r.status for r in rows} == {"succeeded"}


def test_racing_rollbacks_postgresql(
    aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path, pg_database_url: str
) -> None:
    race_pairs(aws, setup(aws, tmp_path, aws_env.url, pg_database_url))
    with open_ledger(pg_database_url).session() as session:
        rows = store.list_rollbacks(session, "race", "prod", 100)
        assert len(rows) == PAIRS and {r.status for r in rows} == {"succeeded"}


def put_errors(aws: AwsClients) -> None:
    """Ten minutes at 50% errors up to the last complete minute, and the current and next minute too: the trigger
    holds at once, also for a guard that starts after the minute has turned (a slow start on a loaded machine)."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    data = []
    for minute in range(-1, 11):
        at = now - timedelta(minutes=minute)
        dims = [{"Name": "FunctionName", "Value": "race-fn"}]
        data += [
            {"MetricName": "Invocations", "Dimensions": dims, "Timestamp": at, "Value": 100.0},
            {"MetricName": "Errors", "Dimensions": dims, "Timestamp": at, "Value": 50.0},
        ]
    aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=data)


def guard_events(tmp_path: Path) -> tuple[list[str], list[str]]:
    with open_ledger(f"sqlite:///{tmp_path / 'state.db'}").session() as session:
        rows = store.list_rollbacks(session, "race", "prod", 100)
        joined = [
            e.rollback_id or "" for e in store.events_since(session, "race", "prod") if e.type == "trigger-joined"
        ]
        return [r.id for r in rows], joined


def test_two_racing_guards_file_one_rollback(aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path) -> None:
    env = setup(aws, tmp_path, aws_env.url, None, TRIGGER)
    put_all(aws, "bad")
    assert run("release", "record", "prod", "--version", "bad", env=env).returncode == 0
    put_errors(aws)
    slow = {**env, "LASTGOOD_TEST_STEP_DELAY": "1.0"}
    guards = [lastgood("guard", "prod", "--for", "20s", "-o", "json", env=slow) for _ in range(2)]
    results = [json.loads(g.communicate(timeout=120)[0]) for g in guards]
    assert sorted(r["status"] for r in results) == ["joined", "rolled-back"], results
    rollbacks, joined = guard_events(tmp_path)
    assert len(rollbacks) == 1  # one incident, one rollback row
    assert joined == rollbacks or any(r["status"] == "joined" and "no longer live" in r["message"] for r in results)


def test_guard_firing_during_a_rollback_joins_it(aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path) -> None:
    env = setup(aws, tmp_path, aws_env.url, None, TRIGGER)
    put_all(aws, "bad")
    assert run("release", "record", "prod", "--version", "bad", env=env).returncode == 0
    person = lastgood("rollback", "prod", "--yes", "-o", "json", env={**env, "LASTGOOD_TEST_STEP_DELAY": "8"})
    wait_for_hold(tmp_path)
    put_errors(aws)
    guard = run("guard", "prod", "--for", "20s", "-o", "json", env=env)
    out, err = person.communicate(timeout=120)
    assert person.returncode == 0, err
    rollback_id = json.loads(out)["id"]
    assert json.loads(guard.stdout)["status"] == "joined", guard.stdout + guard.stderr
    rollbacks, joined = guard_events(tmp_path)
    assert rollbacks == [rollback_id] and joined == [rollback_id]


def wait_for_hold(tmp_path: Path, timeout: float = 30) -> None:
    from lastgood.ledger import holds

    ledger = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ledger.session() as session:
            row = holds.holder(session, "race", "prod")
            if row is not None and row.operation == "rollback":
                rollback = session.get(RollbackRow, row.subject)
                if rollback is not None and rollback.status == "running":
                    return
        time.sleep(0.05)
    pytest.fail("the rollback never held the environment")


def test_ctrl_c_mid_rollback_stops_cleanly_and_resume_finishes(
    aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path
) -> None:
    env = setup(aws, tmp_path, aws_env.url, None)
    put_all(aws, "bad")
    assert run("release", "record", "prod", "--version", "bad", env=env).returncode == 0
    slow = {**env, "LASTGOOD_TEST_STEP_DELAY": "4"}
    process = lastgood("rollback", "prod", "--yes", "--parallel", "1", env=slow)
    wait_for_hold(tmp_path)
    time.sleep(0.5)  # the first step is in flight
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in out and "lastgood resume rb-" in out, out + err
    rollback_id = out.split("lastgood resume ")[1].split()[0]

    with open_ledger(f"sqlite:///{tmp_path / 'state.db'}").session() as session:
        row = store.get_rollback(session, rollback_id)
        assert row.status == "interrupted"
        statuses = {s.component: (s.status, s.attempts) for s in row.steps}
    live = {name: aws.client("ssm").get_parameter(Name=name)["Parameter"]["Value"] for name in PARAMS}
    # Truthful: the step in flight finished and is recorded as done; nothing else was started.
    done = [c for c, (status, attempts) in statuses.items() if status == "succeeded" and attempts == 1]
    assert len(done) == 1 and [c for c, (status, _) in statuses.items() if status == "pending"], statuses
    assert not [c for c, (status, attempts) in statuses.items() if status == "running"]
    assert sorted(v for v in live.values()) == ["bad", "bad", "good"]

    resumed = run("resume", rollback_id, "-o", "json", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "succeeded"
    assert {aws.client("ssm").get_parameter(Name=n)["Parameter"]["Value"] for n in PARAMS} == {"good"}


def test_ctrl_c_stops_the_guard(aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path) -> None:
    env = setup(aws, tmp_path, aws_env.url, None, TRIGGER)
    guard = lastgood("guard", "prod", "--for", "10m", "-o", "json", env=env)
    time.sleep(3)  # started and watching: no data, nothing fires
    started = time.monotonic()
    guard.send_signal(signal.SIGINT)
    out, err = guard.communicate(timeout=30)
    assert guard.returncode == 130, err
    assert time.monotonic() - started < 5
    assert json.loads(out)["status"] == "interrupted"


def test_ctrl_c_at_the_prompt_changes_nothing(aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path) -> None:
    env = setup(aws, tmp_path, aws_env.url, None)
    put_all(aws, "bad")
    assert run("release", "record", "prod", "--version", "bad", env=env).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "lastgood", "rollback", "prod"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    assert process.stderr is not None
    prompt = ""
    while "to continue" not in prompt and time.monotonic() < deadline:
        prompt += process.stderr.read(1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, prompt + err
    with open_ledger(f"sqlite:///{tmp_path / 'state.db'}").session() as session:
        assert store.list_rollbacks(session, "race", "prod") == []
    assert run("rollback", "prod", "--yes", env=env).returncode == 0  # the environment was let go
