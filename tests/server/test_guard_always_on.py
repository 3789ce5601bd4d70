"""The server guards every release it finds in the ledger, recorded by the CLI in another process: a bad one is
rolled back as lastgood-guard, a healthy one is watched for its window; the environment answer shows the guard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lastgood.aws.clients import AwsClients
from lastgood.server.app import create_app
from lastgood.server.state import ServerState
from lastgood.service import releases
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint
from lastgood.testing.traffic import FunctionTraffic, TrafficSimulator
from server_fixture import Users, add_users, make_state

STATUS = "/api/v1/apps/shop/environments/prod"


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout:g}s")


@pytest.fixture
def guarded_dir(aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path) -> Path:
    """The shop in prod with 1-second periods, triggers that hold for 3 s, and a 40 s watch window."""
    shop.create_shop(aws, "prod")
    text = shop.runbook_text(aws_env.url, "sqlite:///state.db", period="1s", for_="3s") + "guard: {watch: 40s}\n"
    (tmp_path / "lastgood.yaml").write_text(text)
    return tmp_path


@pytest.fixture
def guarded(guarded_dir: Path) -> Iterator[tuple[ServerState, TestClient, Users]]:
    state = make_state(guarded_dir, guard_tick=0.2)
    users = add_users(state)
    with TestClient(create_app(state)) as client:
        yield state, client, users


def cli(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LASTGOOD_FILE": str(directory / "lastgood.yaml"), "LASTGOOD_USER": "deployer"}
    return subprocess.run(
        [sys.executable, "-m", "lastgood", *args], env=env, capture_output=True, text=True, timeout=120
    )


def new_version_live(aws: AwsClients) -> None:
    for function in ("shop-api-prod", "shop-worker-prod"):
        version = shop.publish_new_version(aws, function, "v2")
        shop.shift_alias(aws, function, version, None, 0)


def test_a_bad_release_recorded_by_the_cli_is_rolled_back_by_the_servers_guard(
    guarded: tuple[ServerState, TestClient, Users], guarded_dir: Path, aws: AwsClients
) -> None:
    state, client, users = guarded
    releases.record(state.apps.env_context("shop", "prod", "setup"), "v1")
    new_version_live(aws)
    traffic = TrafficSimulator(aws, [FunctionTraffic("shop-api-prod", 40, {"1": 0.0, "2": 0.6})])
    traffic.start()
    try:
        recorded = cli(guarded_dir, "release", "record", "prod", "--version", "v2")
        assert recorded.returncode == 0, recorded.stderr

        def rolled_back() -> dict[str, Any] | None:
            status = client.get(STATUS, headers=users.headers("viewer")).json()
            return status if status["live"]["label"] == "v1" and status["last_rollback"] else None

        status = wait_for(rolled_back, 45, "the guard's rollback")
    finally:
        traffic.stop()
    assert status["last_rollback"]["requested_by"] == "lastgood-guard"
    url = f"/api/v1/rollbacks/{status['last_rollback']['id']}"

    def finished() -> dict[str, Any] | None:
        detail: dict[str, Any] = client.get(url, headers=users.headers("viewer")).json()
        return detail if detail["status"] == "succeeded" else None

    rollback = wait_for(finished, 30, "the rollback's end")
    assert rollback["requested_by"] == "lastgood-guard"
    guard = wait_for(
        lambda: (g := client.get(STATUS, headers=users.headers("viewer")).json()["guard"])["status"] == "acted" and g,
        10,
        "the guard's health to say it acted",
    )
    assert guard["release"] == "v2" and guard["outcome"] == "rolled-back"
    assert guard["triggers"]["api-errors"]["state"] == "firing"
    assert guard["evaluations"] >= 1 and guard["lag_seconds"] is not None and guard["errors"] == []

    # v1 is live again but older than v2: the guard does not start watching it (no second rollback).
    ticks = state.guard.ticks if state.guard else 0
    wait_for(lambda: state.guard is not None and state.guard.ticks >= ticks + 5, 10, "five scheduler ticks")
    again = client.get(STATUS, headers=users.headers("viewer")).json()
    assert again["guard"]["release"] == "v2" and again["guard"]["status"] == "acted"
    assert again["last_rollback"]["id"] == status["last_rollback"]["id"]


def test_a_healthy_release_is_watched_for_its_window_then_left(
    guarded_dir: Path, aws: AwsClients, aws_env: LocalEndpoint
) -> None:
    text = (guarded_dir / "lastgood.yaml").read_text().replace("guard: {watch: 40s}", "guard: {watch: 1m}")
    text = text.replace("  prod:\n", "  prod:\n    guard: {watch: 6s}\n", 1)  # the environment's own window wins
    (guarded_dir / "lastgood.yaml").write_text(text)
    state = make_state(guarded_dir, guard_tick=0.2)
    users = add_users(state)
    traffic = TrafficSimulator(aws, [FunctionTraffic("shop-api-prod", 40, {"1": 0.0})])
    traffic.start()
    try:
        with TestClient(create_app(state)) as client:
            assert client.get(STATUS, headers=users.headers("viewer")).json()["guard"] is None
            recorded = cli(guarded_dir, "release", "record", "prod", "--version", "v1")
            assert recorded.returncode == 0, recorded.stderr

            def watching() -> dict[str, Any] | None:
                guard = client.get(STATUS, headers=users.headers("viewer")).json()["guard"]
                return guard if guard and guard["evaluations"] >= 2 else None

            guard = wait_for(watching, 20, "two evaluations")
            assert guard["status"] == "watching" and guard["release"] == "v1"
            assert guard["triggers"]["api-errors"]["state"] in ("ok", "no-data")
            # Due periods are judged within a few ticks, not a period late; room left for a loaded CI machine.
            assert 0 <= guard["lag_seconds"] < 10.0
            ended = wait_for(
                lambda: (
                    (g := client.get(STATUS, headers=users.headers("viewer")).json()["guard"])["status"] == "ended"
                    and g
                ),
                20,
                "the end of the 6 s window",
            )
            assert "no rollback trigger fired" in ended["message"]
            assert ended["verdict"] == "healthy", json.dumps(ended["coverage"])  # a str: shown whole
            assert [(t["trigger"], t["sight"]) for t in ended["coverage"]] == [("api-errors", "seen")]
            assert client.get(STATUS, headers=users.headers("viewer")).json()["last_rollback"] is None
    finally:
        traffic.stop()


def test_a_release_watched_without_data_ends_blind_not_healthy(guarded_dir: Path) -> None:
    """Issue 14: a watch that saw nothing said nothing but 'ended'; its verdict is blind, the trigger named."""
    text = (guarded_dir / "lastgood.yaml").read_text().replace("guard: {watch: 40s}", "guard: {watch: 5s}")
    (guarded_dir / "lastgood.yaml").write_text(text)
    state = make_state(guarded_dir, guard_tick=0.2)
    users = add_users(state)
    with TestClient(create_app(state)) as client:
        releases.record(state.apps.env_context("shop", "prod", "setup"), "v1")  # no traffic at all

        def status() -> dict[str, Any]:
            guard: dict[str, Any] = client.get(STATUS, headers=users.headers("viewer")).json()["guard"] or {}
            return guard

        watching = wait_for(lambda: (g := status()).get("evaluations", 0) >= 1 and g, 20, "an evaluation")
        assert watching["status"] == "watching" and watching["verdict"] == "blind"
        ended = wait_for(lambda: (g := status())["status"] == "ended" and g, 20, "the end of the 5 s window")
        assert ended["verdict"] == "blind" and ended["outcome"] is None
        assert "the guard could not see: api-errors: no data" in ended["message"]
        assert [(t["trigger"], t["sight"]) for t in ended["coverage"]] == [("api-errors", "blind")]
