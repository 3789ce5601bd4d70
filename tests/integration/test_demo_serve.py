"""`lastgood demo --serve` as a newcomer runs it: a real process tells the story, then serves it; we read the
URL and tokens it prints, sign in over HTTP, try the two-person rule, and stop it with Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from lastgood.testing.endpoint import free_port

pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


class Output:
    """The process's stdout lines as they come, read on a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True).start()

    def wait_for(self, marker: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(marker in line for line in list(self.lines)):
                return "".join(self.lines)
            time.sleep(0.1)
        raise AssertionError(f"{marker!r} not printed within {seconds}s:\n{''.join(self.lines)}")


def _poll(client: httpx.Client, url: str, headers: dict[str, str], done: set[str]) -> dict[str, object]:
    deadline = time.monotonic() + 30
    detail: dict[str, object] = client.get(url, headers=headers).json()
    while detail["status"] not in done and time.monotonic() < deadline:
        time.sleep(0.1)
        detail = client.get(url, headers=headers).json()
    return detail


def test_demo_serve_tells_the_story_then_serves_it_until_ctrl_c(tmp_path: Path) -> None:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LASTGOOD_"))}, "TMPDIR": str(tmp_path)}
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lastgood", "demo", "--serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out = Output(process).wait_for("Ctrl-C stops the server", 90)
        assert "rollback-succeeded" in out  # the guard still rolled back alone under the served policy
        (api,) = re.findall(r"^api: (http://127\.0\.0\.1:\d+)/api/v1", out, re.MULTILINE)
        assert api == f"http://127.0.0.1:{port}" and f"dashboard: {api}/" in out
        tokens = dict(re.findall(r"^  (ada|abe|olive)\s+\w+\s+(lg_\S+)$", out, re.MULTILINE))
        assert set(tokens) == {"ada", "abe", "olive"}
        as_ = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
        with httpx.Client(base_url=api, timeout=30) as client:
            assert client.get("/healthz").status_code == 200
            # the dashboard: sign in with the admin's token, see the app's environments
            signed_in = client.post("/login", data={"token": tokens["ada"], "next": "/"}, follow_redirects=True)
            assert signed_in.status_code == 200 and "lastgood_session" in client.cookies
            assert "prod" in signed_in.text and "staging" in signed_in.text and "/login" not in str(signed_in.url)
            client.cookies.clear()
            assert client.get("/api/v1/apps").status_code == 401
            apps = client.get("/api/v1/apps", headers=as_["ada"]).json()
            assert apps == {"apps": [{"app": "shop", "environments": ["staging", "prod"]}]}
            prod = client.get("/api/v1/apps/shop/environments/prod", headers=as_["olive"]).json()
            assert prod["live"]["label"] == "v3" and prod["last_rollback"]["requested_by"] == "lastgood-guard"

            # the two-person rule: olive's rollback of prod waits; she may not approve it; abe's approval runs it
            body = {"reason": "trying the demo", "confirm": "rollback-production"}
            asked = client.post("/api/v1/apps/shop/environments/prod/rollbacks", json=body, headers=as_["olive"])
            assert asked.status_code == 200 and asked.json()["status"] == "awaiting-approval", asked.text
            rollback = f"/api/v1/rollbacks/{asked.json()['id']}"
            assert client.post(rollback + "/approve", headers=as_["olive"]).status_code == 403
            assert client.post(rollback + "/approve", headers=as_["abe"]).status_code in (200, 202)
            assert _poll(client, rollback, as_["abe"], {"succeeded", "failed"})["status"] == "succeeded"

        stopped = time.monotonic()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        assert code in (0, 130), process.stderr.read() if process.stderr else ""
        assert time.monotonic() - stopped < 10
        assert list(tmp_path.iterdir()) == []  # the demo's files are gone
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
