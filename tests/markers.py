"""Markers from what a test uses, so that they cannot drift: `aws` (moto's server, the `endpoint` fixture),
`postgres` (the PostgreSQL server: `postgres_url`, or `ledger_url`'s postgresql case) and `browser` (Chromium
through Playwright's `browser` fixture; a test that starts Chromium itself carries the marker by hand).
`slow` is set by hand, on the test or on its module (`pytestmark`): `-m "not slow"` is the everyday subset.
The markers are registered in pyproject.toml ([tool.pytest.ini_options] markers)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "endpoint" in names:
            item.add_marker(pytest.mark.aws)
        if "postgres_url" in names or params.get("ledger_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)
        if "browser" in names:
            item.add_marker(pytest.mark.browser)
