"""The layer rule of docs/ARCHITECTURE.md, checked by import-linter on the installed package."""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.slow  # real processes, servers and waits: not in the everyday subset


def test_layers_are_kept(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True) == 0
