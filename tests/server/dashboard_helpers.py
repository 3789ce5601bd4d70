"""Shared by the dashboard's tests: releases to roll back between, and a runbook whose policy wants approvals."""

from __future__ import annotations

from pathlib import Path

from lastgood.server.state import ServerState
from lastgood.service import releases
from lastgood.testing import shop

# High severity in prod needs two people holding `lead` (so the requester, a lead too, does not approve by asking).
APPROVAL_POLICY = """\
policy:
  approvals:
    - {severity: high, environments: [prod], roles: [lead], count: 2}
  people:
    - {name: rita, roles: [lead]}
    - {name: abe, roles: [lead]}
    - {name: ada, roles: [lead]}
"""


def write_approval_runbook(shop_dir: Path) -> Path:
    path = shop_dir / "lastgood.yaml"
    path.write_text(path.read_text() + APPROVAL_POLICY)
    return shop_dir


def record(state: ServerState, label: str, env: str = "prod") -> None:
    """Publish new versions of both functions, point their aliases at them, and record the release."""
    ctx = state.apps.env_context("shop", env, "setup")
    for function in (f"shop-api-{env}", f"shop-worker-{env}"):
        version = shop.publish_new_version(ctx.aws, function, label)
        shop.shift_alias(ctx.aws, function, version, None, 0)
    releases.record(ctx, label)


def two_releases(state: ServerState, env: str = "prod") -> None:
    releases.record(state.apps.env_context("shop", env, "setup"), "v1")
    record(state, "v2", env)
