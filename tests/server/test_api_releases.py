"""Environments, releases and the audit log through the API: pages, record, mark bad, who did it."""

from __future__ import annotations

import pytest
from api_helpers import audit_entries, held, two_releases
from fastapi.testclient import TestClient

from lastgood.server.state import ServerState
from server_fixture import Users

PROD = "/api/v1/apps/shop/environments/prod"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_the_environments_list_shows_live_holder_and_last_rollback(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state)
    with held(server_state):
        answer = client.get("/api/v1/apps/shop/environments", headers=users.headers("viewer"))
    assert answer.status_code == 200, answer.text
    envs = {e["env"]: e for e in answer.json()["environments"]}
    assert list(envs) == ["staging", "prod"]
    assert envs["prod"]["live"]["label"] == "v2" and envs["staging"]["live"] is None
    assert envs["prod"]["holder"]["actor"] == "mallory" and envs["staging"]["holder"] is None
    assert envs["prod"]["last_rollback"] is None and envs["prod"]["guard"] is None
    one = client.get(PROD, headers=users.headers("viewer")).json()
    assert one["holder"] is None and one["live"]["label"] == "v2" and "guard" in one
    assert client.get("/api/v1/apps/nope/environments", headers=users.headers("viewer")).status_code == 404
    assert client.get("/api/v1/apps/shop/environments").status_code == 401


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_releases_are_listed_a_page_at_a_time_with_the_total(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state)
    viewer = users.headers("viewer")
    page = client.get(f"{PROD}/releases?limit=1", headers=viewer).json()
    assert page["total"] == 2 and [r["label"] for r in page["releases"]] == ["v2"] and page["releases"][0]["live"]
    second = client.get(f"{PROD}/releases?limit=1&offset=1", headers=viewer).json()
    assert [r["label"] for r in second["releases"]] == ["v1"] and not second["releases"][0]["live"]
    assert client.get(f"{PROD}/releases?offset=5", headers=viewer).json()["releases"] == []
    for query in ("limit=0", "limit=501", "limit=x", "offset=-1"):
        answer = client.get(f"{PROD}/releases?{query}", headers=viewer)
        assert answer.status_code == 422, (query, answer.text)
    assert client.get("/api/v1/apps/shop/environments/qa/releases", headers=viewer).status_code == 404


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_an_operator_records_a_release_once_and_the_audit_log_names_them(client: TestClient, users: Users) -> None:
    url = f"{PROD}/releases"
    assert client.post(url, json={"version": "v1"}, headers=users.headers("viewer")).status_code == 403
    assert client.post(url, json={"version": "v1"}).status_code == 401
    for body in ({}, {"version": ""}, {"version": "v" * 257}, {"version": 3}):
        assert client.post(url, json=body, headers=users.headers("operator")).status_code == 422, body
    recorded = client.post(url, json={"version": "v1"}, headers=users.headers("operator"))
    assert recorded.status_code == 201, recorded.text
    body = recorded.json()
    assert body["label"] == "v1" and body["recorded_by"] == "olive" and body["live"]
    assert set(body["components"]) == {"api", "worker", "api-config", "db-credentials"}
    assert "description" not in body["components"]["api"]
    again = client.post(url, json={"version": "v1"}, headers=users.headers("admin"))
    assert again.status_code == 400 and "already exists" in again.json()["detail"], again.text
    listed = client.get(url, headers=users.headers("viewer")).json()
    assert listed["total"] == 1  # the duplicate changed nothing
    entries = audit_entries(client, users.headers("viewer"))
    assert any(e["actor"] == "olive" and e["env"] == "prod" for e in entries), entries


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_marking_the_live_release_bad_needs_confirm_live(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state)
    operator = users.headers("operator")
    refused = client.post(f"{PROD}/releases/v2/bad", json={"reason": "errors"}, headers=operator)
    assert refused.status_code == 409 and "v2 is the live release" in refused.json()["detail"], refused.text
    assert client.get(f"{PROD}/releases", headers=operator).json()["releases"][0]["bad"] is False
    marked = client.post(f"{PROD}/releases/v2/bad", json={"reason": "errors", "confirm_live": True}, headers=operator)
    assert marked.status_code == 200 and marked.json()["was_live"] is True, marked.text
    older = client.post(f"{PROD}/releases/v1/bad", json={"reason": "old bug"}, headers=operator)
    assert older.status_code == 200 and older.json()["was_live"] is False
    listed = {r["label"]: r for r in client.get(f"{PROD}/releases", headers=operator).json()["releases"]}
    assert listed["v2"]["bad_reason"] == "errors" and listed["v1"]["bad"]
    assert client.post(f"{PROD}/releases/v9/bad", json={"reason": "x"}, headers=operator).status_code == 404
    assert client.post(f"{PROD}/releases/v1/bad", json={"reason": ""}, headers=operator).status_code == 422
    assert (
        client.post(f"{PROD}/releases/v1/bad", json={"reason": "x"}, headers=users.headers("viewer")).status_code == 403
    )


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_the_audit_log_and_its_verification(client: TestClient, users: Users, server_state: ServerState) -> None:
    two_releases(server_state)
    viewer = users.headers("viewer")
    client.post(f"{PROD}/releases/v1/bad", json={"reason": "old bug"}, headers=users.headers("operator"))
    entries = audit_entries(client, viewer)
    assert entries[-1]["actor"] == "olive" and "v1" in entries[-1]["message"], entries[-1]
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
    assert len(client.get("/api/v1/apps/shop/audit?limit=1", headers=viewer).json()["entries"]) == 1
    for query in ("limit=0", "limit=501", "limit=many"):
        assert client.get(f"/api/v1/apps/shop/audit?{query}", headers=viewer).status_code == 422
    verified = client.get("/api/v1/apps/shop/audit/verify", headers=viewer).json()
    assert verified["ok"] is True and verified["entries"] >= len(entries) and verified["problem"] is None
    assert client.get("/api/v1/apps/nope/audit", headers=viewer).status_code == 404
    assert client.get("/api/v1/apps/shop/audit/verify").status_code == 401
