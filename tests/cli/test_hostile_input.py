"""Issue 14's hostile inputs: each is exit 2 with a message naming what and where, within 2 s, nothing written."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from lastgood.cli.app import main
from lastgood.testing import shop

GOOD = shop.runbook_text("http://127.0.0.1:9", "sqlite:///state.db")
ENDPOINT = 'endpoint_url: "http://127.0.0.1:9"'


def laughs() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        name, previous = chr(97 + level), chr(96 + level)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


CASES = {
    "deep nesting": ("[" * 5000 + "]" * 5000, "nested deeper than 64 levels (5000 brackets open at once)"),
    "billion laughs": (laughs(), "anchors and aliases expand to more than 100,000 values"),
    "self alias": ("a: &a [*a]\n", "an alias refers to the value that contains it"),
    "5,000 digits": (GOOD + "x: " + "9" * 5000 + "\n", "a number longer than 40 characters"),
    "1 and 400 zeros": (GOOD.replace("for: 5m", "for: 1" + "0" * 400, 1), "a number longer than 40 characters"),
    "IPv6 bracket": (
        GOOD.replace(ENDPOINT, 'endpoint_url: "http://[::1"', 1),
        "environments.staging.aws.endpoint_url: expected an http:// or https:// URL",
    ),
    "non-ASCII host": (
        GOOD.replace(ENDPOINT, 'endpoint_url: "http://exämple.com"', 1),
        "environments.staging.aws.endpoint_url: expected an http:// or https:// URL",
    ),
    "foo://": (GOOD.replace("state: sqlite:///state.db", "state: foo://bar"), "state: database 'foo' is not supported"),
    "mysql://": (
        GOOD.replace("state: sqlite:///state.db", "state: mysql://u:p@db/x"),
        "state: database 'mysql' is not supported: expected sqlite:///PATH",
    ),
    "bad date": (GOOD + "when: 2026-02-30\n", "not a valid date or time"),
    "huge duration": (GOOD.replace("for: 5m", "for: 99999999999d", 1), "triggers[0].for: expected a duration"),
}


def run(args: list[str]) -> tuple[int, str, float]:
    """The exit code, the output, and the CPU seconds used (wall time on a loaded 2-core CI machine says little)."""
    out = io.StringIO()
    started = time.process_time()
    with redirect_stdout(out), redirect_stderr(out):
        code = main(args)
    return code, out.getvalue(), time.process_time() - started


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LASTGOOD_USER", "tester")
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("command", [["validate"], ["release", "record", "prod", "--version", "v1"]])
def test_hostile_file(tmp_path: Path, name: str, command: list[str]) -> None:
    text, expected = CASES[name]
    (tmp_path / "lastgood.yaml").write_text(text)
    code, output, seconds = run([*command, "--file", str(tmp_path / "lastgood.yaml")])
    assert code == 2, output
    assert expected in output
    assert "Traceback" not in output
    assert seconds < 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lastgood.yaml"]  # no ledger created


def test_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "lastgood.yaml").write_bytes(GOOD.encode().replace(b"app: shop", b"app: sh\xffop"))
    code, output, _ = run(["validate", "--file", str(tmp_path / "lastgood.yaml")])
    assert code == 2
    assert "line 1, column 8: not UTF-8 text (byte 0xff); save the file as UTF-8" in output


def test_kpis_since_far_back(tmp_path: Path) -> None:
    (tmp_path / "lastgood.yaml").write_text(GOOD)
    code, output, _ = run(["kpis", "--since", "99999999999d", "--file", str(tmp_path / "lastgood.yaml")])
    assert code == 2
    assert "--since: expected a duration such as '30s', '5m' or '1h' (units s, m, h, d; at most 3650d)" in output


def test_state_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lastgood.yaml").write_text(GOOD)
    monkeypatch.setenv("LASTGOOD_STATE", "mysql://u:p@db/x")
    code, output, _ = run(["release", "list", "prod", "--file", str(tmp_path / "lastgood.yaml")])
    assert code == 2
    assert "LASTGOOD_STATE: database 'mysql' is not supported" in output


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--endpoint-url", "http://[::1", "--endpoint-url: expected an http:// or https:// URL"),
        ("--region", "us east 1", "--region: expected an AWS region such as us-east-1"),
    ],
)
def test_bad_global_flags(tmp_path: Path, flag: str, value: str, expected: str) -> None:
    (tmp_path / "lastgood.yaml").write_text(GOOD)
    code, output, _ = run([flag, value, "validate", "--file", str(tmp_path / "lastgood.yaml")])
    assert code == 2
    assert expected in output


@pytest.mark.slow  # a Python process, server or browser of its own
def test_dev_zero_is_refused_in_a_process(tmp_path: Path) -> None:
    """`-f /dev/zero` used to read forever; a real process, with a timeout, so a hang fails instead of stalling."""
    env = {**os.environ, "LASTGOOD_USER": "tester"}
    done = subprocess.run(
        [sys.executable, "-m", "lastgood", "validate", "-f", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr
    assert "the file is larger than 2 MiB: not a runbook" in done.stderr


@pytest.mark.slow  # a Python process, server or browser of its own
def test_billion_laughs_in_a_process(tmp_path: Path) -> None:
    (tmp_path / "lastgood.yaml").write_text(laughs())
    done = subprocess.run(
        [sys.executable, "-m", "lastgood", "validate"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 2
    assert "anchors and aliases expand to more than 100,000 values" in done.stderr


def test_nesting_under_the_bracket_count_meets_the_parser_limit(tmp_path: Path) -> None:
    (tmp_path / "lastgood.yaml").write_text("[" * 100 + "]" * 100)
    code, output, _ = run(["validate", "--file", str(tmp_path / "lastgood.yaml")])
    assert code == 2
    assert "line 1, column 65: nested deeper than 64 levels" in output
