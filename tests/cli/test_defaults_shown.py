"""Output never shows lastgood's default as if the file had it: the decision's severity and matrix, the targets."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.cli import drill_cmd
from lastgood.cli.app import main
from lastgood.cli.common import stdout
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.service.drill import DrillResult

RUNBOOK = """
app: shop
state: sqlite:///state.db
environments: {prod: {}}
components:
  - {name: api, kind: fake}
"""
POLICY = """
policy:
  default_severity: critical
  decision: [{severity: critical, method: rollback, reason: "critical: roll back now"}]
  targets: {mean_time_to_restore: 10m}
"""


@pytest.fixture
def shop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.setenv("LASTGOOD_USER", "tester")
    monkeypatch.setenv("LASTGOOD_FILE", str(tmp_path / "lastgood.yaml"))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    monkeypatch.setattr(stdout.made, "width", 200)  # the KPI table's cells unwrapped
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK)
    with installed(FakeWorld({"api": "v1"})) as world:
        assert main(["release", "record", "prod", "--version", "v1"]) == 0
        world.set("api", "v2")
        assert main(["release", "record", "prod", "--version", "v2"]) == 0
        yield tmp_path / "lastgood.yaml"


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_a_decision_without_a_policy_says_it_is_the_default(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 14: 'decision: high: rollback (no decision rule matches ...)' with no policy in the file."""
    capsys.readouterr()
    assert main(["rollback", "prod", "--yes"]) == 0
    err = flat(capsys.readouterr().err)
    assert "decision: high (default severity): rollback" in err
    assert "the file has no decision matrix (policy.decision): roll back, the default" in err
    assert main(["kpis"]) == 0
    out = flat(capsys.readouterr().out)
    assert "<= 15m (default)" in out and ">= 95.0% (default)" in out


def test_the_files_own_policy_is_shown_plain(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shop.write_text(shop.read_text() + POLICY)
    capsys.readouterr()
    assert main(["rollback", "prod", "--yes"]) == 0
    err = flat(capsys.readouterr().err)
    assert "decision: critical: rollback (critical: roll back now" in err and "default" not in err
    assert main(["kpis"]) == 0
    out = flat(capsys.readouterr().out)
    assert "<= 10m " in out and "<= 10m (default)" not in out and ">= 95.0% (default)" in out


def test_a_drills_default_targets_are_said_to_be_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 14: 'target 15m' with no policy in the file."""
    targets = {"detect_seconds": 60.0, "restore_seconds": 900.0}
    result = DrillResult("dr-1", "prod", "passed", 20.0, 30.0, targets, "", None)
    drill_cmd.render(result, {"restore"})
    out = flat(capsys.readouterr().out)
    assert "time to restore: 30s (target 15m, the default: policy.targets does not set it)" in out
    assert "time to detect: 20s (target 1m)" in out
