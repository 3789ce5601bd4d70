"""service/ functions whose behaviour no CLI test pins: the confirmation mark-bad asks for, the status of an
environment after a rollback, the report's documents by format, the review signed by the context's actor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.clock import FakeClock
from lastgood.config.loader import load_runbook, parse_runbook
from lastgood.domain.actor import Actor
from lastgood.engine.executor import Executor, RetryPolicy
from lastgood.engine.planner import build_plan
from lastgood.errors import ConfirmationNeeded, UnknownRollback
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.runtime.context import EnvContext
from lastgood.service import kpis, releases, reports, status
from lastgood.service.session import AppContext, ledger_for

RUNBOOK = """
app: shop
state: sqlite:///ledger.db
environments: {prod: {}}
components:
  - {name: api, kind: fake}
"""
FAST = RetryPolicy(attempts=2, base_delay=0.1, max_delay=0.1, verify_interval=0.1)


@dataclass
class Stand:
    ctx: EnvContext
    app: AppContext
    world: FakeWorld


@pytest.fixture
def stand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stand]:
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK)
    with installed(FakeWorld({"api": "v1"})) as world:
        runbook = load_runbook(tmp_path / "lastgood.yaml")
        ledger = ledger_for(runbook)
        dana = Actor(name="dana", roles=frozenset({"lead"}), via="api")
        ctx = EnvContext(runbook, "prod", ledger, AwsClients(), FakeClock(), actor=dana)
        releases.record(ctx, "v1")
        world.set("api", "v2")
        releases.record(ctx, "v2")
        yield Stand(ctx, AppContext(runbook, ledger, dana), world)
        ledger.close()


def rolled_back(stand: Stand) -> str:
    executor = Executor(stand.ctx, retry=FAST)
    rollback_id = executor.create(build_plan(stand.ctx), reason="errors")
    executor.run(rollback_id)
    return rollback_id


def test_mark_bad_needs_confirmation_for_the_live_release_only(stand: Stand) -> None:
    with pytest.raises(ConfirmationNeeded) as needed:
        releases.mark_bad(stand.ctx, "v2", "errors")
    assert needed.value.question == "v2 is the live release of prod; mark it bad anyway?"
    assert not any(r.bad for r in releases.list_releases(stand.ctx).releases)
    assert releases.mark_bad(stand.ctx, "v2", "errors", live_confirmed=True).was_live
    assert not releases.mark_bad(stand.ctx, "v1", "also").was_live
    assert [r.bad_reason for r in releases.list_releases(stand.ctx).releases] == ["errors", "also"]


def test_status_after_a_rollback(stand: Stand) -> None:
    before = status.environment_status(stand.ctx)
    assert before.live is not None and before.live.label == "v2" and before.last_rollback is None
    rollback_id = rolled_back(stand)
    after = status.environment_status(stand.ctx)
    assert after.live is not None and after.live.label == "v1"
    assert after.last_rollback is not None
    assert (after.last_rollback.id, after.last_rollback.status) == (rollback_id, "succeeded")
    assert (after.last_rollback.from_release, after.last_rollback.to_release) == ("v2", "v1")
    assert after.holder is None and after.active_stop is None
    dumped = after.model_dump(mode="json")
    assert dumped["live"]["recorded_at"].endswith("+00:00")  # ISO as Python writes it, like the rest of the JSON


def test_incident_report_documents_by_format(stand: Stand) -> None:
    rollback_id = rolled_back(stand)
    content = reports.incident_report(stand.app, rollback_id, ("md",))
    assert list(content.documents) == ["md"] and rollback_id in content.documents["md"]
    assert content.status == "succeeded" and {i.phase for i in content.checklist} == {"pre", "during", "post"}
    both = reports.incident_report(stand.app, rollback_id)
    assert both.documents["html"].startswith("<!DOCTYPE html>")


def test_review_is_signed_by_the_context_actor(stand: Stand) -> None:
    rollback_id = rolled_back(stand)
    review = kpis.review_rollback(stand.app, rollback_id, unnecessary=True, note="noisy")
    assert (review.reviewed_by, review.unnecessary, review.previous) == ("dana", True, None)
    assert kpis.review_rollback(stand.app, rollback_id, unnecessary=False).previous is True
    other = AppContext(parse_runbook(RUNBOOK.replace("shop", "mall")), stand.app.ledger, stand.app.actor)
    with pytest.raises(UnknownRollback, match="belongs to 'shop'"):
        kpis.review_rollback(other, rollback_id, unnecessary=True)
