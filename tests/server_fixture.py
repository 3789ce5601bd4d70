"""Fixtures for the server: its state on the shop app, an in-process client, users of every role, a live
server on a free port (for the browser and Prometheus)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from lastgood.server.app import create_app
from lastgood.server.run import build_state
from lastgood.server.settings import ServerSettings
from lastgood.server.state import ServerState
from lastgood.service.access import create_token
from lastgood.testing.endpoint import free_port

USERS = {"viewer": "vera", "operator": "olive", "approver": "abe", "admin": "ada"}


@dataclass
class Users:
    """A token per role; `headers(role)` authenticates as that role's user."""

    tokens: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def make_state(runbook_dir: Path, state: str | None = None, **settings: object) -> ServerState:
    """The server on `runbook_dir`'s lastgood.yaml; `state`: its ledger URL (as --state: every app's history
    there too), else the file's `state:`."""
    options: dict[str, object] = {"secure_cookies": False, "state": state} | settings
    return build_state(ServerSettings(runbooks=[runbook_dir / "lastgood.yaml"], **options))  # type: ignore[arg-type]


def add_users(state: ServerState, extra: dict[str, str] | None = None) -> Users:
    """One user per role (USERS), and `extra` name -> role; their tokens keyed by role, or by name for extra."""
    tokens = {role: create_token(state.ledger, name, role, created_by="test").token for role, name in USERS.items()}
    for name, role in (extra or {}).items():
        tokens[name] = create_token(state.ledger, name, role, created_by="test").token
    return Users(tokens)


@pytest.fixture
def server_state(shop_dir: Path) -> ServerState:
    return make_state(shop_dir)


@pytest.fixture
def users(server_state: ServerState) -> Users:
    return add_users(server_state)


@pytest.fixture
def client(server_state: ServerState) -> Iterator[TestClient]:
    with TestClient(create_app(server_state)) as test_client:  # runs the lifespan: background jobs on
        yield test_client


class LiveServer:
    """The server on a real port, in a thread of this process."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(state), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the server did not start within 20 s")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def live_server(server_state: ServerState) -> Iterator[LiveServer]:
    server = LiveServer(server_state).start()
    yield server
    server.stop()
