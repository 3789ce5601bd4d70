"""`lastgood stop` and `--release`: cut traffic where the file allows, then undo it exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.clock import FakeClock
from lastgood.config.loader import parse_runbook
from lastgood.engine import stop as emergency
from lastgood.errors import BadInput, Refused
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext

RUNBOOK = """
app: shop
environments: {prod: {}}
components:
  - {name: gateway, kind: fake, kill_switch: true}
  - {name: checkout-flag, kind: fake, kill_switch: true}
  - {name: api, kind: fake}
"""


@pytest.fixture
def world() -> Iterator[FakeWorld]:
    with installed(FakeWorld({"gateway": "rate=100", "checkout-flag": "on", "api": "v2"})) as w:
        yield w


def make_ctx(tmp_path: Path, text: str = RUNBOOK) -> EnvContext:
    ledger = open_ledger(resolve_url("sqlite:///ledger.db", tmp_path))
    return EnvContext(parse_runbook(text), "prod", ledger, AwsClients(), FakeClock())


def test_stop_then_release_restores_exactly(world: FakeWorld, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    result = emergency.stop(ctx)
    assert result.status == "active" and sorted(result.done) == ["checkout-flag", "gateway"]
    assert world.get("gateway") == "stopped" and world.get("checkout-flag") == "stopped"
    assert world.get("api") == "v2"  # not a kill switch: untouched
    with pytest.raises(Refused, match="already stopped"):
        emergency.stop(ctx)
    released = emergency.release(ctx)
    assert released.status == "released"
    assert world.get("gateway") == "rate=100" and world.get("checkout-flag") == "on"
    assert emergency.active_stop(ctx) is None
    with pytest.raises(Refused, match="no active emergency stop"):
        emergency.release(ctx)


def test_saved_states_survive_in_the_ledger(world: FakeWorld, tmp_path: Path) -> None:
    emergency.stop(make_ctx(tmp_path))
    # A new process (a new context on the same ledger) releases the stop.
    again = make_ctx(tmp_path)
    row = emergency.active_stop(again)
    assert row is not None and row.saved == {"gateway": {"value": "rate=100"}, "checkout-flag": {"value": "on"}}
    emergency.release(again)
    assert world.get("gateway") == "rate=100"


def test_nothing_to_stop_is_bad_input(world: FakeWorld, tmp_path: Path) -> None:
    text = "app: shop\nenvironments: {prod: {}}\ncomponents:\n  - {name: api, kind: fake}\n"
    with pytest.raises(BadInput, match="nothing in prod can be stopped"):
        emergency.stop(make_ctx(tmp_path, text))
