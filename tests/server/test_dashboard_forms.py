"""The dashboard's emergency stop, its release and the resume form, posted over HTTP with the session cookie and
its CSRF token: the API Gateway stage's throttling on moto and the rollback's steps checked after each."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from api_helpers import poll, two_releases
from fastapi.testclient import TestClient
from test_api_operations import GATEWAY, make_gateway, throttling
from test_dashboard_http import sign_in

from lastgood.aws.clients import AwsClients
from lastgood.server.state import ServerState
from lastgood.service.events import rollback_progress
from lastgood.service.rollbacks import Hooks, RollbackRequest, request_rollback
from lastgood.testing import shop
from server_fixture import Users, add_users, make_state

ENV_PAGE = "/apps/shop/environments/prod"


@pytest.fixture
def gateway(aws: AwsClients, aws_env: Any) -> str:
    return make_gateway(aws, "prod")


@pytest.fixture
def server_state(shop_dir: Path, aws_env: Any, gateway: str) -> ServerState:
    """The shop in prod (protected) behind an API Gateway stage throttled to 100/s, burst 200."""
    text = shop.runbook_text(aws_env.url, "sqlite:///.lastgood/state.db")
    (shop_dir / "lastgood.yaml").write_text(text.replace("triggers:\n", GATEWAY))
    return make_state(shop_dir)


@pytest.fixture
def users(server_state: ServerState) -> Users:
    return add_users(server_state)


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_the_stop_form_needs_the_stop_phrase_cuts_traffic_and_the_release_form_restores_it(
    client: TestClient, users: Users, aws: AwsClients, gateway: str
) -> None:
    before = throttling(aws, gateway)
    assert before["throttlingRateLimit"] == 100 and before["throttlingBurstLimit"] == 200
    csrf = sign_in(client, users.tokens["operator"])
    page = client.get(ENV_PAGE)
    assert 'id="stop-form"' in page.text and "stop-prod" in page.text, page.text

    no_csrf = client.post(f"{ENV_PAGE}/stop", data={"confirm": "stop-prod"}, follow_redirects=False)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    wrong = client.post(f"{ENV_PAGE}/stop", data={"confirm": "yes", "csrf": csrf}, follow_redirects=False)
    assert wrong.status_code == 409 and "stop-prod" in wrong.text and "Nothing was changed" in wrong.text
    assert throttling(aws, gateway) == before

    stopped = client.post(f"{ENV_PAGE}/stop", data={"confirm": "stop-prod", "csrf": csrf})
    assert stopped.status_code == 200, stopped.text
    assert "cut: gateway" in stopped.text and "failed" not in stopped.text
    cut = throttling(aws, gateway)
    assert cut["throttlingRateLimit"] == 0 and cut["throttlingBurstLimit"] == 0
    page = client.get(ENV_PAGE)
    assert "/stop/release" in page.text and 'id="stop-form"' not in page.text and "olive" in page.text
    again = client.post(f"{ENV_PAGE}/stop", data={"confirm": "stop-prod", "csrf": csrf})
    assert again.status_code == 409 and "already stopped" in again.text
    assert throttling(aws, gateway) == cut

    assert client.post(f"{ENV_PAGE}/stop/release", data={}, follow_redirects=False).status_code == 403
    assert throttling(aws, gateway) == cut
    released = client.post(f"{ENV_PAGE}/stop/release", data={"csrf": csrf})
    assert released.status_code == 200 and "restored: gateway" in released.text, released.text
    assert throttling(aws, gateway) == before
    nothing = client.post(f"{ENV_PAGE}/stop/release", data={"csrf": csrf})
    assert nothing.status_code == 409 and "no active emergency stop" in nothing.text
    assert 'id="stop-form"' in client.get(ENV_PAGE).text


def test_a_viewer_may_not_stop(client: TestClient, users: Users, aws: AwsClients, gateway: str) -> None:
    before = throttling(aws, gateway)
    csrf = sign_in(client, users.tokens["viewer"])
    assert "Stopping needs the operator role" in client.get(ENV_PAGE).text
    refused = client.post(f"{ENV_PAGE}/stop", data={"confirm": "stop-prod", "csrf": csrf})
    assert refused.status_code == 403 and "vera is viewer" in refused.text
    assert throttling(aws, gateway) == before


def interrupted_rollback(state: ServerState) -> str:
    """A rollback of prod (v2 -> v1) stopped before its first step, as Ctrl-C would: `interrupted`, resumable."""
    stop = threading.Event()
    ctx = state.apps.env_context("shop", "prod", "rita")
    hooks = Hooks(on_start=lambda rollback_id, steps: stop.set(), stop=stop)
    outcome = request_rollback(ctx, RollbackRequest(reason="v2 is failing"), hooks)
    assert outcome.id is not None and outcome.status == "interrupted", outcome
    return outcome.id


def aliases(aws: AwsClients) -> dict[str, str]:
    client = aws.client("lambda")
    return {
        f: client.get_alias(FunctionName=f, Name="live")["FunctionVersion"]
        for f in ("shop-api-prod", "shop-worker-prod")
    }


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_the_resume_form_finishes_an_interrupted_rollback_as_the_signed_in_operator(
    client: TestClient, users: Users, server_state: ServerState, aws: AwsClients
) -> None:
    two_releases(server_state)
    assert aliases(aws) == {"shop-api-prod": "2", "shop-worker-prod": "2"}
    rollback_id = interrupted_rollback(server_state)
    assert aliases(aws) == {"shop-api-prod": "2", "shop-worker-prod": "2"}  # no step ran

    viewer = TestClient(client.app)
    viewer_csrf = sign_in(viewer, users.tokens["viewer"])
    assert f"/rollbacks/{rollback_id}/resume" not in viewer.get(f"/rollbacks/{rollback_id}").text
    denied = viewer.post(f"/rollbacks/{rollback_id}/resume", data={"csrf": viewer_csrf}, follow_redirects=False)
    assert denied.status_code == 403

    csrf = sign_in(client, users.tokens["operator"])
    page = client.get(f"/rollbacks/{rollback_id}")
    assert f'action="/rollbacks/{rollback_id}/resume"' in page.text and 'data-status="interrupted"' in page.text
    assert client.post(f"/rollbacks/{rollback_id}/resume", follow_redirects=False).status_code == 403
    assert rollback_progress(server_state.apps.runbook("shop"), rollback_id).status == "interrupted"

    resumed = client.post(f"/rollbacks/{rollback_id}/resume", data={"csrf": csrf}, follow_redirects=False)
    assert resumed.status_code == 303 and resumed.headers["location"] == f"/rollbacks/{rollback_id}", resumed.text
    progress = poll(
        lambda: rollback_progress(server_state.apps.runbook("shop"), rollback_id),
        lambda p: p.status not in ("planned", "running", "interrupted"),
    )
    assert progress.status == "succeeded", progress
    assert aliases(aws) == {"shop-api-prod": "1", "shop-worker-prod": "1"}
    detail = client.get(f"/api/v1/rollbacks/{rollback_id}", headers=users.headers("viewer")).json()
    assert detail["status"] == "succeeded"
    entries = client.get("/api/v1/apps/shop/audit?limit=500", headers=users.headers("viewer")).json()["entries"]
    resumes = [e for e in entries if e["type"] == "rollback-resumed"]
    assert resumes and resumes[-1]["actor"] == "olive", [(e["type"], e["actor"]) for e in entries]
    finished = client.post(f"/rollbacks/{rollback_id}/resume", data={"csrf": csrf}, follow_redirects=False)
    assert finished.status_code == 409, finished.text  # succeeded: nothing to resume
