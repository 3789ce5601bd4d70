"""The file's checklists and post-rollback actions (issue 15, item 4): auto items ticked from the ledger, the
others by hand with `lastgood check` (an event with the actor), in the report and `show`; plan warnings against
the per-severity and per-component targets (item 3). Fake kind, real SQLite ledger, the real executor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lastgood import redact
from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.clock import FakeClock
from lastgood.config.loader import load_runbook
from lastgood.domain.actor import Actor
from lastgood.engine.executor import Executor, RetryPolicy
from lastgood.engine.planner import build_plan
from lastgood.engine.record import record_release
from lastgood.kinds.fake import FakeKind, FakeWorld, installed
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext

FAST = RetryPolicy(attempts=2, base_delay=0.1, max_delay=0.1, verify_interval=0.5)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

RUNBOOK = """\
app: shop
state: sqlite:///state/ledger.db
environments:
  prod: {}
components:
  - {name: api, kind: fake, rto: 5m}
  - {name: db, kind: fake, depends_on: [api]}
policy:
  targets:
    rollback_time: {critical: 15m, high: 1h}
    rto: {fake: 20m}
checklists:
  pre:
    - {item: Release recorded before the rollback, auto: release-recorded}
    - {item: Page the on-call lead, id: page-lead}
  during:
    - {item: Every component verified, auto: components-verified}
  post:
    - Tell the customers' account managers
    - {item: Stakeholders told it is over, auto: notified}
post_rollback:
  - {action: Write the post-mortem, when: short-term, owner: lead}
  - {action: Add a test for the bug, when: long-term}
"""


@dataclass
class Stand:
    ctx: EnvContext
    world: FakeWorld
    clock: FakeClock
    file: Path


@pytest.fixture
def stand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stand]:
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.setenv("LASTGOOD_USER", "alice")
    file = tmp_path / "lastgood.yaml"
    file.write_text(RUNBOOK)
    with installed(FakeWorld()) as world:
        runbook = load_runbook(file)
        ledger = open_ledger(resolve_url(runbook.state, runbook.base_dir))
        clock = FakeClock(T0)
        actor = Actor(name="alice")
        ctx = EnvContext(runbook=runbook, env="prod", ledger=ledger, aws=AwsClients(), clock=clock, actor=actor)
        yield Stand(ctx, world, clock, file)
        ledger.close()
    redact.clear()


def rolled_back(stand: Stand) -> str:
    stand.world.update({"api": "1", "db": "1"})
    record_release(stand.ctx, "v1")
    stand.clock.advance(600)
    stand.world.update({"api": "2", "db": "2"})
    record_release(stand.ctx, "v2")
    executor = Executor(stand.ctx, retry=FAST)
    rollback_id = executor.create(build_plan(stand.ctx), reason="errors after v2")
    executor.run(rollback_id)
    return rollback_id


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def checklist_of(capsys: pytest.CaptureFixture[str], stand: Stand, rollback_id: str) -> dict[str, dict[str, str]]:
    code, out, _err = cli(capsys, "show", rollback_id, "-f", str(stand.file), "--output", "json")
    assert code == 0
    return {i["key"]: i for i in json.loads(out)["checklist"]}


def test_auto_items_are_ticked_by_the_ledger_and_the_others_by_hand(
    stand: Stand, capsys: pytest.CaptureFixture[str]
) -> None:
    rollback_id = rolled_back(stand)
    items = checklist_of(capsys, stand, rollback_id)
    assert list(items) == [
        "release-recorded-before-the-rollback",
        "page-lead",
        "every-component-verified",
        "tell-the-customers-account-managers",
        "stakeholders-told-it-is-over",
    ]
    assert items["release-recorded-before-the-rollback"]["tick"] == "done"
    assert "release v2 recorded" in items["release-recorded-before-the-rollback"]["evidence"]
    assert items["every-component-verified"] == items["every-component-verified"] | {"tick": "done", "phase": "during"}
    assert items["page-lead"]["tick"] == "not done"
    assert f"lastgood check {rollback_id} page-lead" in items["page-lead"]["evidence"]
    assert items["stakeholders-told-it-is-over"]["tick"] == "not done"  # no channel: nothing was sent

    code, out, _err = cli(capsys, "check", rollback_id, "page-lead", "--note", "paged Bob", "-f", str(stand.file))
    assert code == 0 and "page-lead" in out and "alice" in out
    ticked = checklist_of(capsys, stand, rollback_id)["page-lead"]
    assert ticked["tick"] == "done"
    assert ticked["evidence"].startswith("ticked by alice at ") and ticked["evidence"].endswith(": paged Bob")
    with stand.ctx.ledger.session() as session:
        event = [e for e in store.events_of(session, rollback_id) if e.type == "checklist-ticked"]
    assert [(e.actor, e.data) for e in event] == [("alice", {"item": "page-lead", "phase": "pre", "note": "paged Bob"})]


def test_report_lists_the_files_checklists_and_post_rollback_actions(
    stand: Stand, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rollback_id = rolled_back(stand)
    cli(capsys, "check", rollback_id, "tell-the-customers-account-managers", "-f", str(stand.file))
    out = tmp_path / "reports"
    code, _out, _err = cli(capsys, "report", rollback_id, "-f", str(stand.file), "--out", str(out), "--format", "md")
    assert code == 0
    md = (out / f"report-{rollback_id}.md").read_text()
    assert "- [ ] Page the on-call lead — **not done**" in md
    assert "- [x] Tell the customers' account managers — **done**: ticked by alice" in md
    assert "Identify the issue and confirm rollback is necessary" not in md  # the built-in list is replaced
    assert "- [ ] Write the post-mortem (owner: lead)" in md
    short, long = md.index("### Short-term actions"), md.index("### Long-term actions")
    assert short < md.index("Write the post-mortem") < long < md.index("Add a test for the bug")


def test_check_refuses_an_unknown_item_or_rollback_and_writes_nothing(
    stand: Stand, capsys: pytest.CaptureFixture[str]
) -> None:
    rollback_id = rolled_back(stand)
    code, _out, err = cli(capsys, "check", rollback_id, "page-the-ceo", "-f", str(stand.file))
    assert code == 2 and "no checklist item 'page-the-ceo'" in err and "page-lead" in err
    code, _out, err = cli(capsys, "check", "rb-nosuch", "page-lead", "-f", str(stand.file))
    assert code == 2 and "no rollback 'rb-nosuch'" in err
    with stand.ctx.ledger.session() as session:
        assert not [e for e in store.events_of(session, rollback_id) if e.type == "checklist-ticked"]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_without_checklists_the_built_in_list_stays_and_takes_ticks(
    stand: Stand, capsys: pytest.CaptureFixture[str]
) -> None:
    stand.file.write_text(RUNBOOK.split("checklists:")[0])
    rollback_id = rolled_back(stand)
    assert checklist_of(capsys, stand, rollback_id)["test-api-endpoints"]["tick"] == "not done"
    code, _out, _err = cli(
        capsys, "check", rollback_id, "test-api-endpoints", "--note", "curl ok", "-f", str(stand.file)
    )
    assert code == 0
    item = checklist_of(capsys, stand, rollback_id)["test-api-endpoints"]
    assert item["tick"] == "done" and item["source"] == "004 Post-Rollback"


def test_plan_warns_when_the_estimate_exceeds_a_target(
    stand: Stand, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stand.world.update({"api": "1", "db": "1"})
    record_release(stand.ctx, "v1")
    stand.world.update({"api": "2", "db": "2"})
    record_release(stand.ctx, "v2")
    monkeypatch.setattr(FakeKind, "estimate_seconds", 8 * 60.0)  # db (a dependent: first) done at 8m, api at 16m
    code, out, err = cli(capsys, "plan", "prod", "-f", str(stand.file), "--severity", "critical", "--output", "json")
    assert code == 0
    plan = json.loads(out)
    assert plan["severity"] == "critical" and plan["severity_target_seconds"] == 900
    assert plan["component_rtos"] == {"api": 300, "db": 1200}
    assert plan["target_warnings"] == [
        "the estimate (16m) exceeds the maximum rollback time of a critical incident (15m)",
        "api is expected back after 16m, over its recovery-time objective (5m)",
    ]
    assert "warning" in err and "critical incident (15m)" in err
    code, out, err = cli(capsys, "plan", "prod", "-f", str(stand.file), "--output", "json")  # the default: high
    assert json.loads(out)["target_warnings"] == [
        "api is expected back after 16m, over its recovery-time objective (5m)"
    ]
    code, _out, err = cli(capsys, "plan", "prod", "-f", str(stand.file), "--severity", "urgent")
    assert code == 2 and "unknown severity 'urgent'" in err


def test_bad_blocks_are_named_with_their_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        "app: shop\nenvironments: {prod: {}}\ncomponents: []\n"
        "checklists:\n  pre: [{item: a, auto: validation-passd}, {item: b, id: Bad Id}]\n  post: [Same, same]\n"
        "post_rollback: [{action: x, when: someday}]\n"
        "policy: {targets: {rollback_time: {urgent: 1h}, rto: {lambda-alias: soon}}}\n"
    )
    assert main(["validate", "-f", str(file)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "checklists.pre[0].auto: unknown fact 'validation-passd'" in err
    assert "checklists.pre[1].id: " in err
    assert "post_rollback[0].when: " in err
    assert "policy.targets.rollback_time.urgent.[key]: " in err
    assert "policy.targets.rto.lambda-alias: " in err
    file.write_text("app: shop\nenvironments: {prod: {}}\ncomponents: []\nchecklists: {pre: [Same], post: [same]}\n")
    assert main(["validate", "-f", str(file)]) == 2
    assert "checklists: item ids must be unique (give one an id:): same" in " ".join(capsys.readouterr().err.split())
