"""The rollbacks endpoints' refusals: 401, 403, 404, 409 (held, protected, nothing to do), 422; approvals under
a policy that requires them, with the requester's own approval refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_helpers import audit_entries, held, rollback_finished, two_releases
from fastapi.testclient import TestClient

from lastgood.server.state import ServerState
from server_fixture import Users, add_users, make_state

PROD = "/api/v1/apps/shop/environments/prod"
PHRASE = "rollback-production"

POLICY = """\
policy:
  approvals:
    - {severity: high, environments: [prod], roles: [lead], count: 1}
    - {severity: critical, environments: [prod], roles: [lead], count: 2}
  people:
    - {name: olive, roles: []}
    - {name: abe, roles: [lead]}
    - {name: ada, roles: [lead]}
    - {name: lee, roles: [lead]}
"""


@pytest.fixture
def server_state(shop_dir: Path) -> ServerState:
    """The shop with a policy: a high-severity rollback of prod waits for one approval by a lead (a lead who
    asks approves by asking), a critical one for two (the requester's counts as one, if a lead)."""
    file = shop_dir / "lastgood.yaml"
    file.write_text(file.read_text() + POLICY)
    return make_state(shop_dir)


@pytest.fixture
def users(server_state: ServerState) -> Users:
    return add_users(server_state)


def request(client: TestClient, headers: dict[str, str], **body: object) -> dict[str, object]:
    answer = client.post(f"{PROD}/rollbacks", json={"reason": "bad v2", "confirm": PHRASE, **body}, headers=headers)
    assert answer.status_code in (200, 202), answer.text
    result: dict[str, object] = answer.json()
    return result


def test_every_rollback_endpoint_needs_a_valid_token(client: TestClient) -> None:
    bad = {"Authorization": "Bearer lg_wrong_token"}
    calls = [
        ("get", f"{PROD}/plan"),
        ("post", f"{PROD}/rollbacks"),
        ("get", "/api/v1/rollbacks/rb-1"),
        ("post", "/api/v1/rollbacks/rb-1/resume"),
        ("post", "/api/v1/rollbacks/rb-1/approve"),
        ("post", "/api/v1/rollbacks/rb-1/deny"),
    ]
    for method, url in calls:
        for headers in ({}, bad):
            answer = client.request(method, url, headers=headers, json={"reason": "x"})
            assert answer.status_code == 401, (method, url, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"


def test_roles_are_checked_before_anything_is_read(client: TestClient, users: Users) -> None:
    assert client.post(f"{PROD}/rollbacks", json={"reason": "x"}, headers=users.headers("viewer")).status_code == 403
    for role in ("viewer", "operator"):
        assert client.post("/api/v1/rollbacks/rb-1/approve", headers=users.headers(role)).status_code == 403
        deny = client.post("/api/v1/rollbacks/rb-1/deny", json={"reason": "no"}, headers=users.headers(role))
        assert deny.status_code == 403 and "approver" in deny.json()["detail"]
    assert client.post("/api/v1/rollbacks/rb-1/resume", headers=users.headers("viewer")).status_code == 403


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_unknown_app_environment_release_and_rollback_are_404(client: TestClient, users: Users) -> None:
    viewer, operator, approver = users.headers("viewer"), users.headers("operator"), users.headers("approver")
    two_releases(client.app.state.lastgood)  # type: ignore[attr-defined]
    assert client.get("/api/v1/apps/nope/environments/prod/plan", headers=viewer).status_code == 404
    answer = client.get("/api/v1/apps/shop/environments/prd/plan", headers=viewer)
    assert answer.status_code == 404 and "prod" in answer.json()["detail"]  # did you mean
    assert client.get(f"{PROD}/plan?to=v9", headers=viewer).status_code == 404
    answer = client.post("/api/v1/apps/shop/environments/qa/rollbacks", json={"reason": "x"}, headers=operator)
    assert answer.status_code == 404
    assert client.get("/api/v1/rollbacks/rb-nope", headers=viewer).status_code == 404
    assert client.post("/api/v1/rollbacks/rb-nope/resume", headers=operator).status_code == 404
    assert client.post("/api/v1/rollbacks/rb-nope/approve", headers=approver).status_code == 404
    deny = client.post("/api/v1/rollbacks/rb-nope/deny", json={"reason": "no"}, headers=approver)
    assert deny.status_code == 404 and deny.headers["content-type"].startswith("application/problem+json")


def test_bad_bodies_and_queries_are_422(client: TestClient, users: Users) -> None:
    operator, approver = users.headers("operator"), users.headers("approver")
    bodies = [{}, {"reason": ""}, {"reason": "x" * 2001}, {"reason": "x", "only": "api"}, {"reason": 5}]
    for body in bodies:
        answer = client.post(f"{PROD}/rollbacks", json=body, headers=operator)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["errors"], answer.json()
    assert client.post(f"{PROD}/rollbacks", content=b"{not json", headers=operator).status_code == 422
    assert client.post("/api/v1/rollbacks/rb-1/deny", json={}, headers=approver).status_code == 422
    assert client.get(f"{PROD}/plan?to={'v' * 300}", headers=operator).status_code == 422


def test_a_held_environment_refuses_a_rollback_and_names_the_holder(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state)
    with held(server_state):
        body = {"reason": "x", "confirm": PHRASE}
        answer = client.post(f"{PROD}/rollbacks", json=body, headers=users.headers("admin"))
    assert answer.status_code == 409, answer.text
    problem = answer.json()
    assert problem["holder"]["actor"] == "mallory" and "mallory" in problem["detail"]
    status = client.get(PROD, headers=users.headers("viewer")).json()
    assert status["live"]["label"] == "v2" and status["last_rollback"] is None  # nothing was filed


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_protected_environment_without_its_phrase_and_nothing_to_roll_back_are_409(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    operator = users.headers("operator")
    nothing = client.post(f"{PROD}/rollbacks", json={"reason": "x", "confirm": PHRASE}, headers=operator)
    assert nothing.status_code == 409, nothing.text  # no release recorded: nothing to go back to
    two_releases(server_state)
    body = {"reason": "x", "severity": "medium", "confirm": "rollback-prod"}
    wrong = client.post(f"{PROD}/rollbacks", json=body, headers=operator)
    assert wrong.status_code == 409 and PHRASE in wrong.json()["detail"], wrong.text
    bad_severity = client.post(f"{PROD}/rollbacks", json={"reason": "x", "severity": "dire"}, headers=operator)
    assert bad_severity.status_code == 400 and "critical" in bad_severity.json()["detail"], bad_severity.text
    status = client.get(PROD, headers=operator).json()
    assert status["last_rollback"] is None and status["live"]["label"] == "v2"  # refused: nothing filed


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_an_approval_is_needed_and_the_requester_may_not_give_it(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state)
    waiting = request(client, users.headers("admin"), severity="critical")
    assert waiting["status"] == "awaiting-approval", waiting
    rollback_id = str(waiting["id"])
    own = client.post(f"/api/v1/rollbacks/{rollback_id}/approve", headers=users.headers("admin"))
    assert own.status_code == 403, own.text  # the two-person rule, even for an admin who is a lead
    assert "ada requested this rollback" in own.json()["detail"]
    first = client.post(f"/api/v1/rollbacks/{rollback_id}/approve", headers=users.headers("approver"))
    assert first.status_code == 200 and first.json()["status"] == "awaiting-approval", first.text
    twice = client.post(f"/api/v1/rollbacks/{rollback_id}/approve", headers=users.headers("approver"))
    assert twice.status_code == 409 and "already approved" in twice.json()["detail"], twice.text
    lee = add_users(server_state, {"lee": "approver"})
    approved = client.post(f"/api/v1/rollbacks/{rollback_id}/approve", headers=lee.headers("lee"))
    assert approved.status_code == 202 and approved.json()["approvers"] == ["abe", "lee"], approved.text
    detail = rollback_finished(client, users.headers("viewer"), rollback_id)
    assert detail["status"] == "succeeded", detail
    again = client.post(f"/api/v1/rollbacks/{rollback_id}/approve", headers=users.headers("approver"))
    assert again.status_code == 409, again.text  # not awaiting approval any more
    resumed = client.post(f"/api/v1/rollbacks/{rollback_id}/resume", headers=users.headers("operator"))
    assert resumed.status_code == 409, resumed.text  # it succeeded: nothing to resume
    entries = audit_entries(client, users.headers("viewer"))
    assert any(e["actor"] == "abe" and "approv" in e["type"] for e in entries), entries


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_an_approver_who_is_not_in_the_policy_cannot_approve_and_a_denial_ends_it(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state)
    waiting = request(client, users.headers("operator"), severity="high")
    rollback_id = str(waiting["id"])
    extra = add_users(server_state, {"zed": "approver"})  # an approver by role, but no lead in the file
    refused = client.post(f"/api/v1/rollbacks/{rollback_id}/approve", headers=extra.headers("zed"))
    assert refused.status_code == 403, refused.text
    denied = client.post(
        f"/api/v1/rollbacks/{rollback_id}/deny", json={"reason": "fix forward"}, headers=users.headers("approver")
    )
    assert denied.status_code == 200 and denied.json()["status"] == "denied", denied.text
    detail = client.get(f"/api/v1/rollbacks/{rollback_id}", headers=users.headers("viewer")).json()
    assert detail["status"] == "denied" and detail["requested_by"] == "olive"
    assert any(e["actor"] == "abe" and "den" in e["type"] for e in detail["timeline"]), detail["timeline"]
    again = client.post(f"/api/v1/rollbacks/{rollback_id}/deny", json={"reason": "x"}, headers=users.headers("admin"))
    assert again.status_code == 409, again.text
