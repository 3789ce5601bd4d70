"""Helpers for the API tests: releases to roll back between, a hold on an environment, polling."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from fastapi.testclient import TestClient

from lastgood.runtime.lease import hold
from lastgood.server.state import ServerState
from lastgood.service import releases
from lastgood.testing import shop

T = TypeVar("T")


def two_releases(state: ServerState, env: str = "prod") -> None:
    """v1 recorded, then new versions of both functions and v2 recorded: v2 is live, v1 the target."""
    ctx = state.apps.env_context("shop", env, "setup")
    releases.record(ctx, "v1")
    for function in (f"shop-api-{env}", f"shop-worker-{env}"):
        version = shop.publish_new_version(ctx.aws, function, "v2")
        shop.shift_alias(ctx.aws, function, version, None, 0)
    releases.record(ctx, "v2")


@contextmanager
def held(state: ServerState, env: str = "prod", operation: str = "rollback") -> Iterator[None]:
    """A real claim on the environment, by someone else ('mallory'), for the block."""
    ctx = state.apps.env_context("shop", env, "mallory")
    with hold(ctx, operation, f"{operation}-test-hold"):
        yield


def poll(read: Callable[[], T], done: Callable[[T], bool], timeout: float = 30.0) -> T:
    """`read()` until `done(value)`, or the last value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = read()
    return value


def rollback_finished(client: TestClient, headers: dict[str, str], rollback_id: str) -> dict[str, Any]:
    detail: dict[str, Any] = poll(
        lambda: client.get(f"/api/v1/rollbacks/{rollback_id}", headers=headers).json(),
        lambda d: d.get("status") not in ("running", "planned", "planning"),
    )
    return detail


def audit_entries(client: TestClient, headers: dict[str, str], app: str = "shop") -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/apps/{app}/audit?limit=500", headers=headers)
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["entries"]
    return entries
