"""The code stays typed and lint-clean (mypy --strict on src, ruff on everything); tests use the shipped fakes."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    result = run("ruff", "check", "src", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean_on_src() -> None:
    result = run("mypy", "src")
    assert result.returncode == 0, result.stdout + result.stderr


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update([node.module, *(f"{node.module}.{alias.name}" for alias in node.names)])
    return names


def test_tests_and_bench_use_the_shipped_fakes_not_the_demo() -> None:
    """Fixtures live in lastgood.testing; only the demo's own tests import lastgood.demo."""
    allowed = {ROOT / "tests" / "integration" / "test_demo.py"}
    files = [p for folder in ("tests", "bench") for p in sorted((ROOT / folder).rglob("*.py")) if p not in allowed]
    offenders = [
        str(p.relative_to(ROOT))
        for p in files
        if any(name == "lastgood.demo" or name.startswith("lastgood.demo.") for name in _imported_modules(p))
    ]
    assert files and not offenders, offenders
