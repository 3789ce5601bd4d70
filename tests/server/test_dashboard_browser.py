"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) against the server on a real port:
sign in, see the environments, roll back prod with its typed phrase and watch the steps finish without a
reload, the two-person rule on approvals, a denial, the audit page; screenshots at 1280 and 390 px."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import poll
from dashboard_helpers import record, two_releases, write_approval_runbook
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from lastgood.server.state import ServerState
from lastgood.service.status import environment_status
from server_fixture import LiveServer, Users, add_users, make_state

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WIDTHS = {"wide": (1280, 900), "narrow": (390, 844)}


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


@pytest.fixture
def server_state(shop_dir: Path) -> ServerState:
    """The shop, with a policy that wants two leads to approve a high-severity rollback of prod."""
    return make_state(write_approval_runbook(shop_dir))


@pytest.fixture
def people(server_state: ServerState) -> Users:
    return add_users(server_state, {"rita": "approver"})


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def signed_in(browser: Browser, server: LiveServer, token: str, width: str = "wide") -> Page:
    """A page of a fresh browser context (its own cookies), signed in through the login form."""
    w, h = WIDTHS[width]
    page = browser.new_context(viewport={"width": w, "height": h}).new_page()
    page.goto(server.url + "/")
    expect(page).to_have_url(server.url + "/login?next=/")
    page.fill("#token", token)
    page.click("button[type=submit]")
    expect(page).to_have_url(server.url + "/")
    return page


def request_rollback(page: Page, server: LiveServer, reason: str, severity: str) -> str:
    page.goto(server.url + "/apps/shop/environments/prod")
    page.fill("#reason", reason)
    page.select_option("#severity", severity)
    page.fill("#confirm", "rollback-production")
    page.click("#rollback-form button[type=submit]")
    page.wait_for_url("**/rollbacks/rb-*", timeout=60_000)  # the server answers within its own 60 s
    return page.url.rsplit("/", 1)[1]


def released(state: ServerState) -> bool:
    return environment_status(state.apps.env_context("shop", "prod", "test")).holder is None


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"dashboard-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_not_blank(path: Path) -> None:
    """A rendered page has text, badges and lines: many colours, none covering nearly everything."""
    with Image.open(path) as image:
        pixels = image.convert("RGB")
        colours = pixels.getcolors(maxcolors=1 << 20)
        assert colours is not None
        top = max(count for count, _ in colours)
        assert len(colours) > 50, f"{path.name}: only {len(colours)} colours"
        assert top < 0.97 * pixels.width * pixels.height, f"{path.name}: one colour covers the page"


def test_sign_in_roll_back_prod_and_watch_its_steps_finish_live(
    live_server: LiveServer, browser: Browser, people: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_releases(live_server.state)
    monkeypatch.setenv("LASTGOOD_TEST_STEP_DELAY", "1.5")  # each step lasts long enough to be seen running
    page = signed_in(browser, live_server, people.tokens["operator"])
    expect(page.locator("tr.env-row")).to_have_count(2)
    expect(page.locator("tr.env-row[data-env=prod]")).to_contain_text("v2")

    rollback_id = request_rollback(page, live_server, "v2 is failing", "critical")
    page.evaluate("window.notReloaded = true")
    statuses = page.eval_on_selector_all(".step-status", "cells => cells.map(c => c.dataset.status)")
    assert statuses and any(s not in ("succeeded", "unchanged") for s in statuses), statuses
    expect(page.locator("#rollback-status")).to_have_attribute("data-status", "succeeded", timeout=30_000)
    finished = page.eval_on_selector_all(".step-status", "cells => cells.map(c => c.dataset.status)")
    assert all(s in ("succeeded", "unchanged") for s in finished), finished
    assert page.evaluate("window.notReloaded") is True  # the rows changed in place, from the event stream
    expect(page.locator("#timeline li.new").first).to_be_visible()

    page.goto(live_server.url + "/")
    expect(page.locator("tr.env-row[data-env=prod]")).to_contain_text(rollback_id)
    for width in WIDTHS:
        shot = signed_in(browser, live_server, people.tokens["viewer"], width)
        for name, path in (
            ("overview", "/"),
            ("environment", "/apps/shop/environments/prod"),
            ("rollback", f"/rollbacks/{rollback_id}"),
        ):
            shot.goto(live_server.url + path)
            shot.wait_for_load_state("networkidle") if name != "rollback" else None
            overflow = shot.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{name} at {width}: {overflow}px wider than the screen"
            assert_not_blank(screenshot(shot, f"{name}-{WIDTHS[width][0]}"))
        expect(shot.locator("#rollback-form")).to_have_count(0)  # a viewer gets no rollback button


def test_the_requester_cannot_approve_two_others_can_and_a_denial_sticks(
    live_server: LiveServer, browser: Browser, people: Users
) -> None:
    two_releases(live_server.state)
    rita = signed_in(browser, live_server, people.tokens["rita"])
    rollback_id = request_rollback(rita, live_server, "v2 is slow", "high")
    expect(rita.locator("#rollback-status")).to_have_attribute("data-status", "awaiting-approval")
    rita.click("#approve-form button")
    expect(rita.locator("#error-message")).to_contain_text("rita requested this rollback and two people must approve")

    abe = signed_in(browser, live_server, people.tokens["approver"])
    abe.goto(f"{live_server.url}/rollbacks/{rollback_id}")
    abe.click("#approve-form button")
    expect(abe.locator("#approvals")).to_contain_text("1 of 2 needed")
    ada = signed_in(browser, live_server, people.tokens["admin"])
    ada.goto(f"{live_server.url}/rollbacks/{rollback_id}")
    ada.click("#approve-form button")
    expect(ada.locator("#rollback-status")).to_have_attribute("data-status", "succeeded", timeout=30_000)
    # the rollback's job lets go of prod once its report and notifications are out, a moment after "succeeded"
    assert poll(lambda: released(live_server.state), bool, timeout=60), "prod is still held"

    record(live_server.state, "v3")
    denied_id = request_rollback(rita, live_server, "v3 looks odd", "high")
    abe.goto(f"{live_server.url}/rollbacks/{denied_id}")
    abe.fill("#deny-form input[name=reason]", "a false alarm: fix forward")
    abe.click("#deny-form button")
    expect(abe.locator("#rollback-status")).to_have_attribute("data-status", "denied")
    expect(abe.locator("#approve-form")).to_have_count(0)

    abe.goto(live_server.url + "/audit")
    expect(abe.locator("#audit-verify-shop")).to_contain_text("verifies")
    log = abe.locator("#audit-shop")
    expect(log).to_contain_text("approved by abe (1 of 2)")
    expect(log).to_contain_text("a false alarm: fix forward")
    for width, (w, h) in WIDTHS.items():
        abe.set_viewport_size({"width": w, "height": h})
        assert_not_blank(screenshot(abe, f"audit-{w}"))
        assert width
