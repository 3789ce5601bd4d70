"""Three server processes on one PostgreSQL (one api, two workers) guarding 300 environments: the worker running a
rollback is killed with SIGKILL, the other takes it over and finishes it without applying a step twice; every
guard period of every environment is judged once, by one of the two workers."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from api_helpers import poll
from sqlalchemy import select

from lastgood.aws.clients import AwsClients
from lastgood.ledger import store
from lastgood.ledger.tables import EventRow, GuardPeriodRow
from lastgood.server.apps import Apps
from lastgood.service import releases
from lastgood.service.access import create_token
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint

pytestmark = pytest.mark.slow

FLEET = 300
FUNCTIONS = [f"replica-fn-{i}" for i in range(6)]
LEASE = 10
PERIOD = 30
WATCH = 130


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Replica:
    role: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def write_runbooks(directory: Path, endpoint: str, state: str) -> None:
    aws = f"{{region: us-east-1, endpoint_url: '{endpoint}'}}"
    crashy = ["app: crashy", f"state: {state}", "environments:", f"  prod: {{aws: {aws}}}", "components:"]
    crashy += [f"  - {{name: {FUNCTIONS[0]}, kind: lambda-alias, function: {FUNCTIONS[0]}}}"]
    crashy += [  # one after another: the kill lands between two steps
        f"  - {{name: {n}, kind: lambda-alias, function: {n}, depends_on: [{previous}]}}"
        for previous, n in itertools.pairwise(FUNCTIONS)
    ]
    (directory / "crashy.yaml").write_text("\n".join(crashy) + "\n")
    fleet = ["app: fleet", f"state: {state}", f"guard: {{watch: {WATCH}s}}", "environments:"]
    fleet += [f"  e{i:03d}: {{aws: {aws}}}" for i in range(FLEET)]
    fleet += [
        "components:",
        "  - {name: config, kind: ssm-parameter, parameters: ['/fleet/{env}/']}",
        "triggers:",
        "  - name: errors",
        "    cloudwatch: {namespace: AWS/Lambda, metric: Errors, stat: Sum, dimensions: {FunctionName: 'fleet-{env}'}}",
        "    when: '> 5'",
        f"    for: {PERIOD}s",
        f"    period: {PERIOD}s",
        "    action: rollback",
    ]
    (directory / "fleet.yaml").write_text("\n".join(fleet) + "\n")


def start(role: str, directory: Path, state: str, extra: dict[str, str]) -> Replica:
    port = free_port()
    command = [sys.executable, "-m", "lastgood", "server", "--role", role, "--runbook", str(directory)]
    command += ["--state", state, "--port", str(port), "--insecure-cookies"]
    env = {**os.environ, "LASTGOOD_LEASE_SECONDS": str(LEASE), **extra}
    log = (directory / f"{role}-{port}.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    return Replica(role, port, process)


def ready(replica: Replica) -> bool:
    if replica.process.poll() is not None:
        raise AssertionError(f"the {replica.role} replica exited with {replica.process.returncode}")
    try:
        return httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def cluster(tmp_path: Path, aws_env: LocalEndpoint, pg_database_url: str) -> Iterator[list[Replica]]:
    write_runbooks(tmp_path, aws_env.url, pg_database_url)
    slow_steps = {"LASTGOOD_TEST_STEP_DELAY": "2"}
    with ExitStack() as stack:
        replicas = [start("api", tmp_path, pg_database_url, {})]
        replicas += [start("worker", tmp_path, pg_database_url, slow_steps) for _ in range(2)]
        for replica in replicas:
            stack.callback(_stop, replica)
        for replica in replicas:
            assert poll(lambda r=replica: ready(r), bool, timeout=90), f"{replica.role} never became ready"
        yield replicas


def _stop(replica: Replica) -> None:
    if replica.process.poll() is None:
        replica.process.send_signal(signal.SIGTERM)
        try:
            replica.process.wait(30)
        except subprocess.TimeoutExpired:
            replica.process.kill()


def test_a_killed_worker_costs_nothing_and_each_guard_period_is_judged_once(
    cluster: list[Replica], tmp_path: Path, aws: AwsClients, pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LASTGOOD_LEASE_SECONDS", str(LEASE))
    api, *workers = cluster
    apps = Apps.load([tmp_path], pg_database_url)
    ledger = apps.ledger
    token = create_token(ledger, "olive", "operator", created_by="test").token
    ssm = aws.client("ssm")
    for i in range(FLEET):
        ssm.put_parameter(Name=f"/fleet/e{i:03d}/level", Value="1", Type="String")
    with ThreadPoolExecutor(8) as pool:  # 300 fresh releases: the workers start guarding each
        list(pool.map(lambda i: releases.record(apps.env_context("fleet", f"e{i:03d}", "ci"), "r1"), range(FLEET)))
    all_recorded = time.monotonic()

    rollback_id, pid = rollback_two_steps_in(apps, aws, api, token)
    running = next((w for w in workers if w.process.pid == pid), None)
    assert running is not None, f"held by pid {pid}, not a worker ({[w.process.pid for w in workers]})"
    running.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    running.process.wait(10)
    with ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        before = {s.component: s.attempts for s in row.steps if s.status == "succeeded"}
    assert 2 <= len(before) < len(FUNCTIONS)

    def status() -> str:
        with ledger.session() as session:
            return store.get_rollback(session, rollback_id).status

    assert poll(status, lambda s: s == "succeeded", timeout=120) == "succeeded"
    with ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        # Finished steps were not run again; the one in flight when its worker died is tried once more (its
        # live state read first: an alias already moved is verified, not moved twice); each finished once.
        assert all(step.attempts == before[step.component] for step in row.steps if step.component in before)
        assert all(step.attempts <= 2 for step in row.steps), [(s.component, s.attempts) for s in row.steps]
    succeeded_once_each(apps, rollback_id)
    with ledger.session() as session:
        taken = session.scalars(
            select(EventRow).where(EventRow.rollback_id == rollback_id, EventRow.type == "lease-taken-over")
        ).all()
        assert len(taken) == 1 and f"pid {pid}" in taken[0].message
        takeover_seconds = (taken[0].at - killed_at_wall(killed_at)).total_seconds()
    assert takeover_seconds <= 30, f"taken over {takeover_seconds:.1f}s after the kill"
    print(f"rollback {rollback_id} taken over {takeover_seconds:.1f}s after the SIGKILL (lease {LEASE}s)")
    client = aws.client("lambda")
    assert {client.get_alias(FunctionName=n, Name="live")["FunctionVersion"] for n in FUNCTIONS} == {"1"}

    # The fleet's windows close; every period of every environment was claimed once and judged by one worker.
    time.sleep(max(0.0, all_recorded + WATCH + 2 * PERIOD - time.monotonic()))
    with ledger.session() as session:
        rows = session.scalars(select(GuardPeriodRow).where(GuardPeriodRow.app == "fleet")).all()
    per_env: dict[str, list[GuardPeriodRow]] = {}
    for period in rows:
        per_env.setdefault(period.env, []).append(period)
    missing = sorted(set(f"e{i:03d}" for i in range(FLEET)) - set(per_env))
    assert not missing, (missing, _log_lines(tmp_path, missing[:3]))
    judges = Counter(p.claimed_by for p in rows)
    # which workers judged depends on when the kill came: the first periods may fall due after it
    assert set(judges) <= {f"{socket.gethostname()}:{w.process.pid}" for w in workers}, judges
    unfinished = [p for p in rows if p.finished_at is None]
    killed = f":{pid}"
    assert all(p.claimed_by.endswith(killed) for p in unfinished), unfinished  # only the dead worker left any
    assert len(unfinished) <= 8  # at most its jobs in flight
    gaps = 0
    for env, periods in per_env.items():
        ends = sorted(p.period_end for p in periods)
        assert len(ends) >= 3, (env, ends)
        gaps += sum(b - a != timedelta(seconds=PERIOD) for a, b in itertools.pairwise(ends))
    # A period is skipped only when the workers fall a whole period behind (the scan judges the newest one): on a
    # loaded 2-core machine they do at times; bench/scale_out.py measures the lag.
    assert gaps <= len(rows) // 4, f"{gaps} periods skipped of {len(rows)}"
    print(f"{len(rows)} periods of {FLEET} environments claimed once each; by worker {dict(judges)};")
    print(f"{len(unfinished)} left unfinished by the killed worker; {gaps} periods skipped (workers behind)")
    for env in ("e000", "e150", "e299"):  # what every replica shows: the periods all workers judged, counted once
        shown = httpx.get(
            f"{api.url}/api/v1/apps/fleet/environments/{env}", headers={"Authorization": f"Bearer {token}"}
        ).json()["guard"]
        judged = sum(p.finished_at is not None for p in per_env[env])
        assert shown["status"] == "ended" and shown["evaluations"] == judged, (env, shown, judged)


def rollback_two_steps_in(apps: Apps, aws: AwsClients, api: Replica, token: str) -> tuple[str, int]:
    """Roll crashy's prod back through the API replica; (its id, the pid of the worker running it) once two of
    its steps are done."""
    ledger = apps.ledger
    role = shop._role(aws)
    for name in FUNCTIONS:
        shop.create_function(aws, name, role)
    crashy = apps.env_context("crashy", "prod", "setup")
    releases.record(crashy, "r1")
    for name in FUNCTIONS:
        shop.shift_alias(aws, name, "1", shop.publish_new_version(aws, name, "r2"), 1.0)
    releases.record(crashy, "r2")
    asked = httpx.post(
        f"{api.url}/api/v1/apps/crashy/environments/prod/rollbacks",
        json={"reason": "r2 is bad"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=90,
    )
    assert asked.status_code == 202 and asked.json()["status"] == "running", asked.text  # relayed by the worker
    rollback_id = str(asked.json()["id"])

    def two_steps_done() -> int | None:
        with ledger.session() as session:
            row = store.get_rollback(session, rollback_id)
            holder = httpx.get(
                f"{api.url}/api/v1/apps/crashy/environments/prod", headers={"Authorization": f"Bearer {token}"}
            ).json()["holder"]
            done = sum(s.status == "succeeded" for s in row.steps)
            return int(holder["pid"]) if done >= 2 and holder else None

    pid = poll(two_steps_done, lambda found: found is not None, timeout=60)
    assert pid is not None, "the rollback never got two steps done"
    return rollback_id, pid


def succeeded_once_each(apps: Apps, rollback_id: str) -> None:
    with apps.ledger.session() as session:
        assert store.get_rollback(session, rollback_id).status == "succeeded"
        finished = Counter(
            e.data["component"]
            for e in session.scalars(select(EventRow).where(EventRow.rollback_id == rollback_id))
            if e.type == "step-succeeded"
        )
    assert finished == dict.fromkeys(FUNCTIONS, 1), finished


def test_sigterm_drains_a_worker_and_another_finishes_its_rollback(
    cluster: list[Replica], tmp_path: Path, aws: AwsClients, pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LASTGOOD_LEASE_SECONDS", str(LEASE))
    api, *workers = cluster
    apps = Apps.load([tmp_path], pg_database_url)
    token = create_token(apps.ledger, "olive", "operator", created_by="test").token
    rollback_id, pid = rollback_two_steps_in(apps, aws, api, token)
    running = next(w for w in workers if w.process.pid == pid)
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(40) == 0  # it stopped at the next step, recorded, and left
    other = next(w for w in workers if w is not running)
    assert ready(other)

    def status() -> str:
        with apps.ledger.session() as session:
            return store.get_rollback(session, rollback_id).status

    assert poll(status, lambda s: s == "succeeded", timeout=90) == "succeeded"
    succeeded_once_each(apps, rollback_id)
    with apps.ledger.session() as session:
        events = session.scalars(select(EventRow).where(EventRow.rollback_id == rollback_id)).all()
    assert any(e.type == "server-stopped" for e in events), [e.type for e in events]
    client = aws.client("lambda")
    assert {client.get_alias(FunctionName=n, Name="live")["FunctionVersion"] for n in FUNCTIONS} == {"1"}


def _log_lines(directory: Path, envs: list[str]) -> list[str]:
    lines = []
    for log in directory.glob("*.log"):
        lines += [f"{log.name}: {line}" for line in log.read_text().splitlines() if any(e in line for e in envs)]
    return lines[-40:]


def killed_at_wall(monotonic_at: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=time.monotonic() - monotonic_at)
