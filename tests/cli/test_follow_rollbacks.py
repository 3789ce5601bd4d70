"""status [ENV], show ID (any id) and watch ID for rollbacks, on the moto server over HTTP."""

from __future__ import annotations

import itertools
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.testing import shop

POLICY = """
policy:
  approvals:
    - {severity: high, environments: [prod], roles: [senior], count: 1}
  people:
    - {name: alice, roles: [senior]}
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code, out, err = run(capsys, *args, "-o", "json")
    assert out, err
    return code, json.loads(out)


@pytest.fixture
def two_releases(shop_dir: Path, aws: AwsClients, capsys, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    """prod at v2 (bad), v1 before it; the policy asks a senior to approve a high-severity rollback in prod."""
    monkeypatch.chdir(shop_dir)
    with (shop_dir / "lastgood.yaml").open("a") as runbook:
        runbook.write(POLICY)
    assert run(capsys, "release", "record", "prod", "--version", "v1")[0] == 0
    version = shop.publish_new_version(aws, "shop-api-prod", "v2")
    shop.shift_alias(aws, "shop-api-prod", "1", version, 1.0)
    assert run(capsys, "release", "record", "prod", "--version", "v2")[0] == 0
    return shop_dir


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def lastgood(*args: str) -> list[str]:
    return [sys.executable, "-m", "lastgood", *args]


def awaiting_approval(capsys: pytest.CaptureFixture[str]) -> str:
    """A rollback of prod that awaits a senior's approval (exit 3: not run); its id."""
    code, out = run_json(capsys, "rollback", "prod", "--severity", "high", "--yes")
    assert code == 3 and "awaits 1 approval(s) from: senior" in out["message"], out
    return str(out["message"].split()[1])


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_status_lists_every_environment_and_what_awaits_approval(two_releases: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    rollback_id = awaiting_approval(capsys)
    code, text, _err = run(capsys, "status")
    assert code == 0
    assert "shop/staging" in text and "shop/prod" in text  # no ENV: every environment of the file
    assert f"{rollback_id} v2 -> v1: awaiting-approval" in text and f"lastgood approve {rollback_id}" in text
    code, every = run_json(capsys, "status")
    assert [e["env"] for e in every] == ["staging", "prod"]
    prod = every[1]
    assert [r["id"] for r in prod["rollbacks"]] == [rollback_id] and prod["deployments"] == []
    assert every[0]["rollbacks"] == [] and every[0]["live"] is None
    code, text, _err = run(capsys, "status", "staging")
    assert code == 0 and "nothing running, paused or awaiting approval" in text


@pytest.mark.slow  # a Python process, server or browser of its own
def test_watch_follows_a_rollback_from_approval_to_its_end(  # type: ignore[no-untyped-def]
    two_releases: Path, aws: AwsClients, capsys, monkeypatch, processes
) -> None:
    rollback_id = awaiting_approval(capsys)
    watcher = subprocess.Popen(
        lastgood("watch", rollback_id, "--interval", "0.2s"), stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    processes.append(watcher)
    assert watcher.stdout is not None
    first = json.loads(watcher.stdout.readline())  # piped: JSON lines, the first reading at once
    assert first["id"] == rollback_id and first["status"] == "awaiting-approval" and not first["done"]
    monkeypatch.setenv("LASTGOOD_USER", "alice")
    assert run(capsys, "approve", rollback_id, "-o", "json")[0] == 0
    rest, _ = watcher.communicate(timeout=60)
    lines = [first, *(json.loads(line) for line in rest.splitlines())]
    assert watcher.returncode == 0  # the rollback's own exit code: succeeded
    assert lines[-1]["status"] == "succeeded" and lines[-1]["done"] and lines[-1]["exit_code"] == 0
    assert all(a != b for a, b in itertools.pairwise(lines))  # one object per change, no repeats
    assert {s["name"]: s["status"] for s in lines[-1]["steps"]}["api"] == "succeeded"
    assert len(lines) >= 2


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_show_takes_a_rollback_a_release_or_says_what_an_id_is_not(two_releases: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out = run_json(capsys, "rollback", "prod", "--severity", "critical", "--yes")
    assert code == 0
    rollback_id = out["id"]
    code, detail = run_json(capsys, "show", rollback_id)
    assert code == 0 and detail["id"] == rollback_id and detail["status"] == "succeeded"
    code, release = run_json(capsys, "show", "v1")
    assert code == 0 and release["env"] == "prod" and release["release"]["live"]
    assert release["rollbacks"] == [rollback_id] and "api (lambda-alias)" in release["components"]
    code, text, _err = run(capsys, "show", "v2")
    assert code == 0 and "marked bad" in text
    code, _out, err = run(capsys, "show", "dp-0000000000")
    assert code == 2 and "no deployment 'dp-0000000000'" in err
    code, _out, err = run(capsys, "show", "nonsense")
    assert code == 2 and "is not a rollback (rb-...), a deployment (dp-...) or a release" in err
    code, _out, err = run(capsys, "watch", "v1")
    assert code == 2 and "is a release: it has no progress to follow" in err


@pytest.mark.slow  # a Python process, server or browser of its own
def test_watch_in_a_terminal_draws_a_table_not_json(two_releases: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    _code, out = run_json(capsys, "rollback", "prod", "--severity", "critical", "--yes")
    leader, follower = pty.openpty()
    env = dict(os.environ, COLUMNS="120", LINES="40", TERM="xterm")
    process = subprocess.Popen(lastgood("watch", out["id"]), stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    text = _read_all(leader, process)
    assert process.returncode == 0
    assert "rollback " + out["id"] in text and "succeeded" in text and "ended, exit 0" in text
    assert "\x1b[" in text and '"status"' not in text  # drawn with escape codes, not printed as JSON


def _read_all(fd: int, process: subprocess.Popen[bytes]) -> str:
    chunks, deadline = [], time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the other end closed: the process is gone
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=10)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")
