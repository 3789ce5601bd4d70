"""Emergency stop and release, drills, readiness, KPIs and reviews, incident reports, through the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_helpers import audit_entries, held, poll, rollback_finished, two_releases
from fastapi.testclient import TestClient

from lastgood.aws.clients import AwsClients
from lastgood.server.state import ServerState
from lastgood.testing import shop
from server_fixture import Users, add_users, make_state

PROD = "/api/v1/apps/shop/environments/prod"
STAGING = "/api/v1/apps/shop/environments/staging"

GATEWAY = """\
  - name: gateway
    kind: apigateway-stage
    rest_api: shop-gw-{env}
    stage: live
triggers:
"""
DRILLS = """\
policy:
  drills: {guard_for: 3s}
"""


def make_gateway(aws: AwsClients, env: str) -> str:
    client = aws.client("apigateway")
    api_id: str = client.create_rest_api(name=f"shop-gw-{env}")["id"]
    root = client.get_resources(restApiId=api_id)["items"][0]["id"]
    client.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    client.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    client.create_deployment(restApiId=api_id, stageName="live")
    limits = [("rateLimit", "100"), ("burstLimit", "200")]
    operations = [{"op": "replace", "path": f"/*/*/throttling/{k}", "value": v} for k, v in limits]
    client.update_stage(restApiId=api_id, stageName="live", patchOperations=operations)
    return api_id


def throttling(aws: AwsClients, api_id: str) -> dict[str, Any]:
    stage = aws.client("apigateway").get_stage(restApiId=api_id, stageName="live")
    settings: dict[str, Any] = stage.get("methodSettings", {}).get("*/*", {})
    return settings


@pytest.fixture
def gateways(aws: AwsClients, aws_env: Any) -> dict[str, str]:
    """Each environment's stage, throttled to 100 requests/s (burst 200) before any stop."""
    return {env: make_gateway(aws, env) for env in ("staging", "prod")}


@pytest.fixture
def server_state(shop_dir: Path, aws: AwsClients, aws_env: Any, gateways: dict[str, str]) -> ServerState:
    """The shop in staging and prod, each behind an API Gateway stage; 1-second triggers; 3-second drills."""
    shop.create_shop(aws, "staging")
    text = shop.runbook_text(aws_env.url, "sqlite:///.lastgood/state.db", period="1s", for_="3s")
    (shop_dir / "lastgood.yaml").write_text(text.replace("triggers:\n", GATEWAY) + DRILLS)
    return make_state(shop_dir)


@pytest.fixture
def users(server_state: ServerState) -> Users:
    return add_users(server_state)


def test_a_stop_needs_the_phrase_on_prod_and_is_released_exactly(
    client: TestClient, users: Users, aws: AwsClients, gateways: dict[str, str]
) -> None:
    operator = users.headers("operator")
    before = throttling(aws, gateways["prod"])
    assert client.post(f"{PROD}/stop", headers=users.headers("viewer")).status_code == 403
    assert client.post(f"{PROD}/stop").status_code == 401
    refused = client.post(f"{PROD}/stop", json={"confirm": "yes"}, headers=operator)
    assert refused.status_code == 409 and "stop-prod" in refused.json()["detail"], refused.text
    assert throttling(aws, gateways["prod"]) == before  # nothing was changed
    stopped = client.post(f"{PROD}/stop", json={"confirm": "stop-prod"}, headers=operator)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["done"] == ["gateway"] and stopped.json()["failed"] == {}
    limits = throttling(aws, gateways["prod"])
    assert limits["throttlingRateLimit"] == 0 and limits["throttlingBurstLimit"] == 0
    status = client.get(PROD, headers=operator).json()
    assert status["active_stop"]["created_by"] == "olive" and status["active_stop"]["components"] == ["gateway"]
    again = client.post(f"{PROD}/stop", json={"confirm": "stop-prod"}, headers=operator)
    assert again.status_code == 409 and "already stopped" in again.json()["detail"]
    released = client.post(f"{PROD}/stop/release", headers=operator)
    assert released.status_code == 200 and released.json()["done"] == ["gateway"], released.text
    assert throttling(aws, gateways["prod"]) == before
    nothing = client.post(f"{PROD}/stop/release", headers=operator)
    assert nothing.status_code == 409 and "no active emergency stop" in nothing.json()["detail"]
    entries = audit_entries(client, operator)
    assert [e["actor"] for e in entries if "stop" in e["type"]][-2:] == ["olive", "olive"], entries


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_stop_and_release_are_refused_while_the_environment_is_held(
    client: TestClient, users: Users, server_state: ServerState, aws: AwsClients, gateways: dict[str, str]
) -> None:
    operator = users.headers("operator")
    with held(server_state, "staging", "deploy"):
        refused = client.post(f"{STAGING}/stop", headers=operator)
    assert refused.status_code == 409 and refused.json()["holder"]["operation"] == "deploy", refused.text
    assert client.get(STAGING, headers=operator).json()["active_stop"] is None
    assert client.post(f"{STAGING}/stop", headers=operator).status_code == 200  # unprotected: no phrase
    with held(server_state, "staging"):
        refused = client.post(f"{STAGING}/stop/release", headers=operator)
    assert refused.status_code == 409 and refused.json()["holder"]["actor"] == "mallory"
    assert client.get(STAGING, headers=operator).json()["active_stop"] is not None  # still stopped
    for body in ({"wait": "soon"}, {"wait": "1h"}, {"confirm": "x" * 300}):
        assert client.post(f"{STAGING}/stop/release", json=body, headers=operator).status_code == 422, body
    assert client.post("/api/v1/apps/shop/environments/qa/stop", headers=operator).status_code == 404
    assert client.post(f"{STAGING}/stop/release", json={"wait": "2s"}, headers=operator).status_code == 200


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_drill_runs_in_the_background_and_holds_the_environment(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state, "staging")
    operator = users.headers("operator")
    back = client.post(f"{STAGING}/rollbacks", json={"reason": "v2 is bad", "severity": "critical"}, headers=operator)
    assert rollback_finished(client, operator, back.json()["id"])["status"] == "succeeded"  # v1 live, v2 bad
    assert client.post(f"{STAGING}/drills", headers=users.headers("viewer")).status_code == 403
    assert client.post(f"{PROD}/drills", headers=operator).status_code == 409  # protected: not allowed there
    started = client.post(f"{STAGING}/drills", headers=operator)
    assert started.status_code == 202 and started.json()["status"] == "running", started.text
    drill_id = started.json()["id"]
    second = client.post(f"{STAGING}/drills", headers=operator)
    assert second.status_code == 409 and second.json()["holder"]["id"] == drill_id, second.text
    status = poll(lambda: client.get(STAGING, headers=operator).json(), lambda s: s["holder"] is None, 60)
    assert status["live"]["label"] == f"{drill_id}-good", status  # whatever the guard did, back on the good one
    drill = client.get(f"{STAGING}/drills/{drill_id}", headers=operator).json()
    assert drill["status"] in ("passed", "failed") and drill["finished_at"], drill
    assert "re-deployed release v2" in drill["notes"] and "restored" in drill["notes"], drill
    listed = client.get(f"{STAGING}/drills", headers=operator).json()
    assert [d["id"] for d in listed["drills"]] == [drill_id]
    assert client.get(f"{STAGING}/drills/drill-nope", headers=operator).status_code == 404
    assert client.get(f"{STAGING}/drills?limit=0", headers=operator).status_code == 422
    assert any(e["type"] == "drill-started" and e["actor"] == "olive" for e in audit_entries(client, operator))


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_readiness_of_the_live_and_previous_release(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state)
    answer = client.get(f"{PROD}/readiness", headers=users.headers("viewer"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [r["role"] for r in body["releases"]] == ["live", "previous"]
    assert [r["label"] for r in body["releases"]] == ["v2", "v1"] and body["ready"] is True, body
    assert client.get(f"{PROD}/readiness").status_code == 401
    assert client.get("/api/v1/apps/shop/environments/qa/readiness", headers=users.headers("viewer")).status_code == 404


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_kpis_reviews_and_reports_of_a_rollback(client: TestClient, users: Users, server_state: ServerState) -> None:
    two_releases(server_state, "staging")
    viewer, operator = users.headers("viewer"), users.headers("operator")
    started = client.post(f"{STAGING}/rollbacks", json={"reason": "bad v2", "severity": "critical"}, headers=operator)
    assert started.status_code in (200, 202), started.text
    rollback_id = started.json()["id"]
    assert rollback_finished(client, viewer, rollback_id)["status"] == "succeeded"

    kpis = client.get("/api/v1/apps/shop/kpis?env=staging&since=30d", headers=viewer)
    assert kpis.status_code == 200, kpis.text
    assert kpis.json()["incidents"]["overall"]["rollbacks"] == 1, kpis.json()["incidents"]
    assert (
        client.get("/api/v1/apps/shop/kpis?env=prod", headers=viewer).json()["incidents"]["overall"]["rollbacks"] == 0
    )
    for since, says in (
        ("soon", "'1h'"),
        ("-5d", "'1h'"),
        ("99999999999d", "3650d"),
        ("5000d", "3650d"),
        ("1e9s", "'1h'"),
    ):
        answer = client.get(f"/api/v1/apps/shop/kpis?since={since}", headers=viewer)
        assert answer.status_code == 400 and says in answer.json()["detail"], answer.text
    assert client.get(f"/api/v1/apps/shop/kpis?since={'9' * 400}s", headers=viewer).status_code == 422
    assert client.get("/api/v1/apps/shop/kpis?env=qa", headers=viewer).status_code == 404

    url = f"/api/v1/rollbacks/{rollback_id}/review"
    assert client.post(url, json={"unnecessary": True}, headers=viewer).status_code == 403
    assert client.post(url, json={}, headers=operator).status_code == 422
    assert (
        client.post("/api/v1/rollbacks/rb-nope/review", json={"unnecessary": True}, headers=operator).status_code == 404
    )
    before = client.get("/api/v1/apps/shop/kpis", headers=viewer).json()["incidents"]["overall"]
    assert before["false_rollback_rate"] == 0.0, before  # kept until the audit log moves on: the review below
    review = client.post(url, json={"unnecessary": True, "note": "a noisy metric"}, headers=operator)
    assert review.status_code == 200 and review.json()["reviewed_by"] == "olive", review.text
    overall = client.get("/api/v1/apps/shop/kpis", headers=viewer).json()["incidents"]["overall"]
    assert overall["false_rollback_rate"] == 1.0, overall
    assert any(e["type"] == "rollback-reviewed" and e["actor"] == "olive" for e in audit_entries(client, viewer))

    checklist = f"/api/v1/rollbacks/{rollback_id}/checklist"
    assert client.post(f"{checklist}/test-api-endpoints", json={}, headers=viewer).status_code == 403
    assert client.post(f"{checklist}/no-such-item", json={}, headers=operator).status_code == 400
    assert (
        client.post("/api/v1/rollbacks/rb-nope/checklist/test-api-endpoints", json={}, headers=operator).status_code
        == 404
    )
    ticked = client.post(f"{checklist}/test-api-endpoints", json={"note": "curl ok"}, headers=operator)
    assert ticked.status_code == 200 and ticked.json()["by"] == "olive", ticked.text
    items = {i["key"]: i for i in client.get(checklist, headers=viewer).json()}
    assert items["test-api-endpoints"]["tick"] == "done" and items["test-api-endpoints"]["evidence"].endswith("curl ok")
    assert any(e["type"] == "checklist-ticked" and e["actor"] == "olive" for e in audit_entries(client, viewer))

    markdown = client.get(f"/api/v1/rollbacks/{rollback_id}/report.md", headers=viewer)
    assert markdown.status_code == 200 and markdown.headers["content-type"].startswith("text/markdown")
    assert rollback_id in markdown.text and "bad v2" in markdown.text
    html = client.get(f"/api/v1/rollbacks/{rollback_id}/report.html", headers=viewer)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert (
        html.text.lstrip().lower().startswith("<!doctype html") and "<svg" in html.text and "<script" not in html.text
    )
    assert client.get("/api/v1/rollbacks/rb-nope/report.md", headers=viewer).status_code == 404
    assert client.get(f"/api/v1/rollbacks/{rollback_id}/report.html").status_code == 401
