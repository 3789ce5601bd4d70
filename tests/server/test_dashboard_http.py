"""The dashboard over plain HTTP: sign-in and its cookie, the CSRF check, roles on forms, readable errors, the
pages rendering what the ledger holds, and the live feed (SSE) ending when the server stops."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from dashboard_helpers import two_releases
from fastapi.testclient import TestClient
from sqlalchemy import select

from lastgood.ledger.tables import EventRow
from lastgood.server.app import create_app
from lastgood.server.auth import SESSION_COOKIE
from lastgood.server.state import ServerState
from lastgood.service.dashboard import recent_rollbacks
from lastgood.service.events import rollback_progress
from server_fixture import LiveServer, Users, add_users, make_state

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def sign_in(client: TestClient, token: str) -> str:
    """Signs the client in; the page's CSRF token."""
    answer = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    page = client.get("/")
    found = CSRF.search(page.text)
    assert page.status_code == 200 and found, page.text
    return found.group(1)


def recent(state: ServerState, env: str = "prod") -> list[str]:
    return [r.id for r in recent_rollbacks(state.apps.env_context("shop", env, "check"))]


def unfinished_or_running(state: ServerState, rollback_id: str) -> bool:
    return rollback_progress(state.apps.runbook("shop"), rollback_id).status in ("planned", "running")


def test_pages_redirect_to_login_and_the_api_still_answers_401(client: TestClient) -> None:
    answer = client.get("/apps/shop/environments/prod?x=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/apps/shop/environments/prod%3Fx%3D1"
    login = client.get("/login")
    assert login.status_code == 200 and 'name="token"' in login.text
    assert client.get("/api/v1/apps").status_code == 401


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_signing_in_sets_an_httponly_lax_session_cookie_secure_unless_turned_off(shop_dir: Path) -> None:
    for secure in (True, False):
        state = make_state(shop_dir, secure_cookies=secure)
        users = add_users(state)
        with TestClient(create_app(state), base_url="https://testserver") as client:
            answer = client.post(
                "/login", data={"token": users.tokens["viewer"], "next": "/audit"}, follow_redirects=False
            )
            assert answer.status_code == 303 and answer.headers["location"] == "/audit"
            cookie = answer.headers["set-cookie"]
            assert cookie.startswith(f"{SESSION_COOKIE}=")
            flags = {part.strip().lower() for part in cookie.split(";")}
            assert {"httponly", "path=/", "samesite=lax"} <= flags
            assert ("secure" in flags) is secure
            assert users.tokens["viewer"] not in cookie  # the session's own secret, never the API token


def test_a_wrong_token_is_told_plainly_and_gets_no_cookie(client: TestClient, users: Users) -> None:
    answer = client.post("/login", data={"token": "lg_nope_nope"}, follow_redirects=False)
    assert answer.status_code == 401
    assert "not valid" in answer.text and "set-cookie" not in answer.headers
    assert answer.headers["content-type"].startswith("text/html")


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_next_never_leaves_the_site(client: TestClient, users: Users) -> None:
    for target in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        answer = client.post("/login", data={"token": users.tokens["viewer"], "next": target}, follow_redirects=False)
        assert answer.headers["location"] == "/", target


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_an_unsafe_request_without_the_csrf_token_is_refused(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state)
    csrf = sign_in(client, users.tokens["operator"])
    form = {"reason": "bad v2", "confirm": "rollback-production"}
    for sent in ({}, {"csrf": "wrong"}):
        answer = client.post("/apps/shop/environments/prod/rollback", data=form | sent, follow_redirects=False)
        assert answer.status_code == 403, answer.text
        assert "CSRF" in answer.text and answer.headers["content-type"].startswith("text/html")
    assert recent(server_state) == []
    refused = client.post("/logout", follow_redirects=False)
    assert refused.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200  # still signed in
    out = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_viewer_cannot_post_the_rollback_form(client: TestClient, users: Users, server_state: ServerState) -> None:
    two_releases(server_state)
    csrf = sign_in(client, users.tokens["viewer"])
    page = client.get("/apps/shop/environments/prod")
    assert page.status_code == 200 and "v2" in page.text
    assert 'id="rollback-form"' not in page.text and "needs the operator role" in page.text
    form = {"reason": "bad v2", "confirm": "rollback-production", "csrf": csrf}
    answer = client.post("/apps/shop/environments/prod/rollback", data=form, follow_redirects=False)
    assert answer.status_code == 403
    assert "vera is viewer" in answer.text and "operator" in answer.text
    assert recent(server_state) == []


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_an_operator_rolls_back_by_form_and_errors_read_as_pages(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state)
    csrf = sign_in(client, users.tokens["operator"])
    page = client.get("/apps/shop/environments/prod")
    assert 'id="rollback-form"' in page.text and "rollback-production" in page.text
    url = "/apps/shop/environments/prod/rollback"
    wrong = client.post(url, data={"reason": "bad v2", "confirm": "yes", "csrf": csrf}, follow_redirects=False)
    assert wrong.status_code == 409 and wrong.headers["content-type"].startswith("text/html")
    assert "prod is protected" in wrong.text and "Nothing was changed" in wrong.text and '"detail"' not in wrong.text
    assert recent(server_state) == []
    started = client.post(
        url, data={"reason": "bad v2", "confirm": "rollback-production", "csrf": csrf}, follow_redirects=False
    )
    assert started.status_code == 303, started.text
    rollback_id = started.headers["location"].rsplit("/", 1)[1]
    deadline = time.monotonic() + 30
    while unfinished_or_running(server_state, rollback_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    detail = client.get(f"/rollbacks/{rollback_id}")
    assert detail.status_code == 200
    assert 'data-status="succeeded"' in detail.text and "olive" in detail.text
    assert client.get(f"/rollbacks/{rollback_id}/report").text.lstrip().lower().startswith("<!doctype html")
    overview = client.get("/")
    assert rollback_id in overview.text and "v1" in overview.text
    missing = client.get("/rollbacks/rb-nope")
    assert missing.status_code == 404 and "no rollback" in missing.text


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_every_page_renders_for_a_viewer(client: TestClient, users: Users, server_state: ServerState) -> None:
    two_releases(server_state)
    sign_in(client, users.tokens["viewer"])
    for path, expect in (
        ("/", "prod"),
        ("/apps/shop/environments/prod", "Releases"),
        ("/apps/shop/environments/prod/readiness", "live release v2"),
        ("/apps/shop/environments/prod/plan", "update-alias"),
        ("/audit", "Verifying the hash chain"),
        ("/audit/verify?app=shop", "the hash chain of"),
        ("/kpis", "mean time to restore"),
    ):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert expect in answer.text, path
    assert client.get("/apps/shoop/environments/prod").status_code == 404
    assert client.get("/deployments/dp-nope").status_code == 404


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_the_feed_streams_new_ledger_events_and_ends_when_the_server_stops(
    server_state: ServerState, users: Users
) -> None:
    server = LiveServer(server_state).start()
    try:
        lines: list[str] = []
        done = threading.Event()
        headers = users.headers("viewer")

        def read() -> None:
            with httpx.stream("GET", f"{server.url}/events?app=shop&env=prod", headers=headers, timeout=30) as answer:
                assert answer.headers["content-type"].startswith("text/event-stream")
                for line in answer.iter_lines():
                    lines.append(line)
            done.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        _wait(lambda: any(line.startswith("retry:") for line in lines))
        two_releases(server_state)  # written after the stream started: only these come
        _wait(lambda: sum(1 for line in lines if line == "event: ledger") >= 2)
        events = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
        assert [e["type"] for e in events][:2] == ["release-recorded", "release-recorded"], events
        assert all(e["env"] == "prod" for e in events)
        started = time.monotonic()
        server_state.stopping.set()
        assert done.wait(5), "the stream did not end when the server began to stop"
        assert time.monotonic() - started < 3
    finally:
        server.stop()


def _wait(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition(), "timed out"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_the_audit_page_says_when_the_chain_was_tampered_with(
    client: TestClient, users: Users, server_state: ServerState
) -> None:
    two_releases(server_state)
    sign_in(client, users.tokens["viewer"])
    assert "verifies" in client.get("/audit/verify?app=shop").text
    with server_state.apps.ledger_of("shop").session() as session:
        first = session.scalars(select(EventRow).order_by(EventRow.id)).first()
        assert first is not None
        first.message = "nothing happened here"
    answer = client.get("/audit/verify?app=shop")
    assert answer.status_code == 200
    assert "does not verify" in answer.text and f"entry {first.id}" in answer.text
