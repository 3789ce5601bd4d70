"""An argument that is not UTF-8 (bytes that Python keeps as lone surrogates, as from `lastgood show $'\\xff'`) is
bad input with exit 2, whatever the command: it used to reach SQLite, which raised UnicodeEncodeError (found by
tests/fuzz/test_hostile_fuzz.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lastgood.cli.app import main

RUNBOOK = "app: shop\nstate: sqlite:///state.db\nenvironments: {prod: {}}\ncomponents: []\n"


@pytest.mark.parametrize("command", [["show", "\ud800"], ["release", "list", "prod", "--limit", "\udcff"]])
def test_a_lone_surrogate_is_bad_input_and_changes_nothing(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK)
    assert main([*command, "--file", str(tmp_path / "lastgood.yaml")]) == 2
    err = capsys.readouterr().err
    assert "is not valid UTF-8 text" in err and "nothing was changed" in err
    assert not (tmp_path / "state.db").exists()


def test_as_json_the_refusal_is_a_json_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK)
    assert main(["show", "\ud800", "--file", str(tmp_path / "lastgood.yaml"), "-o", "json"]) == 2
    payload = json.loads(capsys.readouterr().out)
    assert payload["error"] == "BadInput" and "argument 2" in payload["message"]


@pytest.mark.slow  # a Python process of its own
def test_undecodable_bytes_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK)
    args = [os.fsencode(sys.executable), b"-m", b"lastgood", b"show", b"r\xff1", b"--file", b"lastgood.yaml"]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert b"is not valid UTF-8 text" in done.stderr and b"Traceback" not in done.stderr
