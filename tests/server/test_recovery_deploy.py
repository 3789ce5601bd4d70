"""A `lastgood deploy` process is killed (SIGKILL) between two steps; a server started on its ledger (SQLite and
PostgreSQL) waits for the dead owner's lease to expire and pauses the deployment as lastgood-server: status
`paused`, the traffic where the last step left it, an event naming the dead owner, the environment let go."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from api_helpers import poll
from fastapi.testclient import TestClient

from lastgood.aws.clients import AwsClients
from lastgood.engine.deploy.rows import unfinished
from lastgood.ledger import store
from lastgood.server.app import create_app
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint
from server_fixture import add_users, make_state

API = "shop-api-prod"
LEASE = 3.0


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def alias(aws: AwsClients) -> tuple[str, dict[str, Any]]:
    live = aws.client("lambda").get_alias(FunctionName=API, Name="live")
    return str(live["FunctionVersion"]), dict((live.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def deploy_process(directory: Path, version: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "lastgood", "deploy", "prod", "-c", "api", "--version", version]
    command += ["--steps", "10,50", "--pause", "10m", "--yes", "-f", str(directory / "lastgood.yaml")]
    env = {**os.environ, "LASTGOOD_LEASE_SECONDS": str(LEASE), "LASTGOOD_USER": "dora"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_server_pauses_a_deployment_whose_process_was_killed(
    aws_env: LocalEndpoint,
    aws: AwsClients,
    tmp_path: Path,
    ledger_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop.create_shop(aws, "prod")
    (tmp_path / "lastgood.yaml").write_text(shop.runbook_text(aws_env.url, ledger_url))
    monkeypatch.setenv("LASTGOOD_LEASE_SECONDS", str(LEASE))
    state = make_state(tmp_path, guard_tick=0.2, recover_every=0.3)
    ctx = state.apps.env_context("shop", "prod", "setup")
    version = shop.publish_new_version(aws, API, "v2")

    process = deploy_process(tmp_path, version)
    try:
        shifted = lambda r: (bool(r) and r[0].current_step >= 0) or process.poll() is not None  # noqa: E731
        rows = poll(lambda: unfinished(ctx), shifted)
        assert process.poll() is None, process.communicate()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    killed_at = time.monotonic()
    assert rows and rows[0].status == "running" and rows[0].weight == 0.1, rows
    deployment_id = rows[0].id
    assert alias(aws) == ("1", {version: 0.1})

    users = add_users(state)
    with TestClient(create_app(state)) as client:
        url = f"/api/v1/deployments/{deployment_id}"
        detail = poll(
            lambda: client.get(url, headers=users.headers("viewer")).json(), lambda d: d["status"] != "running"
        )
        took = time.monotonic() - killed_at
        assert detail["status"] == "paused", detail
        assert took >= LEASE - 1.0, "the server must not take over before the dead owner's lease expired"
        assert detail["weight"] == 0.1 and detail["current_step"] == 0, detail
        assert alias(aws) == ("1", {version: 0.1})  # the traffic where the last step left it
        status = client.get("/api/v1/apps/shop/environments/prod", headers=users.headers("viewer")).json()
        assert status["holder"] is None, status  # a person may promote, abort or resume it now
    with ctx.session() as session:
        events = [e for e in store.events_since(session, "shop", "prod") if e.type == "deploy-paused"]
    assert len(events) == 1 and events[0].actor == "lastgood-server", events
    assert f"dora (pid {process.pid} on " in events[0].message and "lease expired" in events[0].message
    assert "paused at 10% of api" in events[0].message
