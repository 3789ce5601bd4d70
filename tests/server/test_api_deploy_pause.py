"""POST /api/v1/deployments/{id}/pause and /resume: the same pause and resume as `lastgood pause` / `resume`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from lastgood.aws.clients import AwsClients
from lastgood.server.state import ServerState
from lastgood.service import releases
from lastgood.testing import shop
from server_fixture import Users

PROD = "/api/v1/apps/shop/environments/prod"
API = "shop-api-prod"


def alias(aws: AwsClients) -> tuple[str, dict[str, Any]]:
    live = aws.client("lambda").get_alias(FunctionName=API, Name="live")
    return str(live["FunctionVersion"]), dict((live.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_deployment_is_paused_and_resumed_through_the_api(
    client: TestClient, users: Users, server_state: ServerState, aws: AwsClients
) -> None:
    releases.record(server_state.apps.env_context("shop", "prod", "setup"), "v1")
    version = shop.publish_new_version(aws, API, "v2")
    operator, viewer = users.headers("operator"), users.headers("viewer")
    body = {"component": "api", "version": version, "steps": [10, 50], "pause": "5m", "confirm": "rollback-production"}
    started = client.post(f"{PROD}/deployments", json=body, headers=operator)
    assert started.status_code == 202, started.text
    url = f"/api/v1/deployments/{started.json()['id']}"

    assert client.post(f"{url}/pause", headers=viewer).status_code == 403
    paused = client.post(f"{url}/pause", json={"wait": "30s"}, headers=operator)
    assert paused.status_code == 200, paused.text
    assert paused.json()["status"] == "paused" and "paused by olive" in paused.json()["message"]
    assert alias(aws) == ("1", {version: 0.1})  # left where the step put it
    again = client.post(f"{url}/pause", headers=operator)
    assert again.status_code == 409 and "paused already" in again.json()["detail"]
    assert client.get(url, headers=viewer).json()["status"] == "paused"
    status = client.get(PROD, headers=viewer).json()
    assert [d["status"] for d in status["deployments"]] == ["paused"]

    assert client.post(f"{url}/resume", headers=viewer).status_code == 403
    resumed = client.post(f"{url}/resume", headers=operator)
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["status"] == "running" and resumed.json()["deployment"]["current_step"] == 0
    promoted = client.post(f"{url}/promote", json={"wait": "30s"}, headers=operator)
    assert promoted.status_code == 200 and promoted.json()["status"] == "promoted", promoted.text
    assert alias(aws) == (version, {})
    finished = client.post(f"{url}/resume", headers=operator)
    assert finished.status_code == 409 and "promoted" in finished.json()["detail"], finished.text
    assert client.post(f"{url}/pause", headers=operator).status_code == 409
    assert client.post("/api/v1/deployments/dp-nope/pause", headers=operator).status_code == 404
    assert client.post("/api/v1/deployments/dp-nope/resume", headers=operator).status_code == 404
