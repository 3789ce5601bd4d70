"""Progressive deployments through the API: started in the background, read, promoted, aborted; refused while
the environment is held; bad bodies 422."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import audit_entries, held
from fastapi.testclient import TestClient

from lastgood.aws.clients import AwsClients
from lastgood.server.state import ServerState
from lastgood.service import releases
from lastgood.testing import shop
from server_fixture import Users

PROD = "/api/v1/apps/shop/environments/prod"
PHRASE = "rollback-production"
API = "shop-api-prod"


def alias(aws: AwsClients) -> tuple[str, dict[str, Any]]:
    live = aws.client("lambda").get_alias(FunctionName=API, Name="live")
    return str(live["FunctionVersion"]), dict((live.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def deploy(client: TestClient, headers: dict[str, str], to: str, **body: Any) -> Any:
    wanted = {"component": "api", "version": to, "steps": [10, 50], "pause": "1s", "confirm": PHRASE} | body
    return client.post(f"{PROD}/deployments", json=wanted, headers=headers)


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_deployment_starts_holds_prod_and_is_promoted(
    client: TestClient, users: Users, server_state: ServerState, aws: AwsClients
) -> None:
    releases.record(server_state.apps.env_context("shop", "prod", "setup"), "v1")
    version = shop.publish_new_version(aws, API, "v2")
    operator = users.headers("operator")
    assert deploy(client, users.headers("viewer"), version).status_code == 403
    unconfirmed = deploy(client, operator, version, confirm=None)
    assert unconfirmed.status_code == 409 and PHRASE in unconfirmed.json()["detail"]

    started = deploy(client, operator, version)
    assert started.status_code == 202, started.text
    answer = started.json()
    assert answer["status"] == "running" and answer["deployment"]["started_by"] == "olive", answer
    assert answer["deployment"]["steps"] == [10.0, 50.0, 100.0] and answer["deployment"]["weight"] == 0.1
    assert alias(aws) == ("1", {version: 0.1})
    deployment_id = answer["id"]
    detail = client.get(f"/api/v1/deployments/{deployment_id}", headers=users.headers("viewer")).json()
    assert detail["status"] == "running" and detail["current_step"] == 0 and detail["to_version"] == version

    second = deploy(client, operator, version)
    assert second.status_code == 409 and second.json()["holder"]["id"] == deployment_id, second.text
    rollback = client.post(f"{PROD}/rollbacks", json={"reason": "x", "confirm": PHRASE}, headers=operator)
    assert rollback.status_code == 409 and rollback.json()["holder"]["operation"] == "deploy"

    url = f"/api/v1/deployments/{deployment_id}"
    assert client.post(f"{url}/promote", headers=users.headers("viewer")).status_code == 403
    assert client.post(f"{url}/promote", json={"wait": "an hour"}, headers=operator).status_code == 422
    promoted = client.post(f"{url}/promote", headers=users.headers("admin"))
    assert promoted.status_code == 200 and promoted.json()["status"] == "promoted", promoted.text
    assert alias(aws) == (version, {})
    again = client.post(f"{url}/abort", headers=operator)
    assert again.status_code == 409 and "promoted" in again.json()["detail"]
    status = client.get(PROD, headers=operator).json()
    assert status["live"]["label"] == version and status["holder"] is None
    entries = audit_entries(client, operator)
    assert any(e["type"] == "deploy-started" and e["actor"] == "olive" for e in entries)
    assert any(e["type"] == "deploy-promote-requested" and e["actor"] == "ada" for e in entries), entries


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_an_abort_puts_the_old_version_back_and_marks_the_release_bad(
    client: TestClient, users: Users, server_state: ServerState, aws: AwsClients
) -> None:
    releases.record(server_state.apps.env_context("shop", "prod", "setup"), "v1")
    version = shop.publish_new_version(aws, API, "v2")
    operator = users.headers("operator")
    started = deploy(client, operator, version, release="v2")
    assert started.status_code == 202, started.text
    aborted = client.post(f"/api/v1/deployments/{started.json()['id']}/abort", json={"wait": "20s"}, headers=operator)
    assert aborted.status_code == 200, aborted.text
    body = aborted.json()
    assert body["status"] == "aborted" and body["rollback_id"], body
    rollback = client.get(f"/api/v1/rollbacks/{body['rollback_id']}", headers=operator).json()
    assert rollback["status"] == "succeeded" and rollback["requested_by"] == "olive", rollback
    assert alias(aws) == ("1", {})
    listed = {r["label"]: r for r in client.get(f"{PROD}/releases", headers=operator).json()["releases"]}
    assert listed["v2"]["bad"] and listed["v1"]["live"]
    refused = deploy(client, operator, version, release="v3")
    assert refused.status_code == 409 and "marked bad" in refused.json()["detail"], refused.text


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_deployments_are_refused_while_held_and_bad_input_changes_nothing(
    client: TestClient, users: Users, server_state: ServerState, aws: AwsClients
) -> None:
    version = shop.publish_new_version(aws, API, "v2")
    operator = users.headers("operator")
    with held(server_state):
        refused = deploy(client, operator, version)
    assert refused.status_code == 409 and refused.json()["holder"]["actor"] == "mallory", refused.text
    bodies = [
        {"steps": [50, 10]},
        {"steps": [0, 100]},
        {"steps": [10, 150]},
        {"steps": []},
        {"steps": list(range(1, 30))},
        {"pause": "soon"},
        {"pause": "48h"},
        {"component": ""},
        {"version": "x" * 600},
        {"release": ""},
    ]
    for body in bodies:
        answer = deploy(client, operator, version, **body)
        assert answer.status_code == 422, (body, answer.text)
    unknown = deploy(client, operator, version, component="nope")
    assert unknown.status_code == 400 and "nope" in unknown.json()["detail"], unknown.text
    not_weighted = deploy(client, operator, version, component="api-config")
    assert not_weighted.status_code == 400, not_weighted.text
    assert deploy(client, operator, "999").status_code == 400  # no such Lambda version
    assert alias(aws) == ("1", {})  # nothing was shifted
    assert client.get(f"{PROD}/releases", headers=operator).json()["total"] == 0
    assert client.post("/api/v1/apps/shop/environments/qa/deployments", json={}, headers=operator).status_code == 422
    missing = {"component": "api", "version": version}
    assert (
        client.post("/api/v1/apps/shop/environments/qa/deployments", json=missing, headers=operator).status_code == 404
    )
    viewer = users.headers("viewer")
    assert client.get("/api/v1/deployments/dp-nope", headers=viewer).status_code == 404
    assert client.post("/api/v1/deployments/dp-nope/promote", headers=operator).status_code == 404
    assert client.post("/api/v1/deployments/dp-nope/abort", headers=operator).status_code == 404
    assert client.get("/api/v1/deployments/dp-nope").status_code == 401
