"""Markers from what a test uses, so that they cannot drift: `aws` (moto's server, the `endpoint` fixture),
`postgres` (the PostgreSQL server: `postgres_url`, `pg_database_url`, or a parameter's postgresql case such as
`ledger_url`'s) and `browser` (Chromium
through Playwright's `browser` fixture; a test that starts Chromium itself carries the marker by hand).
`slow` is set by hand, on the test or on its module (`pytestmark`), and on every `postgres` test (a server):
`-m "not slow"` is the everyday subset.
The markers are registered in pyproject.toml ([tool.pytest.ini_options] markers).

The `slow` marker is kept honest: a test without it that starts a Python interpreter (`lastgood` itself), a
server or a browser (HEAVY, a subprocess in its body or in a function-scoped fixture) fails and says so; each
costs a second or more, even when a session- or module-scoped fixture starts it once per worker (the PostgreSQL
cluster, Prometheus). Shell commands (`sh`, `cat`: milliseconds) are allowed."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

HEAVY = re.compile(r"(python[0-9.]*|lastgood|initdb|pg_ctl|postgres|prometheus|chromium|chrome|node|docker|uvicorn)")
_started: list[str] | None = None  # the processes the running not-slow test started (None: not watching)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "endpoint" in names:
            item.add_marker(pytest.mark.aws)
        if names & {"postgres_url", "pg_database_url"} or "postgresql" in params.values():
            item.add_marker(pytest.mark.postgres)
            item.add_marker(pytest.mark.slow)  # a server each worker starts (initdb: seconds), a database per test
        if "browser" in names:
            item.add_marker(pytest.mark.browser)
    # The slow tests first (in file order), so that the longest ones start early and the many short ones fill the
    # workers' ends (with --dist worksteal an idle worker takes half of another's queue).
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


_execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]


def _watched_execute_child(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> Any:
    if _started is not None:
        words = [str(a) for a in args] if isinstance(args, list | tuple) else shlex.split(str(args))
        if _heavy(words):
            _started.append(shlex.join(words))
    return _execute_child(self, args, *rest, **kwargs)


subprocess.Popen._execute_child = _watched_execute_child  # type: ignore[attr-defined]


def _heavy(words: list[str]) -> bool:
    """The program is a heavy one, or a shell's `-c` script starts with one (`file -b .../python3` is not)."""
    if not words:
        return False
    program = os.path.basename(words[0])
    if program in {"sh", "bash"} and "-c" in words[1:-1]:
        script = words[words.index("-c") + 1].split()
        return bool(script) and HEAVY.fullmatch(os.path.basename(script[0])) is not None
    return HEAVY.fullmatch(program) is not None


@contextmanager
def _watching(item: pytest.Item) -> Iterator[None]:
    global _started
    previous, _started = _started, (None if item.get_closest_marker("slow") is not None else [])
    try:
        yield
    finally:
        started, _started = _started, previous
    if started:
        pytest.fail(
            f"{item.nodeid} is not marked slow but starts a process: {started[0][:200]}"
            " (mark it @pytest.mark.slow, or run it in-process)",
            pytrace=False,
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    with _watching(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    with _watching(item):
        return (yield)
