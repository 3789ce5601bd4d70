"""The deployment page in a real browser (Debian's Chromium): a progressive deployment of the shop's api in staging
started through the API with the canary judge on and per-version traffic; the page shows the traffic split over
time and the judge's evidence per metric against its threshold; Promote and Abort from its buttons, the alias on
moto checked after each; screenshots at 1280 and 390 px."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import poll
from playwright.sync_api import Browser, expect
from test_dashboard_browser import WIDTHS, assert_not_blank, browser, screenshot, signed_in

from lastgood.aws.clients import AwsClients
from lastgood.server.state import ServerState
from lastgood.service import releases
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint
from lastgood.testing.traffic import FunctionTraffic, TrafficSimulator
from server_fixture import LiveServer, Users, add_users, make_state

__all__ = ["browser"]
API = "shop-api-staging"
STAGING = "/api/v1/apps/shop/environments/staging"


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


@pytest.fixture
def server_state(aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path) -> ServerState:
    shop.create_shop(aws, "staging")
    text = shop.runbook_text(aws_env.url, "sqlite:///state.db", period="1s", for_="3s")
    (tmp_path / "lastgood.yaml").write_text(text + shop.canary_text(period="1s", warmup="1s"))
    state = make_state(tmp_path)
    releases.record(state.apps.env_context("shop", "staging", "setup"), "v1")
    return state


@pytest.fixture
def traffic(aws: AwsClients) -> Iterator[FunctionTraffic]:
    function = FunctionTraffic(API, 400.0, {"1": 0.005}, 0.005)
    simulator = TrafficSimulator(aws, [function])
    simulator.start()
    yield function
    simulator.stop()


def alias(aws: AwsClients) -> tuple[str, dict[str, Any]]:
    live = aws.client("lambda").get_alias(FunctionName=API, Name="live")
    return str(live["FunctionVersion"]), dict((live.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def start(server: LiveServer, users: Users, version: str) -> str:
    body = {"component": "api", "version": version, "steps": [10, 50], "pause": "3s"}
    answer = httpx.post(f"{server.url}{STAGING}/deployments", json=body, headers=users.headers("operator"), timeout=60)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def decisions(server: LiveServer, users: Users, deployment_id: str) -> list[dict[str, Any]]:
    url = f"{server.url}/api/v1/deployments/{deployment_id}"
    found: list[dict[str, Any]] = httpx.get(url, headers=users.headers("viewer"), timeout=30).json()["decisions"]
    return found


def test_the_deployment_page_shows_traffic_and_evidence_and_promotes_and_aborts(
    live_server: LiveServer, browser: Browser, aws: AwsClients, traffic: FunctionTraffic
) -> None:
    users = add_users(live_server.state)
    version = shop.publish_new_version(aws, API, "v2")
    deployment_id = start(live_server, users, version)
    assert alias(aws) == ("1", {version: 0.1})
    poll(lambda: decisions(live_server, users, deployment_id), lambda d: any(x.get("canary") for x in d), timeout=30)
    # Paused, so that the 3 s steps cannot run out while a loaded machine takes the screenshots; promote ends a
    # paused deployment as it does a running one.
    paused = httpx.post(
        f"{live_server.url}/api/v1/deployments/{deployment_id}/pause", headers=users.headers("operator"), timeout=60
    )
    assert paused.status_code == 200 and paused.json()["status"] == "paused", paused.text

    page = signed_in(browser, live_server, users.tokens["operator"])
    page.goto(f"{live_server.url}/deployments/{deployment_id}")
    expect(page.locator("h1")).to_contain_text(deployment_id)
    expect(page.locator("svg.chart polyline.series")).to_have_count(1)
    assert page.locator("svg.chart circle").count() >= 1
    evidence = page.locator("table.stack tbody tr", has_text="canary errors")
    expect(evidence.first).to_contain_text("rolls back at 4.61")
    expect(page.locator("table.stack tbody tr", has_text="api-errors").first).to_contain_text("5%")
    for width, (w, h) in WIDTHS.items():
        page.set_viewport_size({"width": w, "height": h})
        assert_not_blank(screenshot(page, f"deployment-{w}"))
        assert width
    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("form[action$='/promote'] button")
    expect(page.locator("h1")).to_contain_text("promoted", timeout=30_000)
    assert alias(aws) == (version, {})

    third = shop.publish_new_version(aws, API, "v3")
    second_id = start(live_server, users, third)
    assert alias(aws) == (version, {third: 0.1})
    page.goto(f"{live_server.url}/deployments/{second_id}")
    page.click("form[action$='/abort'] button")
    expect(page.locator("h1")).to_contain_text("aborted", timeout=30_000)
    assert alias(aws) == (version, {})
