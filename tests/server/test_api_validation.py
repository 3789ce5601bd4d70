"""The team server on a rollback that ends restored-unhealthy (moto's server): the API shows the validation,
the server's escalate job sends the file's escalation step to its channel, `POST /rollbacks/{id}/ack` stops it
(operators and up), and the dashboard's rollback page shows the state's badge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import poll, rollback_finished, two_releases
from fastapi.testclient import TestClient

from lastgood.server.app import create_app
from lastgood.server.state import ServerState
from lastgood.testing.webhooks import WebhookReceiver
from server_fixture import Users, add_users, make_state

pytestmark = pytest.mark.slow

PROD = "/api/v1/apps/shop/environments/prod"

EXTRA = """
validate:
  checks:
    - {{name: smoke, command: {{shell: "echo still failing; exit 1"}}}}
policy:
  people: [{{name: erin, roles: [lead], email: erin@example.com}}]
  escalation:
    - {{after: 1s, contact: [lead], channels: [pager]}}
notifications:
  retries: 0
  channels:
    - {{name: pager, webhook: {{url: "{hook}", secret: whsec-validation-server-1234}}}}
"""


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def server_state(shop_dir: Path, hook: WebhookReceiver) -> ServerState:
    file = shop_dir / "lastgood.yaml"
    file.write_text(file.read_text() + EXTRA.format(hook=hook.url))
    return make_state(shop_dir, guard_tick=0.2, escalate_every=0.2)


@pytest.fixture
def users(server_state: ServerState) -> Users:
    return add_users(server_state)


@pytest.fixture
def client(server_state: ServerState) -> Iterator[TestClient]:
    with TestClient(create_app(server_state)) as test_client:
        yield test_client


def events(hook: WebhookReceiver) -> list[str]:
    return [body["event"] for body in hook.received]


def test_restored_unhealthy_over_the_api_escalates_until_acknowledged(
    client: TestClient, users: Users, server_state: ServerState, hook: WebhookReceiver
) -> None:
    two_releases(server_state)
    operator, viewer = users.headers("operator"), users.headers("viewer")
    plan = client.get(f"{PROD}/plan", headers=viewer).json()["plan"]
    assert plan["validation"] == [
        {"name": "smoke", "type": "command", "what": "`echo still failing; exit 1` exits 0 within 5m"}
    ]
    answer = client.post(
        f"{PROD}/rollbacks", json={"reason": "bad v2", "confirm": "rollback-production"}, headers=operator
    )
    assert answer.status_code in (200, 202), answer.text
    rollback_id = answer.json()["id"]
    detail = rollback_finished(client, viewer, rollback_id)
    assert detail["status"] == "restored-unhealthy"
    assert detail["validation"]["passed"] is False
    assert detail["validation"]["checks"][0]["detail"].startswith("exited 1, expected 0; last output: still failing")

    # the server's escalate job: the step after 1s without acknowledgement, to the pager channel, once
    assert poll(lambda: events(hook), lambda seen: "escalation" in seen, timeout=30).count("escalation") == 1
    assert "rollback-restored-unhealthy" in events(hook)
    sent = poll(
        lambda: client.get(f"/api/v1/rollbacks/{rollback_id}", headers=viewer).json()["escalations"],
        lambda rows: bool(rows),
    )
    assert [row["key"] for row in sent] == ["escalation:0"]

    assert client.post(f"/api/v1/rollbacks/{rollback_id}/ack", headers=viewer).status_code == 403
    acked = client.post(f"/api/v1/rollbacks/{rollback_id}/ack", json={"note": "on it"}, headers=operator)
    assert acked.status_code == 200, acked.text
    assert acked.json()["acknowledged_by"] == "olive"
    again = client.post(f"/api/v1/rollbacks/{rollback_id}/ack", headers=operator)
    assert again.status_code == 409 and "acknowledged already" in again.text
    assert client.post("/api/v1/rollbacks/rb-0000000000/ack", headers=operator).status_code == 404
    detail = client.get(f"/api/v1/rollbacks/{rollback_id}", headers=viewer).json()
    assert detail["acknowledged_by"] == "olive"

    # the dashboard's rollback page: its state badge and the failing check
    login = client.post("/login", data={"token": users.tokens["viewer"], "next": "/"}, follow_redirects=False)
    assert login.status_code in (302, 303)
    page = client.get(f"/rollbacks/{rollback_id}")
    assert page.status_code == 200
    assert '<span class="badge s-restored-unhealthy">restored-unhealthy</span>' in page.text
    assert "exited 1, expected 0" in page.text
