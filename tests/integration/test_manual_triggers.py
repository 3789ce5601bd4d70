"""Manual triggers: `lastgood rollback ENV --trigger NAME [--severity S]` on the fake kind and a real SQLite
ledger. The trigger is the rollback's recorded reason (ledger event, row, report, `show`, JSON) and its severity
goes through the decision and approvals matrices as a fired trigger's does; a name or severity the file does not
allow exits 2 naming the allowed ones, and nothing is created."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.clock import FakeClock
from lastgood.config.loader import load_runbook
from lastgood.engine.decide import decide
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext

RUNBOOK = """\
app: shop
state: sqlite:///state.db
environments:
  prod: {}
components:
  - {name: api, kind: fake}
policy:
  decision:
    - {severity: medium, method: fix-forward, reason: "minor: patch it"}
  approvals:
    - {severity: critical, roles: [lead], count: 1}
  people:
    - {name: alice, roles: [lead]}
    - {name: dave, roles: []}
MANUAL"""

MANUAL = """\
manual_triggers:
  - {name: user-reports, severity: high, description: "users report failures"}
  - {name: data-corruption, severity: critical}
  - {name: business-decision, severity: medium}
"""


@pytest.fixture
def world() -> Iterator[FakeWorld]:
    with installed(FakeWorld({"api": "v1"})) as w:
        yield w


def project(tmp_path: Path, world: FakeWorld, monkeypatch: pytest.MonkeyPatch, manual: str = MANUAL) -> Path:
    file = tmp_path / "lastgood.yaml"
    file.write_text(RUNBOOK.replace("MANUAL", manual))
    monkeypatch.setenv("LASTGOOD_FILE", str(file))
    monkeypatch.setenv("LASTGOOD_USER", "dave")
    assert main(["release", "record", "prod", "--version", "v1", "-o", "json"]) == 0
    world.set("api", "v2")
    assert main(["release", "record", "prod", "--version", "v2", "-o", "json"]) == 0
    return file


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main([*args, "-o", "json"])
    return code, json.loads(capsys.readouterr().out or "{}")


def rollbacks(tmp_path: Path) -> list[Any]:
    with open_ledger(resolve_url("sqlite:///state.db", tmp_path)).session() as session:
        return list(store.list_rollbacks(session, "shop", "prod", 50))


@pytest.mark.slow
def test_a_manual_trigger_is_the_rollbacks_recorded_reason(tmp_path, world, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project(tmp_path, world, monkeypatch)
    code, out = run(capsys, "rollback", "prod", "--trigger", "user-reports", "--yes")
    assert code == 0 and out["status"] == "succeeded" and world.get("api") == "v1"
    assert out["decision"]["severity"] == "high" and out["decision"]["method"] == "rollback"
    trigger = out["trigger"]
    assert (trigger["trigger"], trigger["severity"], trigger["manual"], trigger["by"]) == (
        "user-reports",
        "high",
        True,
        "dave",
    )
    rollback_id = out["id"]
    [row] = rollbacks(tmp_path)
    assert (row.id, row.severity, row.reason, row.trigger) == (
        rollback_id,
        "high",
        "manual trigger user-reports (high)",
        trigger,
    )
    assert row.detected_at is not None
    code, shown = run(capsys, "show", rollback_id)
    assert code == 0 and shown["trigger"] == trigger and shown["severity"] == "high"
    events = [(e["type"], e["message"]) for e in shown["timeline"]]
    assert ("manual-trigger", "manual trigger user-reports (high), raised by dave") in events
    assert main(["show", rollback_id]) == 0
    text = capsys.readouterr().out
    assert "reason: manual trigger user-reports (high)" in text
    assert "trigger: user-reports: manual trigger, raised by dave: users report failures" in text
    assert main(["report", rollback_id, "--out", str(tmp_path / "reports")]) == 0
    report = (tmp_path / "reports" / f"report-{rollback_id}.md").read_text()
    assert "user-reports" in report and "raised by dave" in report


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "severity", "status", "code"),
    [
        (["--trigger", "business-decision"], "medium", "declined", 3),  # medium: fix forward, as the matrix says
        (["--trigger", "data-corruption"], "critical", "awaiting-approval", 3),  # critical: a lead approves
        (["--trigger", "data-corruption", "--severity", "high"], "high", "succeeded", 0),  # --severity wins
        (["--trigger", "user-reports", "--severity", "medium"], "medium", "declined", 3),
    ],
)
def test_the_triggers_severity_goes_through_the_matrices(  # type: ignore[no-untyped-def]
    tmp_path, world, capsys, monkeypatch, args, severity, status, code
) -> None:
    file = project(tmp_path, world, monkeypatch)
    got, out = run(capsys, "rollback", "prod", *args, "--yes")
    assert got == code, out
    [row] = rollbacks(tmp_path)
    assert (row.severity, row.status, row.trigger["severity"]) == (severity, status, severity)
    # The same lookups a fired trigger of that severity gets (the guard: decide(ctx, fired.severity)).
    runbook = load_runbook(file)
    ctx = EnvContext(
        runbook, "prod", open_ledger(resolve_url(runbook.state, runbook.base_dir)), AwsClients(), FakeClock()
    )
    expected = decide(ctx, severity)
    assert (row.method, row.approvals_needed) == (expected.method, expected.approvals_needed)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--trigger", "user-report"],
            "--trigger: 'user-report' is not a manual trigger of this file (manual_triggers: user-reports (high), "
            "data-corruption (critical), business-decision (medium))",
        ),
        (
            ["--trigger", "user-reports", "--severity", "urgent"],
            "--severity: 'urgent' is not one of critical, high, medium, low",
        ),
    ],
)
def test_an_unknown_trigger_or_severity_exits_2_and_creates_nothing(  # type: ignore[no-untyped-def]
    tmp_path, world, capsys, monkeypatch, args, message
) -> None:
    project(tmp_path, world, monkeypatch)
    capsys.readouterr()
    assert main(["rollback", "prod", *args, "--yes"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Nothing was created" in err
    assert rollbacks(tmp_path) == [] and world.get("api") == "v2"


@pytest.mark.slow
def test_without_a_list_any_name_is_taken_at_the_default_severity(tmp_path, world, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project(tmp_path, world, monkeypatch, manual="")
    assert main(["rollback", "prod", "--trigger", "Not A Name", "--yes"]) == 2
    assert "lowercase letters, digits and -" in capsys.readouterr().err and rollbacks(tmp_path) == []
    code, out = run(capsys, "rollback", "prod", "--trigger", "compliance", "--reason", "audit finding 12", "--yes")
    assert code == 0 and out["trigger"]["trigger"] == "compliance" and out["trigger"]["severity"] == "high"
    [row] = rollbacks(tmp_path)
    assert row.reason == "audit finding 12"  # a reason given is kept; the trigger is recorded beside it


@pytest.mark.parametrize(
    ("manual", "problem"),
    [
        ("manual_triggers:\n  - {name: a}\n  - {name: a}\n", "manual_triggers: manual trigger names must be unique: a"),
        ("manual_triggers:\n  - {name: a, severity: urgent}\n", "manual_triggers[0].severity"),
        ("manual_triggers:\n  - {name: User Reports}\n", "manual_triggers[0].name"),
    ],
)
def test_the_files_list_is_validated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], manual: str, problem: str
) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(RUNBOOK.replace("MANUAL", manual))
    assert main(["validate", "-f", str(file)]) == 2
    assert problem in capsys.readouterr().err
