"""The server's core: sign-in by token, roles, problem documents, a rollback requested through the API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lastgood.domain.actor import Actor
from lastgood.server.app import create_app
from lastgood.server.state import ServerState
from lastgood.service import releases
from lastgood.testing import shop
from server_fixture import Users, add_users, make_state


def _two_releases(state: ServerState) -> None:
    ctx = state.apps.env_context("shop", "prod", Actor(name="setup", via="test").name)
    releases.record(ctx, "v1")
    for function in ("shop-api-prod", "shop-worker-prod"):
        version = shop.publish_new_version(ctx.aws, function, "v2")
        shop.shift_alias(ctx.aws, function, version, None, 0)
    releases.record(ctx, "v2")


def test_health_needs_no_sign_in_and_everything_else_does(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").json() == {"status": "ready", "role": "all"}
    answer = client.get("/api/v1/apps")
    assert answer.status_code == 401
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/apps", headers={"Authorization": "Bearer lg_nope_nope"}).status_code == 401


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_viewer_reads_but_may_not_roll_back(client: TestClient, users: Users) -> None:
    assert client.get("/api/v1/apps", headers=users.headers("viewer")).json() == {
        "apps": [{"app": "shop", "environments": ["staging", "prod"]}]
    }
    answer = client.post(
        "/api/v1/apps/shop/environments/prod/rollbacks", json={"reason": "x"}, headers=users.headers("viewer")
    )
    assert answer.status_code == 403
    assert "operator" in answer.json()["detail"]


def test_unknown_app_is_404_and_a_bad_body_422(client: TestClient, users: Users) -> None:
    assert client.get("/api/v1/apps/shoop", headers=users.headers("viewer")).status_code == 404
    answer = client.post("/api/v1/apps/shop/environments/prod/rollbacks", json={}, headers=users.headers("operator"))
    assert answer.status_code == 422
    assert "reason" in answer.json()["detail"]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_an_operator_rolls_back_prod_in_the_background(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    _two_releases(server_state)
    url = "/api/v1/apps/shop/environments/prod/rollbacks"
    refused = client.post(url, json={"reason": "bad v2"}, headers=users.headers("operator"))
    assert refused.status_code == 409 and "rollback-production" in refused.json()["detail"]
    started = client.post(
        url, json={"reason": "bad v2", "confirm": "rollback-production"}, headers=users.headers("operator")
    )
    assert started.status_code in (200, 202), started.text
    rollback_id = started.json()["id"]
    deadline = time.monotonic() + 30
    detail = client.get(f"/api/v1/rollbacks/{rollback_id}", headers=users.headers("viewer")).json()
    while detail["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
        detail = client.get(f"/api/v1/rollbacks/{rollback_id}", headers=users.headers("viewer")).json()
    assert detail["status"] == "succeeded", detail
    assert detail["requested_by"] == "olive"
    status = client.get("/api/v1/apps/shop/environments/prod", headers=users.headers("viewer")).json()
    assert status["live"]["label"] == "v1"


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_without_background_work_long_operations_answer_503_and_start_nothing(shop_dir: Path) -> None:
    state = make_state(shop_dir, background=False)
    users = add_users(state)
    _two_releases(state)
    with TestClient(create_app(state)) as client:
        answer = client.post(
            "/api/v1/apps/shop/environments/prod/rollbacks",
            json={"reason": "x", "confirm": "rollback-production"},
            headers=users.headers("operator"),
        )
        assert answer.status_code == 503, answer.text
        assert "background" in answer.json()["detail"]
        status = client.get("/api/v1/apps/shop/environments/prod", headers=users.headers("viewer")).json()
        assert status["live"]["label"] == "v2" and status["last_rollback"] is None
