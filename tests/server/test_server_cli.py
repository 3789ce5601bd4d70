"""`lastgood server` and `lastgood server token ...` as a user runs them: tokens shown once and stored hashed,
a broken runbook refused before anything listens, SIGTERM ending the process promptly."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lastgood.testing.endpoint import free_port

pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def lastgood(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LASTGOOD_USER": "ops-admin"}
    result = subprocess.run(
        [sys.executable, "-m", "lastgood", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_a_token_is_printed_once_and_only_its_digest_is_stored(shop_dir: Path) -> None:
    created = lastgood("server", "token", "create", "--user", "alice", "--role", "operator", "-o", "json", cwd=shop_dir)
    token = json.loads(created.stdout)["token"]
    assert token.startswith("lg_")
    database = sqlite3.connect(shop_dir / ".lastgood" / "state.db")
    rows = database.execute("SELECT id, user, secret_hash FROM api_tokens").fetchall()
    assert len(rows) == 1 and rows[0][1] == "alice"
    dump = "\n".join(database.iterdump())
    assert token.split("_", 2)[2] not in dump  # the secret part is nowhere in the database
    listed = lastgood("server", "token", "list", "-o", "json", cwd=shop_dir).stdout
    assert token.split("_", 2)[2] not in listed and rows[0][0] in listed

    lastgood("server", "token", "revoke", rows[0][0], cwd=shop_dir)
    assert database.execute("SELECT revoked_at IS NOT NULL FROM api_tokens").fetchone() == (1,)


def test_a_wrong_role_is_bad_input_and_changes_nothing(shop_dir: Path) -> None:
    result = lastgood("server", "token", "create", "--user", "alice", "--role", "root", cwd=shop_dir, check=False)
    assert result.returncode == 2
    assert "viewer, operator, approver, admin" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broken_runbook_is_refused_before_anything_listens(tmp_path: Path) -> None:
    (tmp_path / "lastgood.yaml").write_text(
        "app: shop\nenvironments: {prod: {}}\ncomponents:\n  - {name: x, kind: nope}\n"
    )
    began = time.monotonic()
    result = lastgood("server", "--runbook", str(tmp_path / "lastgood.yaml"), cwd=tmp_path, check=False)
    assert result.returncode == 2 and time.monotonic() - began < 30
    assert "lastgood.yaml" in result.stderr and "nope" in result.stderr
    assert "Traceback" not in result.stderr
    missing = lastgood("server", "--runbook", str(tmp_path / "absent.yaml"), cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "absent.yaml" in missing.stderr


def test_the_server_serves_and_ends_promptly_on_sigterm(shop_dir: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "lastgood", "server", "--port", str(port)],
        cwd=shop_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, ready = time.monotonic() + 60, None
        while time.monotonic() < deadline and ready is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
            except httpx.HTTPError:
                time.sleep(0.1)
        assert ready is not None and ready.json() == {"status": "ready", "role": "all"}
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/apps").status_code == 401
        process.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert process.wait(timeout=30) == 0
        assert time.monotonic() - began < 10
    finally:
        if process.poll() is None:
            process.kill()
