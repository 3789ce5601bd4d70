"""Notifications wired into a real rollback: delivered to a local receiver, and a dead channel neither blocks
nor fails the rollback but is recorded."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from lastgood.cli.app import main
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url

SECRET = "whsec-wiring-test-1234"


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


@pytest.fixture
def world() -> Iterator[FakeWorld]:
    with installed(FakeWorld({"api": "v1"})) as w:
        yield w


def wait_for(check, seconds: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_rollback_notifies_and_survives_a_dead_channel(tmp_path: Path, world, receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    (tmp_path / "lastgood.yaml").write_text(f"""
app: shop
state: sqlite:///state.db
environments: {{staging: {{}}}}
components: [{{name: api, kind: fake}}]
notifications:
  retries: 1
  channels:
    - webhook: {{url: "{receiver}", secret: "${{HOOK_SECRET}}"}}
    - slack: {{webhook_url: "http://127.0.0.1:9/dead"}}
""")
    monkeypatch.setenv("LASTGOOD_FILE", str(tmp_path / "lastgood.yaml"))
    assert main(["release", "record", "staging", "--version", "v1", "-o", "json"]) == 0
    world.set("api", "v2")
    assert main(["release", "record", "staging", "--version", "v2", "-o", "json"]) == 0
    started = time.monotonic()
    assert main(["rollback", "staging", "--yes", "-o", "json"]) == 0
    assert time.monotonic() - started < 3  # the dead channel's retries did not hold the rollback up
    assert world.get("api") == "v1"

    def events() -> list[str]:
        return [json.loads(body)["event"] for _h, body in Receiver.received]

    assert wait_for(lambda: "rollback-succeeded" in events())
    assert events()[0] == "rollback-started"
    headers, body = Receiver.received[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Lastgood-Signature"] == expected
    assert SECRET not in body.decode()

    ledger = open_ledger(resolve_url("sqlite:///state.db", tmp_path))

    def recorded() -> list[str]:
        with ledger.session() as session:
            return [e.type for e in store.events_since(session, "shop", "staging")]

    assert wait_for(lambda: recorded().count("notify-failed") >= 2)  # started and succeeded, on slack
    assert recorded().count("notify-sent") >= 2


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_approval_needed_names_the_escalation_path(tmp_path: Path, world, receiver, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    (tmp_path / "lastgood.yaml").write_text(f"""
app: shop
state: sqlite:///state.db
environments: {{prod: {{}}}}
components: [{{name: api, kind: fake}}]
policy:
  approvals: [{{severity: high, roles: [lead], count: 2}}]
  people: [{{name: erin, roles: [lead], email: erin@example.com, phone: "+1 555 0100"}}]
  escalation: [{{after: 15m, contact: [lead]}}]
notifications:
  channels: [{{webhook: {{url: "{receiver}", secret: "${{HOOK_SECRET}}"}}}}]
""")
    monkeypatch.setenv("LASTGOOD_FILE", str(tmp_path / "lastgood.yaml"))
    assert main(["release", "record", "prod", "--version", "v1"]) == 0
    world.set("api", "v2")
    assert main(["release", "record", "prod", "--version", "v2"]) == 0
    assert main(["rollback", "prod", "--severity", "high"]) == 3  # awaits approval
    assert wait_for(lambda: any(json.loads(b)["event"] == "approval-needed" for _h, b in Receiver.received))
    body = next(json.loads(b) for _h, b in Receiver.received if json.loads(b)["event"] == "approval-needed")
    text = json.dumps(body)
    assert "escalate after 15m: erin (erin@example.com, +1 555 0100)" in text
