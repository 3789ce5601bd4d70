"""Start-up cost: a command imports only what it uses (issue 13, goal 1).

Each case runs lastgood's entry point in a fresh interpreter and reads sys.modules as it exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "distro-nation.yaml"  # Lambda, SSM, secrets, SQL; no templates
HEAVY = {"boto3", "botocore", "s3transfer", "sqlalchemy", "alembic", "numpy", "scipy", "fastapi", "jinja2"}
NOT_FOR_VERSION = HEAVY | {"rich", "pydantic", "yaml"}


def imported(*args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The modules loaded when `lastgood ARGS` returns (sys.modules: -X importtime misses importlib's imports)."""
    with tempfile.TemporaryDirectory() as scratch:
        listing = Path(scratch) / "modules.json"
        code = (  # read as the command returns: the process ends in an exit handler of its own (cli/entry.py)
            "import json, sys\n"
            f"sys.argv = ['lastgood', *{list(args)!r}]\n"
            "from lastgood.cli.entry import entrypoint\n"
            "try:\n"
            "    entrypoint()\n"
            "finally:\n"
            f"    open({str(listing)!r}, 'w').write(json.dumps(sorted(sys.modules)))\n"
        )
        env = {**os.environ, "LASTGOOD_FILE": ""}
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        return set(json.loads(listing.read_text())), done


def top_level(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names}


@pytest.mark.slow  # a Python process, server or browser of its own
def test_version_imports_nothing_heavy() -> None:
    names, done = imported("--version")
    assert done.returncode == 0 and done.stdout.strip().startswith("lastgood ")
    assert top_level(names) & NOT_FOR_VERSION == set()


@pytest.mark.slow  # a Python process, server or browser of its own
def test_help_lists_every_command_without_importing_one() -> None:
    from lastgood.cli.app import COMMANDS

    names, done = imported("--help")
    assert done.returncode == 0
    listed = {line.split()[0] for line in done.stdout.split("Commands:", 1)[1].splitlines() if line.strip()}
    assert listed == set(COMMANDS)
    assert {entry.module for entry in COMMANDS.values()} & names == set()
    assert top_level(names) & HEAVY == set()


@pytest.mark.slow
def test_validate_imports_no_aws_ledger_or_numpy() -> None:
    names, done = imported("validate", "-f", str(EXAMPLE))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ok: distro-nation" in done.stdout
    assert top_level(names) & HEAVY == set()
    assert "lastgood.cli.runbook_cmd" in names and "lastgood.cli.rollback_cmd" not in names
    assert "importlib.metadata" not in names  # pydantic's plugin scan is skipped (cli/entry.py)


@pytest.mark.slow
def test_a_named_pydantic_plugin_switch_keeps_pydantic_s_own_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "some-plugin")
    names, done = imported("validate", "-f", str(EXAMPLE))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "importlib.metadata" in names


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--version"], ["validate", "-f", str(EXAMPLE)]])
def test_the_console_script_agrees_with_python_m(args: list[str]) -> None:
    script = Path(sys.executable).with_name("lastgood")
    via_script = subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120)
    via_module = subprocess.run([sys.executable, "-m", "lastgood", *args], capture_output=True, text=True, timeout=120)
    assert via_script.returncode == via_module.returncode == 0
    assert via_script.stdout == via_module.stdout
