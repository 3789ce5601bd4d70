"""The server on a PostgreSQL ledger (a fresh database per test): a rollback through the API to success, the
two-person approvals, a SIGKILLed rollback finished by the server, and the scheduler's and /metrics' queries
(`live_releases`, `orphans`, `_stopped_by_server`, `service.figures`) answering there as on SQLite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_helpers import held, poll, rollback_finished, two_releases
from dashboard_helpers import write_approval_runbook
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from lastgood.aws.clients import AwsClients
from lastgood.ledger import store
from lastgood.server.app import create_app
from lastgood.server.state import ServerState
from lastgood.service import figures, releases
from lastgood.service.recovery import note_server_stop, orphans
from lastgood.service.rollbacks import Hooks, RollbackRequest, request_rollback
from lastgood.service.watching import live_releases
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint
from server_fixture import Users, add_users, make_state

pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset

PROD = "/api/v1/apps/shop/environments/prod"
PHRASE = "rollback-production"


@pytest.fixture
def server_state(shop_dir: Path, pg_database_url: str) -> ServerState:
    return make_state(shop_dir, state=pg_database_url)


def aliases(aws: AwsClients) -> set[str]:
    client = aws.client("lambda")
    return {
        client.get_alias(FunctionName=f, Name="live")["FunctionVersion"] for f in ("shop-api-prod", "shop-worker-prod")
    }


def test_the_ledger_is_postgresql_and_a_rollback_through_the_api_succeeds(
    client: TestClient, users: Users, server_state: ServerState, aws: AwsClients
) -> None:
    assert server_state.apps.state_url.startswith("postgresql+psycopg://")
    assert server_state.apps.ledger_of("shop").engine.dialect.name == "postgresql"
    two_releases(server_state)
    started = client.post(
        f"{PROD}/rollbacks", json={"reason": "bad v2", "confirm": PHRASE}, headers=users.headers("operator")
    )
    assert started.status_code == 202, started.text
    detail = rollback_finished(client, users.headers("viewer"), started.json()["id"])
    assert detail["status"] == "succeeded" and detail["requested_by"] == "olive", detail
    assert aliases(aws) == {"1"}
    status = client.get(PROD, headers=users.headers("viewer")).json()
    assert status["live"]["label"] == "v1" and status["last_rollback"]["id"] == detail["id"]
    verified = client.get("/api/v1/apps/shop/audit/verify", headers=users.headers("viewer"))
    assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text


def test_approvals_the_requester_is_refused_and_the_second_approver_runs_it(
    shop_dir: Path, pg_database_url: str, aws: AwsClients
) -> None:
    state = make_state(write_approval_runbook(shop_dir), state=pg_database_url)
    users = add_users(state, {"rita": "approver"})
    two_releases(state)
    with TestClient(create_app(state)) as client:
        body = {"reason": "v2 is slow", "severity": "high", "confirm": PHRASE}
        asked = client.post(f"{PROD}/rollbacks", json=body, headers=users.headers("rita"))
        assert asked.status_code == 200 and asked.json()["status"] == "awaiting-approval", asked.text
        rollback_id = asked.json()["id"]
        own = client.post(f"/api/v1/rollbacks/{rollback_id}/approve", headers=users.headers("rita"))
        assert own.status_code == 403 and "rita requested this rollback" in own.json()["detail"], own.text
        first = client.post(f"/api/v1/rollbacks/{rollback_id}/approve", headers=users.headers("approver"))
        assert first.status_code == 200, first.text
        assert client.get(f"/api/v1/rollbacks/{rollback_id}", headers=users.headers("viewer")).json()["status"] == (
            "awaiting-approval"
        )
        assert aliases(aws) == {"2"}
        second = client.post(f"/api/v1/rollbacks/{rollback_id}/approve", headers=users.headers("admin"))
        assert second.status_code == 202, second.text
        detail = rollback_finished(client, users.headers("viewer"), rollback_id)
    assert detail["status"] == "succeeded", detail
    assert aliases(aws) == {"1"}
    with state.apps.ledger_of("shop").session() as session:
        approvers = [e.actor for e in store.events_of(session, rollback_id) if e.type == "approved"]
    assert approvers == ["abe", "ada"], approvers


FUNCTIONS = [f"pg-crash-fn{i:02d}" for i in range(8)]
LEASE = 3.0


def test_a_killed_rollback_is_finished_by_the_server_on_postgresql(
    aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path, pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = shop._role(aws)
    for name in FUNCTIONS:
        shop.create_function(aws, name, role)
    lines = ["app: crashy", f"state: {pg_database_url}", "environments:"]
    lines += [f"  prod: {{aws: {{region: us-east-1, endpoint_url: '{aws_env.url}'}}}}", "components:"]
    lines += [f"  - {{name: {n}, kind: lambda-alias, function: {n}}}" for n in FUNCTIONS]
    (tmp_path / "lastgood.yaml").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "LASTGOOD_FILE": str(tmp_path / "lastgood.yaml"), "LASTGOOD_LEASE_SECONDS": str(LEASE)}
    monkeypatch.setenv("LASTGOOD_LEASE_SECONDS", str(LEASE))
    state = make_state(tmp_path, guard_tick=0.2, recover_every=0.3)
    ctx = state.apps.env_context("crashy", "prod", "setup")
    store_ledger = state.apps.ledger_of("crashy")
    assert store_ledger.engine.dialect.name == "postgresql"
    releases.record(ctx, "r1")
    for name in FUNCTIONS:
        shop.shift_alias(aws, name, "1", shop.publish_new_version(aws, name, "r2"), 1.0)
    releases.record(ctx, "r2")

    command = [sys.executable, "-m", "lastgood", "rollback", "prod", "--yes", "--parallel", "2"]
    process = subprocess.Popen(
        command, env={**env, "LASTGOOD_TEST_STEP_DELAY": "0.4"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )

    def started() -> str | None:
        with store_ledger.session() as session:
            rows = store.list_rollbacks(session, "crashy", "prod")
            return rows[0].id if rows and sum(s.status == "succeeded" for s in rows[0].steps) >= 2 else None

    rollback_id = poll(started, lambda found: found is not None or process.poll() is not None)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    assert rollback_id is not None, "the rollback never got going"
    with store_ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        assert row.status == "running"
        before = {s.component: s.attempts for s in row.steps if s.status == "succeeded"}
    assert 2 <= len(before) < len(FUNCTIONS)

    with TestClient(create_app(state)):
        poll(lambda: _status(state, rollback_id), lambda s: s != "running", timeout=60)
    with store_ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        assert row.status == "succeeded"
        assert all(step.attempts == before[step.component] for step in row.steps if step.component in before)
        events = store.events_of(session, rollback_id)
        takeovers = [e for e in events if e.type == "lease-taken-over"]
        assert len(takeovers) == 1 and takeovers[0].actor == "lastgood-server"
        assert f"pid {process.pid}" in takeovers[0].message
    client = aws.client("lambda")
    assert {client.get_alias(FunctionName=n, Name="live")["FunctionVersion"] for n in FUNCTIONS} == {"1"}


def _status(state: ServerState, rollback_id: str) -> str:
    with state.apps.ledger_of("crashy").session() as session:
        return store.get_rollback(session, rollback_id).status


def interrupted(state: ServerState) -> str:
    """A real rollback of prod stopped before its first step (as by Ctrl-C): `interrupted`."""
    stop = threading.Event()
    hooks = Hooks(on_start=lambda rollback_id, steps: stop.set(), stop=stop)
    outcome = request_rollback(state.apps.env_context("shop", "prod", "rita"), RollbackRequest(reason="x"), hooks)
    assert outcome.id is not None and outcome.status == "interrupted", outcome
    return outcome.id


def test_the_schedulers_and_metrics_queries_on_postgresql(
    server_state: ServerState, aws: AwsClients, aws_env: LocalEndpoint
) -> None:
    shop.create_shop(aws, "staging")
    ledger = server_state.apps.ledger_of("shop")
    assert ledger.engine.dialect.name == "postgresql"
    assert live_releases(ledger, ["shop"]) == []
    two_releases(server_state)
    staging = server_state.apps.env_context("shop", "staging", "setup")
    releases.record(staging, "s1")
    found = {(r.env, r.label): r for r in live_releases(ledger, ["shop", "other"])}
    assert set(found) == {("prod", "v2"), ("staging", "s1")}
    assert found["prod", "v2"].newest_id == found["prod", "v2"].release_id and not found["prod", "v2"].bad
    assert live_releases(ledger, ["other"]) == []

    now = datetime.now(UTC)
    rollback_id = interrupted(server_state)
    assert orphans(ledger, ["shop"], now) == []  # interrupted by a person: not the server's to resume
    note_server_stop(server_state.apps.env_context("shop", "prod", "lastgood-server"), rollback_id)
    (orphan,) = orphans(ledger, ["shop"], datetime.now(UTC))
    assert (orphan.app, orphan.env, orphan.id, orphan.kind) == ("shop", "prod", rollback_id, "rollback")
    with held(server_state):  # a live claim on prod: it waits for that operation to end
        assert orphans(ledger, ["shop"], datetime.now(UTC)) == []
        later = datetime.now(UTC) + timedelta(hours=1)  # once that claim has expired, it is found again
        assert [o.id for o in orphans(ledger, ["shop"], later)] == [rollback_id]
    assert orphans(ledger, ["other"], datetime.now(UTC)) == []

    with TestClient(create_app(server_state)) as client:
        finished = poll(lambda: _shop_status(server_state, rollback_id), lambda s: s == "succeeded")
        assert finished == "succeeded"  # the server's recovery resumed it
        assert aliases(aws) == {"1"}
        scraped = client.get("/metrics")
    assert scraped.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
    }
    assert samples[("lastgood_rollbacks_total", (("app", "shop"), ("env", "prod"), ("status", "succeeded")))] == 1
    assert (
        samples[
            ("lastgood_rollback_duration_seconds_count", (("app", "shop"), ("env", "prod"), ("status", "succeeded")))
        ]
        == 1
    )
    outcomes = figures.rollback_outcomes(ledger, ["shop"])
    assert [(c.labels, c.value) for c in outcomes] == [(("shop", "prod", "succeeded"), 1)]
    (duration,) = figures.rollback_durations(ledger, ["shop"])
    assert duration.labels == ("shop", "prod", "succeeded") and duration.seconds >= 0
    steps = figures.step_durations(ledger, ["shop"])
    assert steps and {d.labels[0] for d in steps} == {"shop"} and all(d.seconds >= 0 for d in steps)
    assert figures.notification_failures(ledger, ["shop"]) == []


def _shop_status(state: ServerState, rollback_id: str) -> str:
    with state.apps.ledger_of("shop").session() as session:
        return store.get_rollback(session, rollback_id).status
