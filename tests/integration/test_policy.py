"""The runbooks' matrices as the example files write them, and the approval flow they drive.

Matrix rows: every row of 003's decision matrix, 000's authorization matrix and 004's "when not to roll back",
asserted through the same lookups `lastgood rollback` and the guard use. Flows: the fake kind and a real SQLite
ledger, through the CLI, with identities from LASTGOOD_USER."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.clock import FakeClock
from lastgood.config.loader import load_runbook
from lastgood.engine.approvals import sign_token
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.service.guard import guard_for
from lastgood.sources.base import Series, SeriesRequest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
HOUR = 3600.0


@pytest.fixture(autouse=True)
def _no_example_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DN_ENGINEERING_LEAD", "DN_SENIOR_DEV_1", "DN_SENIOR_DEV_2", "DN_TEAM_LEAD"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("severity", "age_hours", "method"),
    [
        ("critical", 0.5, "rollback"),  # Critical, < 1 hour: immediate CDK rollback
        ("critical", 2, "restore"),  # Critical, > 1 hour: manual infrastructure restoration
        ("high", 3, "rollback"),  # High, < 4 hours: CDK rollback
        ("high", 5, "planned-rollback"),  # High, > 4 hours: planned rollback
        ("medium", 0.1, "fix-forward"),  # Medium, any: fix forward
        ("medium", 48, "fix-forward"),
    ],
)
def test_iracing_decision_matrix(severity: str, age_hours: float, method: str) -> None:
    policy = load_runbook(EXAMPLES / "iracing-drivers-stats.yaml").policy
    assert policy.method_for(severity, age_hours * HOUR, "prod")[0] == method


@pytest.mark.parametrize(
    ("severity", "env", "roles", "count", "automation"),
    [
        ("critical", "production", ["engineering-lead"], 1, True),  # Critical / any service / engineering lead
        ("high", "production", ["senior-developer"], 2, False),  # High / production / senior developer + approval
        ("medium", "production", ["team-lead"], 1, False),  # Medium / production / team lead
    ],
)
def test_distro_nation_authorization_matrix(
    severity: str, env: str, roles: list[str], count: int, automation: bool
) -> None:
    rule = load_runbook(EXAMPLES / "distro-nation.yaml").policy.approval_for(severity, env)
    assert rule is not None and (rule.roles, rule.count, rule.automation) == (roles, count, automation)


def test_distro_nation_targets_are_the_seeds_kpis() -> None:
    targets = load_runbook(EXAMPLES / "distro-nation.yaml").policy.targets
    assert (targets.mean_time_to_restore, targets.success_rate) == (900.0, 0.95)
    assert (targets.false_rollback_rate, targets.data_loss_incidents) == (0.05, 0)


@pytest.mark.parametrize(
    ("severity", "env", "method"),
    [
        ("critical", "staging", "fix-forward"),  # non-production: fix forward
        ("critical", "dev", "fix-forward"),
        ("low", "prod", "fix-forward"),  # minor bugs, cosmetic issues
        ("medium", "prod", "fix-forward"),  # a quick patch deployment
        ("critical", "prod", "rollback"),  # API unavailable, data corruption, ...
        ("high", "prod", "rollback"),  # > 10% errors, > 5x latency
    ],
)
def test_cira_when_not_to_roll_back(severity: str, env: str, method: str) -> None:
    policy = load_runbook(EXAMPLES / "cira-invoice.yaml").policy
    assert policy.method_for(severity, 600, env)[0] == method


RUNBOOK = """
app: shop
state: sqlite:///state.db
environments:
  prod: {protected: true}
  staging: {}
components:
  - {name: api, kind: fake}
policy:
  decision:
    - {severity: medium, method: fix-forward, reason: "minor: patch it"}
    - {severity: low, within: 1h, method: planned-rollback}
  approvals:
    - {severity: critical, roles: [lead], count: 1, automation: true}
    - {severity: high, environments: [prod], roles: [senior], count: 2}
    - {severity: low, roles: [lead], count: 1}
  people:
    - {name: alice, roles: [senior, lead]}
    - {name: bob, roles: [senior]}
    - {name: carol, roles: [senior]}
    - {name: dave, roles: []}
  signed_approvals: SIGNED
  approval_key: ${APPROVAL_KEY:-}
"""


@pytest.fixture
def world() -> Iterator[FakeWorld]:
    with installed(FakeWorld({"api": "v1"})) as w:
        yield w


def project(tmp_path: Path, world: FakeWorld, monkeypatch: pytest.MonkeyPatch, signed: bool = False) -> Path:
    monkeypatch.setenv("APPROVAL_KEY", "k3y-for-approvals")
    text = RUNBOOK.replace("SIGNED", "true" if signed else "false")
    (tmp_path / "lastgood.yaml").write_text(text)
    monkeypatch.setenv("LASTGOOD_FILE", str(tmp_path / "lastgood.yaml"))
    monkeypatch.setenv("LASTGOOD_USER", "alice")
    for env in ("prod", "staging"):
        assert main(["release", "record", env, "--version", "v1", "-o", "json"]) == 0
    world.set("api", "v2")
    for env in ("prod", "staging"):
        assert main(["release", "record", env, "--version", "v2", "-o", "json"]) == 0
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code = main([*args, "-o", "json"])
    return code, json.loads(capsys.readouterr().out)


def as_user(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("LASTGOOD_USER", name)


@pytest.mark.slow
def test_two_person_rule(tmp_path, world, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project(tmp_path, world, monkeypatch)
    capsys.readouterr()
    code, out = run(capsys, "rollback", "prod", "--severity", "high", "--yes")
    assert code == 3 and "awaits 2 approval(s) from: senior" in out["message"]
    rollback_id = out["message"].split("rollback ")[1].split(" ")[0]
    assert world.get("api") == "v2"
    code, out = run(capsys, "approve", rollback_id)  # alice requested it: not her to approve
    assert code == 3 and "two people must approve" in out["message"]
    as_user(monkeypatch, "dave")
    code, out = run(capsys, "approve", rollback_id)
    assert code == 3 and "holds none of the roles" in out["message"]
    as_user(monkeypatch, "bob")
    code, out = run(capsys, "approve", rollback_id)
    assert code == 0 and out["status"] == "awaiting-approval" and world.get("api") == "v2"
    code, out = run(capsys, "approve", rollback_id)
    assert code == 3 and "already approved" in out["message"]
    as_user(monkeypatch, "carol")
    code, out = run(capsys, "approve", rollback_id)  # the second approval starts it
    assert code == 0 and out["status"] == "succeeded" and world.get("api") == "v1"
    ledger = open_ledger(resolve_url("sqlite:///state.db", tmp_path))
    with ledger.session() as session:
        approvals = store.rollback_approvals(session, rollback_id)
        assert [(a.who, a.decision) for a in approvals] == [("bob", "approve"), ("carol", "approve")]
        row = store.get_rollback(session, rollback_id)
        assert row.severity == "high" and row.approved_at is not None and row.started_at >= row.approved_at
        types = [e.type for e in store.events_of(session, rollback_id)]
        assert types.index("approval-needed") < types.index("approved") < types.index("rollback-started")


@pytest.mark.slow
def test_deny_records_who_and_why(tmp_path, world, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project(tmp_path, world, monkeypatch)
    capsys.readouterr()
    code, out = run(capsys, "rollback", "prod", "--severity", "high")
    rollback_id = out["message"].split("rollback ")[1].split(" ")[0]
    as_user(monkeypatch, "bob")
    code, out = run(capsys, "deny", rollback_id)
    assert code == 2  # a denial needs a reason
    code, out = run(capsys, "deny", rollback_id, "--reason", "the errors come from a partner outage")
    assert code == 0 and out["status"] == "denied"
    code, out = run(capsys, "resume", rollback_id)
    assert code == 3 and "denied" in out["message"] and world.get("api") == "v2"


@pytest.mark.slow
def test_single_approval_by_a_requester_who_holds_the_role(tmp_path, world, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project(tmp_path, world, monkeypatch)
    capsys.readouterr()
    code, out = run(capsys, "rollback", "staging", "--severity", "critical", "--yes")  # alice is a lead
    assert code == 0 and out["status"] == "succeeded"


@pytest.mark.slow
def test_fix_forward_is_recorded_not_run(tmp_path, world, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project(tmp_path, world, monkeypatch)
    capsys.readouterr()
    code, out = run(capsys, "rollback", "prod", "--severity", "medium", "--yes")
    assert code == 3 and "fix forward" in out["message"] and "minor: patch it" in out["message"]
    assert world.get("api") == "v2"
    rollback_id = out["message"].rsplit("recorded as ", 1)[1]
    ledger = open_ledger(resolve_url("sqlite:///state.db", tmp_path))
    with ledger.session() as session:
        row = store.get_rollback(session, rollback_id)
        assert (row.status, row.method) == ("declined", "fix-forward")


@pytest.mark.slow
def test_planned_rollback_waits_for_its_window(tmp_path, world, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project(tmp_path, world, monkeypatch)
    capsys.readouterr()
    code, out = run(capsys, "rollback", "staging", "--severity", "low", "--yes")  # alice is a lead: approves
    assert code == 0 and out["status"] == "planned" and world.get("api") == "v2"
    code, out = run(capsys, "resume", out["id"])
    assert code == 0 and out["status"] == "succeeded" and world.get("api") == "v1"


@pytest.mark.slow
def test_signed_token_on_protected_environments(tmp_path, world, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    project(tmp_path, world, monkeypatch, signed=True)
    capsys.readouterr()
    code, out = run(capsys, "rollback", "prod", "--severity", "high", "--yes")
    rollback_id = out["message"].split("rollback ")[1].split(" ")[0]
    as_user(monkeypatch, "bob")
    code, out = run(capsys, "approve", rollback_id, "--token", "forged")
    assert code == 3 and "signed token" in out["message"]
    code, out = run(capsys, "approve", rollback_id, "--token", sign_token("k3y-for-approvals", rollback_id, "carol"))
    assert code == 3  # carol's token does not work for bob
    code, out = run(capsys, "approve", rollback_id, "--token", sign_token("k3y-for-approvals", rollback_id, "bob"))
    assert code == 0 and out["approvers"] == ["bob"]
    assert main(["approval-token", rollback_id, "--user", "bob"]) == 0
    assert capsys.readouterr().out.strip() == sign_token("k3y-for-approvals", rollback_id, "bob")


class Firing:
    """A metric source whose error rate is 50% in every period."""

    name = "static"

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        points = {
            end - timedelta(seconds=60 * (i + 1)): 50.0 if r.id.endswith("value") else 100.0
            for r in requests
            for i in range(10)
        }
        return {r.id: Series(r.id, dict(points)) for r in requests}


TRIGGER = """
triggers:
  - name: errors
    cloudwatch: {namespace: AWS/Lambda, metric: Errors}
    per: {namespace: AWS/Lambda, metric: Invocations}
    when: "> 5%"
    for: 2m
    severity: SEVERITY
    action: rollback
"""


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
@pytest.mark.parametrize(
    ("severity", "expected", "api"), [("critical", "rolled-back", "v1"), ("high", "awaiting-approval", "v2")]
)
def test_guard_acts_alone_only_where_the_matrix_allows(
    tmp_path, world, capsys, monkeypatch, severity, expected, api
) -> None:  # type: ignore[no-untyped-def]
    project(tmp_path, world, monkeypatch)
    text = (tmp_path / "lastgood.yaml").read_text() + TRIGGER.replace("SEVERITY", severity)
    (tmp_path / "lastgood.yaml").write_text(text)
    runbook = load_runbook(tmp_path / "lastgood.yaml")
    ctx = EnvContext(
        runbook, "prod", open_ledger(resolve_url(runbook.state, runbook.base_dir)), AwsClients(), FakeClock()
    )
    outcome = guard_for(ctx, Firing()).run(duration=60)
    assert outcome.status == expected and world.get("api") == api
    assert outcome.decision is not None and outcome.decision["severity"] == severity
