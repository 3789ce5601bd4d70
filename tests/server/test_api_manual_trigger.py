"""POST .../rollbacks with `trigger`: a manual trigger of the file, recorded on the rollback (its detail, the
audit log) with its severity; an unknown name or severity is 400 naming the allowed ones, and nothing is filed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from api_helpers import rollback_finished, two_releases
from fastapi.testclient import TestClient

from lastgood.server.state import ServerState
from server_fixture import Users, add_users, make_state

PROD = "/api/v1/apps/shop/environments/prod"
PHRASE = "rollback-production"
MANUAL = """\
manual_triggers:
  - {name: user-reports, severity: high}
  - {name: data-corruption, severity: critical}
"""


@pytest.fixture
def server_state(shop_dir: Path) -> ServerState:
    file = shop_dir / "lastgood.yaml"
    file.write_text(file.read_text() + MANUAL)
    return make_state(shop_dir)


@pytest.fixture
def users(server_state: ServerState) -> Users:
    return add_users(server_state)


@pytest.mark.slow
def test_a_manual_trigger_through_the_api(client: TestClient, users: Users, server_state: ServerState) -> None:
    operator = users.headers("operator")
    two_releases(server_state)
    for body, said in [
        ({"trigger": "user-report"}, "manual_triggers: user-reports (high), data-corruption (critical)"),
        ({"trigger": "user-reports", "severity": "dire"}, "critical, high, medium, low"),
    ]:
        answer = client.post(f"{PROD}/rollbacks", json={"reason": "x", "confirm": PHRASE, **body}, headers=operator)
        assert answer.status_code == 400 and said in answer.json()["detail"], answer.text
    assert client.get(PROD, headers=operator).json()["last_rollback"] is None  # nothing filed
    body = {"reason": "support tickets", "confirm": PHRASE, "trigger": "data-corruption", "severity": "high"}
    answer = client.post(f"{PROD}/rollbacks", json=body, headers=operator)
    assert answer.status_code == 202, answer.text
    detail = rollback_finished(client, operator, answer.json()["id"])
    assert detail["status"] == "succeeded", detail
    assert detail["severity"] == "high" and detail["reason"] == "support tickets"
    trigger = detail["trigger"]
    assert (trigger["trigger"], trigger["severity"], trigger["manual"], trigger["by"]) == (
        "data-corruption",
        "high",
        True,
        "olive",
    )
    assert any(e["type"] == "manual-trigger" and "raised by olive" in e["message"] for e in detail["timeline"])


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.mark.slow
def test_the_dashboards_rollback_form_offers_the_files_manual_triggers(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state)
    assert client.post("/login", data={"token": users.tokens["operator"], "next": "/"}).status_code == 200
    page = client.get("/apps/shop/environments/prod")
    found = CSRF.search(page.text)
    assert page.status_code == 200 and found
    assert '<option value="user-reports">user-reports (high)</option>' in page.text
    url, form = (
        "/apps/shop/environments/prod/rollback",
        {"reason": "tickets", "confirm": PHRASE, "csrf": found.group(1)},
    )
    wrong = client.post(url, data=form | {"trigger": "user-report"}, follow_redirects=False)
    assert wrong.status_code == 400 and "manual_triggers: user-reports (high)" in wrong.text
    started = client.post(url, data=form | {"trigger": "user-reports"}, follow_redirects=False)
    assert started.status_code == 303, started.text
    detail = rollback_finished(client, users.headers("operator"), started.headers["location"].rsplit("/", 1)[1])
    assert detail["trigger"]["trigger"] == "user-reports" and detail["severity"] == "high"
