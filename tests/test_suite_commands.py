"""CI runs the README's test command, and the everyday subset the README names selects what it says."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^\./dev/setup && (.+)$", readme, flags=re.MULTILINE)
    assert commands, "README.md names no `./dev/setup && ...` test command"
    ci = (ROOT / ".ci" / "run").read_text()
    assert f"./dev/setup && {commands[0]}" in ci
    assert "-n 2" in commands[0]


def test_the_readme_names_the_everyday_subset() -> None:
    assert '.venv/bin/python -m pytest -q -n 2 -m "not slow"' in (ROOT / "README.md").read_text()
