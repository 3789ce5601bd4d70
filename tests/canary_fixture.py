"""Fixtures for the canary judge's tests on the moto server: the shop at release v1 with a `canary:` block, and
a traffic simulator writing per-version 1-second Lambda metrics. Loaded from tests/conftest.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import load_runbook
from lastgood.engine.record import record_release
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.testing import shop
from lastgood.testing.traffic import FunctionTraffic, TrafficSimulator

API = "shop-api-prod"

# alpha 0.01 and a tolerated ratio of 1.5 keep a false rollback of an equally good canary rare (<= 1%).
CANARY = shop.canary_text(period="1s", warmup="2s")


@pytest.fixture
def canary_dir(aws_env, aws: AwsClients, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """The shop at release v1, its file's triggers (api-errors '> 5%' over the whole function, for 3 s), and a
    canary block judging per version every second."""
    shop.create_shop(aws, "prod")
    text = shop.runbook_text(aws_env.url, "sqlite:///.lastgood/state.db", period="1s", for_="3s")
    (tmp_path / "lastgood.yaml").write_text(text + CANARY)
    record_release(canary_context(tmp_path), "v1")
    return tmp_path


def canary_context(directory: Path) -> EnvContext:
    runbook = load_runbook(directory / "lastgood.yaml")
    aws = AwsClients(runbook.environment("prod").aws)
    return EnvContext(runbook, "prod", open_ledger(resolve_url(runbook.state, runbook.base_dir)), aws)


@pytest.fixture
def version_traffic(aws: AwsClients) -> Iterator[FunctionTraffic]:
    function = FunctionTraffic(API, 400.0, {"1": 0.005}, 0.005)
    simulator = TrafficSimulator(aws, [function])
    simulator.start()
    time.sleep(1.5)
    yield function
    simulator.stop()
