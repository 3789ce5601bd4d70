"""Approvals from Slack, end to end: a rollback requested through the API needs an approval, its Slack message
(delivered to a local receiver standing in for Slack) carries the buttons, and a click signed as Slack signs it
approves or denies as the file's person for that member; the answer goes to the interaction's response_url."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from lastgood.redact import MASK, redact
from lastgood.server.app import create_app
from lastgood.server.slack import signature
from lastgood.server.state import ServerState
from lastgood.service import audit, releases
from lastgood.testing import shop
from server_fixture import Users, add_users, make_state

SECRET = "slack-signing-secret-for-tests-0001"
PUBLIC_URL = "https://lastgood.example.com"

POLICY = """
policy:
  approvals:
    - {severity: high, environments: [prod], roles: [approver], count: 1}
    - {severity: critical, environments: [prod], roles: [approver], count: 2}
  people:
    - {name: olive, roles: [operator], slack: U0OLIVE}
    - {name: abe, roles: [approver], slack: U0ABE}
    - {name: vera, roles: [approver], slack: U0VERA}
notifications:
  retries: 0
  channels:
    - slack: {webhook_url: "RECEIVER/services/T1/B1/x"}
"""


class Receiver:
    """A local HTTP server standing in for Slack: its incoming webhook and the interactions' response_urls."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, match: Callable[[str, dict[str, Any]], bool], seconds: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for path, body in list(self.posts):
                if match(path, body):
                    return body
            time.sleep(0.02)
        raise AssertionError(f"nothing matching arrived; got {self.posts}")

    def replies(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.posts if p == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()


@pytest.fixture
def slack_state(shop_dir: Path, receiver: Receiver) -> ServerState:
    runbook = shop_dir / "lastgood.yaml"
    runbook.write_text(runbook.read_text() + POLICY.replace("RECEIVER", receiver.url))
    return make_state(shop_dir, public_url=PUBLIC_URL, slack_signing_secret=SECRET)


@pytest.fixture
def slack_users(slack_state: ServerState) -> Users:
    return add_users(slack_state)  # vera viewer, olive operator, abe approver, ada admin


@pytest.fixture
def slack_client(slack_state: ServerState) -> Iterator[TestClient]:
    with TestClient(create_app(slack_state)) as test_client:
        yield test_client


def _two_releases(state: ServerState) -> None:
    ctx = state.apps.env_context("shop", "prod", "setup")
    releases.record(ctx, "v1")
    for function in ("shop-api-prod", "shop-worker-prod"):
        version = shop.publish_new_version(ctx.aws, function, "v2")
        shop.shift_alias(ctx.aws, function, version, None, 0)
    releases.record(ctx, "v2")


def _awaiting(client: TestClient, users: Users, state: ServerState, role: str = "operator", **extra: str) -> str:
    """A prod rollback requested through the API as `role`'s user, left waiting for approval."""
    _two_releases(state)
    body = {"reason": "bad v2", "confirm": "rollback-production", **extra}
    answer = client.post("/api/v1/apps/shop/environments/prod/rollbacks", json=body, headers=users.headers(role))
    assert answer.status_code == 200 and answer.json()["status"] == "awaiting-approval", answer.text
    return str(answer.json()["id"])


def _message_blocks(receiver: Receiver, rollback_id: str) -> list[dict[str, Any]]:
    """The approval-needed message Slack got for the rollback."""
    message = receiver.wait(lambda path, body: path.startswith("/services/") and rollback_id in body["text"])
    assert "Approval needed" in message["text"]
    return list(message["blocks"])


def _click(
    client: TestClient,
    receiver: Receiver,
    action_id: str,
    member: str,
    blocks: list[dict[str, Any]] | None = None,
    secret: str = SECRET,
    at: float | None = None,
) -> tuple[int, float, str]:
    """POST a block_actions interaction as Slack does; (status, seconds to answer, its response_url path)."""
    reply_path = f"/actions/T1/{time.monotonic_ns()}/reply"
    payload = {
        "type": "block_actions",
        "user": {"id": member, "username": member.lower(), "team_id": "T1"},
        "api_app_id": "A1",
        "container": {"type": "message", "channel_id": "C1", "message_ts": "1.2"},
        "trigger_id": "1.2.3",
        "response_url": receiver.url + reply_path,
        "message": {"type": "message", "text": "...", "blocks": blocks or []},
        "actions": [{"action_id": action_id, "block_id": "lastgood-approval", "type": "button", "action_ts": "1.3"}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time() if at is None else at))
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature(secret, timestamp, body),
    }
    started = time.monotonic()
    answer = client.post("/slack/interactions", content=body, headers=headers)
    return answer.status_code, time.monotonic() - started, reply_path


def _detail(client: TestClient, users: Users, rollback_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/rollbacks/{rollback_id}", headers=users.headers("viewer"))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _settled(client: TestClient, users: Users, rollback_id: str, seconds: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    detail = _detail(client, users, rollback_id)
    while detail["status"] in ("planned", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
        detail = _detail(client, users, rollback_id)
    return detail


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_approve_in_slack_runs_the_rollback_as_the_person(
    slack_client: TestClient, slack_users: Users, slack_state: ServerState, receiver: Receiver
) -> None:
    rollback_id = _awaiting(slack_client, slack_users, slack_state)
    blocks = _message_blocks(receiver, rollback_id)
    (actions,) = [b for b in blocks if b["type"] == "actions"]
    approve = next(e for e in actions["elements"] if e["text"]["text"] == "Approve")
    assert approve["action_id"] == f"approve:{rollback_id}"

    status, seconds, reply_path = _click(slack_client, receiver, approve["action_id"], "U0ABE", blocks)
    assert status == 200 and seconds < 3.0  # Slack waits 3 s at most: the work is a background job

    reply = receiver.wait(lambda path, body: path == reply_path)
    assert reply["replace_original"] is True
    assert f"{rollback_id}: approved by abe (1 of 1) in Slack" in reply["text"]
    assert all(b["type"] != "actions" for b in reply["blocks"])  # nothing left to click
    assert reply["blocks"][0] == blocks[0]  # the message is kept, the result added
    detail = _settled(slack_client, slack_users, rollback_id)
    assert detail["status"] == "succeeded", detail
    assert [e["actor"] for e in detail["timeline"] if e["type"] == "approved"] == ["abe"]
    live = slack_client.get("/api/v1/apps/shop/environments/prod", headers=slack_users.headers("viewer")).json()
    assert live["live"]["label"] == "v1"
    ctx = slack_state.apps.app_context("shop", "ada")
    assert audit.verify(ctx).ok
    assert any(e.type == "approved" and e.actor == "abe" for e in audit.log(ctx, limit=200).entries)


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_deny_in_slack_needs_no_reason(
    slack_client: TestClient, slack_users: Users, slack_state: ServerState, receiver: Receiver
) -> None:
    rollback_id = _awaiting(slack_client, slack_users, slack_state)
    blocks = _message_blocks(receiver, rollback_id)
    status, _, reply_path = _click(slack_client, receiver, f"deny:{rollback_id}", "U0ABE", blocks)
    assert status == 200
    reply = receiver.wait(lambda path, body: path == reply_path)
    assert reply["replace_original"] is True and "Denied in Slack by abe" in reply["text"]
    detail = _detail(slack_client, slack_users, rollback_id)
    assert detail["status"] == "denied"
    (denied,) = [e for e in detail["timeline"] if e["type"] == "denied"]
    assert denied["actor"] == "abe" and denied["message"] == "denied by abe: denied in Slack by abe"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_first_of_two_approvals_is_told_to_the_channel_and_keeps_the_buttons(
    slack_client: TestClient, slack_users: Users, slack_state: ServerState, receiver: Receiver
) -> None:
    rollback_id = _awaiting(slack_client, slack_users, slack_state, severity="critical")  # two approvers
    _, _, reply_path = _click(slack_client, receiver, f"approve:{rollback_id}", "U0ABE")
    reply = receiver.wait(lambda path, body: path == reply_path)
    assert reply["response_type"] == "in_channel" and reply["replace_original"] is False
    assert f"{rollback_id}: approved by abe (1 of 2) in Slack; it waits for more approvals." in reply["text"]
    assert _detail(slack_client, slack_users, rollback_id)["status"] == "awaiting-approval"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_bad_signatures_and_replays_are_401_and_change_nothing(
    slack_client: TestClient, slack_users: Users, slack_state: ServerState, receiver: Receiver
) -> None:
    rollback_id = _awaiting(slack_client, slack_users, slack_state)
    action = f"approve:{rollback_id}"
    assert _click(slack_client, receiver, action, "U0ABE", secret="not-the-signing-secret")[0] == 401
    assert _click(slack_client, receiver, action, "U0ABE", at=time.time() - 301)[0] == 401  # replayed
    assert _click(slack_client, receiver, action, "U0ABE", at=time.time() + 301)[0] == 401
    unsigned = slack_client.post("/slack/interactions", content=b"payload=%7B%7D")
    assert unsigned.status_code == 401 and unsigned.headers["content-type"].startswith("application/problem+json")
    time.sleep(0.3)  # a job started by mistake would answer within this; nothing may arrive
    assert [p for p, _ in receiver.posts if p.startswith("/actions/")] == []
    assert _detail(slack_client, slack_users, rollback_id)["status"] == "awaiting-approval"
    assert redact(f"secret {SECRET}") == f"secret {MASK}"  # the server registered it: it never leaves masked


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_an_unmapped_member_is_told_and_nothing_changes(
    slack_client: TestClient, slack_users: Users, slack_state: ServerState, receiver: Receiver
) -> None:
    rollback_id = _awaiting(slack_client, slack_users, slack_state)
    status, _, reply_path = _click(slack_client, receiver, f"approve:{rollback_id}", "U0STRANGER")
    assert status == 200
    reply = receiver.wait(lambda path, body: path == reply_path)
    assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert "U0STRANGER is none of shop's people" in reply["text"] and "slack: U0STRANGER" in reply["text"]
    assert "Nothing was changed" in reply["text"]
    detail = _detail(slack_client, slack_users, rollback_id)
    assert detail["status"] == "awaiting-approval"
    assert [e for e in detail["timeline"] if e["type"] in ("approved", "denied")] == []


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_person_who_is_not_an_approver_of_the_server_is_refused(
    slack_client: TestClient, slack_users: Users, slack_state: ServerState, receiver: Receiver
) -> None:
    rollback_id = _awaiting(slack_client, slack_users, slack_state)
    _, _, reply_path = _click(slack_client, receiver, f"deny:{rollback_id}", "U0VERA")  # the file says approver
    reply = receiver.wait(lambda path, body: path == reply_path)
    assert reply["response_type"] == "ephemeral"
    assert "vera (viewer on this server) needs the approver role" in reply["text"]
    assert _detail(slack_client, slack_users, rollback_id)["status"] == "awaiting-approval"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_the_requesters_own_approval_is_refused_in_slack_as_in_the_api(
    slack_client: TestClient, slack_users: Users, slack_state: ServerState, receiver: Receiver
) -> None:
    # critical needs two approvers, so abe's own request is not approved by asking: it waits for two others
    rollback_id = _awaiting(slack_client, slack_users, slack_state, role="approver", severity="critical")
    api = slack_client.post(f"/api/v1/rollbacks/{rollback_id}/approve", headers=slack_users.headers("approver"))
    assert api.status_code == 403 and "abe requested this rollback" in api.json()["detail"]
    _, _, reply_path = _click(slack_client, receiver, f"approve:{rollback_id}", "U0ABE")
    reply = receiver.wait(lambda path, body: path == reply_path)
    assert reply["response_type"] == "ephemeral"
    assert "abe requested this rollback and two people must approve" in reply["text"]
    detail = _detail(slack_client, slack_users, rollback_id)
    assert detail["status"] == "awaiting-approval"
    assert [e for e in detail["timeline"] if e["type"] == "approved"] == []


def test_without_a_signing_secret_slack_is_off(shop_dir: Path) -> None:
    with TestClient(create_app(make_state(shop_dir))) as client:
        answer = client.post("/slack/interactions", content=b"payload=%7B%7D")
    assert answer.status_code == 503 and "LASTGOOD_SLACK_SIGNING_SECRET" in answer.json()["detail"]
