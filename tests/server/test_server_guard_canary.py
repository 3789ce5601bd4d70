"""The server's guard follows a deployment started from the CLI: `lastgood deploy` (another process) shifts 10% of
the shop's api to a version failing 5% of requests (the whole function stays far below the 5% trigger); the
server notices the release the deployment recorded, its guard builds a canary judge for the split in flight
(`Guard.refresh_canaries`) and judges it each period, and the bad canary is rolled back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import poll
from fastapi.testclient import TestClient

from lastgood.aws.clients import AwsClients
from lastgood.ledger import store
from lastgood.server.app import create_app
from lastgood.server.state import ServerState
from lastgood.service import releases
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint
from lastgood.testing.traffic import FunctionTraffic, TrafficSimulator
from server_fixture import Users, add_users, make_state

API = "shop-api-prod"
STATUS = "/api/v1/apps/shop/environments/prod"


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


@pytest.fixture
def canary_shop(aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path) -> Path:
    shop.create_shop(aws, "prod")
    text = shop.runbook_text(aws_env.url, "sqlite:///state.db", period="1s", for_="3s")
    (tmp_path / "lastgood.yaml").write_text(text + shop.canary_text(period="1s", warmup="2s") + "guard: {watch: 2m}\n")
    return tmp_path


@pytest.fixture
def traffic(aws: AwsClients) -> Iterator[FunctionTraffic]:
    function = FunctionTraffic(API, 400.0, {"1": 0.005}, 0.005)
    simulator = TrafficSimulator(aws, [function])
    simulator.start()
    yield function
    simulator.stop()


def alias(aws: AwsClients) -> tuple[str, dict[str, Any]]:
    live = aws.client("lambda").get_alias(FunctionName=API, Name="live")
    return str(live["FunctionVersion"]), dict((live.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def test_the_servers_guard_judges_the_canary_of_a_deployment_started_from_the_cli(
    canary_shop: Path, aws: AwsClients, traffic: FunctionTraffic
) -> None:
    state: ServerState = make_state(canary_shop, guard_tick=0.2)
    users: Users = add_users(state)
    releases.record(state.apps.env_context("shop", "prod", "setup"), "v1")
    version = shop.publish_new_version(aws, API, "v2")
    traffic.error_rate_by_version[version] = 0.05
    command = [sys.executable, "-m", "lastgood", "deploy", "prod", "-c", "api", "--version", version]
    command += ["--steps", "10,50", "--pause", "60s", "--yes", "-o", "json", "-f", str(canary_shop / "lastgood.yaml")]
    viewer = users.headers("viewer")
    with TestClient(create_app(state)) as client:
        process = subprocess.Popen(
            command, env={**os.environ, "LASTGOOD_USER": "dora"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            # The server's guard follows the canary while it is in flight: every health it shows, until the end.
            seen: list[dict[str, Any]] = []

            def look() -> bool:
                guard = client.get(STATUS, headers=viewer).json()["guard"]
                if guard is not None and guard["canaries"]:
                    seen.append(guard)
                return process.poll() is not None

            poll(lambda: look(), bool, timeout=90)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        judged = next((g for g in reversed(seen) if g["canaries"][0].get("periods_judged", 0) >= 1), None)
        assert judged is not None, (seen[-3:], err)
        assert judged["release"] == version and judged["evaluations"] >= 1, judged
        (canary,) = judged["canaries"]
        assert canary["canary_version"] == version and canary["baseline_version"] == "1", canary
        # Whichever judge reaches the verdict first: the deployment's own (its process holds prod) or the server's,
        # which then cannot act while prod is held and says so.
        states = {g["canaries"][0]["state"] for g in seen}
        assert states <= {"warming-up", "continue", "rollback"} and states - {"warming-up"}, states
        refused = [g["message"] for g in seen if "canary judge (api at 10%)" in g["message"]]
        assert not refused or "rollback" in states, (states, refused)
        assert all("held by deploy" in m and "errors worse on version" in m for m in refused), refused
        result = json.loads(out)
        assert process.returncode == 1 and result["status"] == "aborted", (result, err)
        rollback_id = result["rollback"]["id"]
        assert alias(aws) == ("1", {})
        rollback = client.get(f"/api/v1/rollbacks/{rollback_id}", headers=viewer).json()
        assert rollback["status"] == "succeeded", rollback
        final = poll(
            lambda: client.get(STATUS, headers=viewer).json(),
            lambda s: s["guard"]["status"] != "watching",
        )
    # Rolled back by the deployment's own judge (its process held prod); the server's watch then ended.
    assert rollback["requested_by"] == "lastgood-deploy", rollback
    assert final["guard"]["status"] == "ended" and "no longer live" in final["guard"]["message"], final["guard"]
    with state.apps.ledger_of("shop").session() as session:
        bad = store.get_release(session, "shop", "prod", version)
    assert bad.bad, bad
    assert final["live"]["label"] == "v1"
