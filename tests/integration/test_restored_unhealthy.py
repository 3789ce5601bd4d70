"""A rollback on moto's server that restores its component while the service keeps failing its HTTP check ends
`restored-unhealthy` (exit 6), notifies, is shown as such, and escalates per the file on a fake clock until
someone acknowledges it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.clock import FakeClock
from lastgood.config.loader import load_runbook
from lastgood.domain.actor import Actor
from lastgood.service import escalation
from lastgood.service.session import open_environment
from lastgood.service.views import rollback_detail

pytestmark = pytest.mark.slow


class Stand(BaseHTTPRequestHandler):
    """/health answers 500 for ever (the service is still down); /team and /oncall receive webhooks."""

    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []
    health_hits: ClassVar[int] = 0

    def do_GET(self) -> None:
        Stand.health_hits += 1
        self.send_response(500)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"down\n")

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Stand.received.append((self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand() -> Iterator[str]:
    Stand.received, Stand.health_hits = [], 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stand)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def wait_for(check: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def events(path: str) -> list[str]:
    return [body["event"] for where, body in Stand.received if where == path]


RUNBOOK = """
app: shop
state: sqlite:///state.db
environments:
  prod:
    aws: {{region: us-east-1, endpoint_url: "{endpoint}"}}
    validate:
      checks:
        - name: health
          http: {{url: "{stand}/health", retries: 2, interval: 0.2}}
components:
  - {{name: flag, kind: ssm-parameter, parameters: [/shop/prod/flag]}}
policy:
  people:
    - {{name: erin, roles: [lead], email: erin@example.com}}
    - {{name: omar, roles: [oncall], phone: "+1 555 0101"}}
  escalation:
    - {{after: 5m, contact: [lead], channels: [team]}}
    - {{after: 15m, contact: [oncall], channels: [oncall], severity: high}}
    - {{after: 10m, contact: [oncall], channels: [oncall], severity: critical}}
  updates: {{high: 10m}}
notifications:
  retries: 0
  channels:
    - {{name: team, webhook: {{url: "{stand}/team", secret: "${{HOOK_SECRET}}"}}}}
    - {{name: oncall, webhook: {{url: "{stand}/oncall", secret: "${{HOOK_SECRET}}"}}}}
"""


def test_a_restored_rollback_whose_service_still_fails_ends_unhealthy_and_escalates(  # type: ignore[no-untyped-def]
    tmp_path: Path, aws_env, aws: AwsClients, stand: str, monkeypatch, capsys
) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(RUNBOOK.format(endpoint=aws_env.url, stand=stand))
    monkeypatch.setenv("LASTGOOD_FILE", str(file))
    monkeypatch.setenv("HOOK_SECRET", "whsec-validation-test-1234")
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/shop/prod/flag", Value="on", Type="String")
    assert main(["release", "record", "prod", "--version", "v1"]) == 0
    ssm.put_parameter(Name="/shop/prod/flag", Value="off", Type="String", Overwrite=True)
    assert main(["release", "record", "prod", "--version", "v2"]) == 0
    capsys.readouterr()

    assert main(["rollback", "prod", "--yes", "-o", "json"]) == 6
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["status"] == "restored-unhealthy"
    assert ssm.get_parameter(Name="/shop/prod/flag")["Parameter"]["Value"] == "on"  # the component is restored
    [health] = outcome["validation"]["checks"]
    assert health["name"] == "health" and not health["passed"] and health["attempts"] == 3
    assert "500" in health["detail"] and Stand.health_hits == 3
    rollback_id = outcome["id"]

    # notified, to every channel; nothing rolled back again
    # each channel is delivered on its own: wait for both, not for the first
    assert wait_for(lambda: all("rollback-restored-unhealthy" in events(path) for path in ("/team", "/oncall")))
    runbook = load_runbook(file)
    detail = rollback_detail(runbook, rollback_id)
    assert detail.status == "restored-unhealthy" and detail.validation is not None
    assert not detail.validation["passed"]
    assert [e.type for e in detail.timeline].count("rollback-started") == 1
    assert main(["resume", rollback_id]) == 3  # not resumable: nothing rolls back again by itself

    # status and show name it until acknowledged
    capsys.readouterr()
    assert main(["status", "prod", "-o", "json"]) == 0
    assert [r["status"] for r in json.loads(capsys.readouterr().out)["rollbacks"]] == ["restored-unhealthy"]
    assert main(["show", rollback_id]) == 0
    shown = capsys.readouterr().out
    assert "restored-unhealthy" in shown and "validation: FAILED" in shown

    # escalation on a fake clock from the rollback's creation
    ctx = open_environment(runbook, "prod", Actor(name="lastgood-server", via="worker"))
    with ctx.session() as session:
        from lastgood.ledger import store

        created = store.get_rollback(session, rollback_id).created_at
    clock = FakeClock(created)
    ctx = replace(ctx, clock=clock)
    Stand.received = []

    clock.advance(4 * 60)
    assert escalation.tick(ctx) == []
    clock.advance(60)  # 5m: step 1, to the team channel only
    assert escalation.tick(ctx) == [f"{rollback_id}:escalation:0"]
    assert escalation.tick(ctx) == []  # claimed once
    assert wait_for(lambda: events("/team") == ["escalation"])
    team = next(body for where, body in Stand.received if where == "/team")
    assert "erin (erin@example.com)" in json.dumps(team) and team["status"].startswith("Open: restored-unhealthy")
    clock.advance(5 * 60)  # 10m: the stakeholder update (high: every 10m), to every channel
    assert escalation.tick(ctx) == [f"{rollback_id}:update:1"]
    clock.advance(5 * 60)  # 15m: step 2 (high), to on-call; the critical step does not apply
    assert escalation.tick(ctx) == [f"{rollback_id}:escalation:1"]
    assert wait_for(lambda: events("/oncall") == ["status-update", "escalation"])
    assert events("/team") == ["escalation", "status-update"]

    # a second worker, or a guard beside the server, sends nothing already claimed
    other = replace(open_environment(runbook, "prod", Actor(name="worker-2", via="worker")), clock=clock)
    assert escalation.tick(other) == []

    clock.advance(60)
    capsys.readouterr()
    assert main(["ack", rollback_id, "--note", "on it", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["acknowledged_by"] == "tester"
    assert main(["ack", rollback_id]) == 3  # acknowledged already
    clock.advance(60 * 60)
    assert escalation.tick(ctx) == []  # no step, no update after the acknowledgement
    time.sleep(0.5)
    assert len(Stand.received) == 4

    capsys.readouterr()
    assert main(["status", "prod", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rollbacks"] == []
    detail = rollback_detail(runbook, rollback_id)
    assert detail.acknowledged_by == "tester"
    assert [e["key"] for e in detail.escalations] == ["escalation:0", "update:1", "escalation:1"]
    assert detail.escalations[0]["at"] == (created + timedelta(minutes=5)).isoformat()
