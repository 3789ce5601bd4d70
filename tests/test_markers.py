"""The `slow` marker is honest: a test without it that starts a Python process fails (tests/markers.py)."""

from __future__ import annotations

import pytest

INNER = """
import subprocess
import sys

import pytest


def python() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


@pytest.fixture(scope="session")
def shared_server() -> None:
    python()


@pytest.fixture
def own_server() -> None:
    python()


def test_starts_a_process() -> None:
    python()


def test_starts_one_in_its_fixture(own_server: None) -> None:
    pass


@pytest.mark.slow
def test_marked_slow() -> None:
    python()


def test_uses_a_shared_server(shared_server: None) -> None:
    pass


def test_runs_a_shell_command() -> None:
    subprocess.run(["sh", "-c", "true"], check=True)
    subprocess.run(["sh", "-c", "true", sys.executable], check=True)  # python as an argument, not the program
"""


def test_a_test_not_marked_slow_that_starts_python_fails(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("pytest_plugins = ['markers']")
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=1, errors=2)
    result.stdout.fnmatch_lines(["*test_starts_one_in_its_fixture is not marked slow but starts a process*"])
    result.stdout.fnmatch_lines(["*test_uses_a_shared_server is not marked slow but starts a process*"])
    result.stdout.fnmatch_lines(["*test_starts_a_process is not marked slow but starts a process: *python* -c pass*"])
