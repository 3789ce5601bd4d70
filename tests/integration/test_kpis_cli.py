"""`lastgood kpis` and `lastgood rollback-review` on a real ledger (SQLite and PostgreSQL).

Rollbacks are made by the real planner and executor on the fake kind; the incident clock's columns
(detected_at, decided_at, started_at, drill, ...) are set directly where no flow sets them yet.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.cli.kpis_cmd import parse_since
from lastgood.clock import FakeClock
from lastgood.config.loader import load_runbook
from lastgood.engine.decide import apply_decision, decide
from lastgood.engine.executor import Executor, RetryPolicy
from lastgood.engine.planner import build_plan
from lastgood.engine.record import record_release
from lastgood.errors import BadInput
from lastgood.kinds.fake import FakeWorld, installed
from lastgood.ledger import store
from lastgood.ledger.db import Ledger, open_ledger, resolve_url
from lastgood.ledger.tables import EventRow, RollbackRow, StepRow
from lastgood.runtime.context import EnvContext

FAST = RetryPolicy(attempts=2, base_delay=0.1, max_delay=0.2, verify_interval=0.1)
RUNBOOK = """\
app: shop
state: {state}
environments:
  prod: {{}}
  staging: {{}}
components:
  - {{name: api, kind: fake, key: "{{env}}/api"}}
  - {{name: config, kind: fake, key: "{{env}}/config"}}
policy:
  targets:
    mean_time_to_restore: 20m
    success_rate: 90%
    mean_time_to_detect: 2m
"""


@dataclass
class Shop:
    file: Path
    ledger: Ledger
    clock: FakeClock
    world: FakeWorld
    ids: dict[str, str]

    def ctx(self, env: str) -> EnvContext:
        runbook = load_runbook(self.file)
        return EnvContext(runbook=runbook, env=env, ledger=self.ledger, aws=AwsClients(), clock=self.clock)

    def deploy(self, env: str, label: str) -> datetime:
        """Put both components at `label` and record it; returns the deployment time."""
        self.world.update({f"{env}/api": label, f"{env}/config": label})
        return record_release(self.ctx(env), label).recorded_at

    def roll_back(
        self, env: str, name: str, decide_after: float | None = None, run_after: float = 0, **columns: Any
    ) -> str:
        """Open a rollback now (the moment of detection), optionally decide on it through the decision flow
        `decide_after` seconds later, run it with the real executor `run_after` seconds after that, then set
        the columns given (times no flow sets in a test, since steps take no simulated time)."""
        ctx = self.ctx(env)
        executor = Executor(ctx, retry=FAST)
        detected = self.clock.now()
        rollback_id = executor.create(build_plan(ctx, None, None), reason=name)
        if decide_after is not None:
            self.clock.advance(decide_after)
            assert apply_decision(ctx, rollback_id, decide(ctx), set(), detected) == "planned"
        self.clock.advance(run_after)
        executor.run(rollback_id)
        with self.ledger.session() as session:
            row = store.get_rollback(session, rollback_id)
            for column, value in columns.items():
                setattr(row, column, value)
        self.ids[name] = rollback_id
        return rollback_id

    def at(self, when: datetime) -> None:
        self.clock.advance((when - self.clock.now()).total_seconds())


def s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


@pytest.fixture
def shop(ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    """prod: one old rollback (40 days ago), two that succeeded, one that failed, one drill; staging: one."""
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.setenv("LASTGOOD_USER", "reviewer")
    file = tmp_path / "lastgood.yaml"
    file.write_text(RUNBOOK.format(state=ledger_url))
    now = datetime.now(UTC).replace(microsecond=0)
    with installed(FakeWorld()) as world:
        ledger = open_ledger(resolve_url(ledger_url, tmp_path))
        shop = Shop(file, ledger, FakeClock(now - timedelta(days=40)), world, {})
        make_history(shop, now)
        yield shop
        ledger.close()


def make_history(shop: Shop, now: datetime) -> None:
    shop.deploy("prod", "v1")
    shop.clock.advance(3600)
    deployed = shop.deploy("prod", "v2")
    shop.clock.advance(1000)
    shop.roll_back("prod", "old", finished_at=deployed + s(9000))

    # r1: detected 5m after the deployment, decided 1m later, started 30s after that, restored 10m after detection
    shop.at(now - timedelta(days=10))
    deployed = shop.deploy("prod", "v3")
    shop.clock.advance(300)
    shop.roll_back("prod", "r1", decide_after=60, run_after=30, finished_at=deployed + s(300 + 600))

    # r2: no decision recorded and no detected_at: detected = created, decided = started 3m later; 20m to restore;
    # its api step restored into a copy with a 30s data-loss window
    shop.at(now - timedelta(days=5))
    deployed = shop.deploy("prod", "v4")
    shop.clock.advance(120)
    shop.roll_back("prod", "r2", run_after=180, finished_at=deployed + s(120 + 1200))
    with shop.ledger.session() as session:
        step = session.scalars(select(StepRow).filter_by(rollback_id=shop.ids["r2"], component="api")).one()
        assert step.status == "succeeded"
        step.data_loss_window_seconds = 30.0

    # r3: detected 1m after the deployment, decided 4m later, failed
    shop.at(now - timedelta(days=3))
    shop.deploy("prod", "v5")
    shop.clock.advance(60)
    shop.world.fail_next("prod/api", permanent=True, message="fake: access denied")
    shop.roll_back("prod", "r3", decide_after=240)

    # a drill: detected 30s after its deployment, restored 90s later
    shop.at(now - timedelta(days=2))
    deployed = shop.deploy("prod", "v6")
    shop.clock.advance(30)
    shop.roll_back("prod", "drill", drill=True, finished_at=deployed + s(120))

    shop.at(now - timedelta(days=1))
    shop.deploy("staging", "s1")
    deployed = shop.deploy("staging", "s2")
    shop.clock.advance(45)
    shop.roll_back("staging", "staging", finished_at=deployed + s(345))
    with shop.ledger.session() as session:
        statuses = {name: store.get_rollback(session, rollback_id).status for name, rollback_id in shop.ids.items()}
    assert statuses == {n: "failed" if n == "r3" else "succeeded" for n in shop.ids}


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main([*args, "-o", "json"])
    return code, json.loads(capsys.readouterr().out)


def kpis_of(shop: Shop, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, data = run_json(capsys, "kpis", *args, "-f", str(shop.file))
    assert code == 0, data
    return data


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_kpis_of_prod_over_30_days(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    data = kpis_of(shop, capsys, "prod", "--since", "30d")
    overall = data["incidents"]["overall"]
    assert overall["rollbacks"] == 3  # r1, r2, r3: not the old one, the drill or staging's
    assert overall["time_to_detect"] == {"count": 3, "mean": 160.0, "p95": 300.0}  # 300, 120, 60
    assert overall["time_to_decide"] == {"count": 3, "mean": 160.0, "p95": 240.0}  # 60, 180, 240
    assert overall["time_to_restore"] == {"count": 2, "mean": 900.0, "p95": 1200.0}  # 600, 1200
    assert (overall["finished"], overall["succeeded"]) == (3, 2)
    assert overall["success_rate"] == pytest.approx(2 / 3)
    assert (overall["false_rollback_rate"], overall["reviewed"], overall["data_loss_incidents"]) == (0.0, 0, 1)
    statuses = {name: c["status"] for name, c in overall["checks"].items()}
    assert statuses == {
        "mean_time_to_detect": "missed",  # 160s > 2m
        "mean_time_to_restore": "met",  # 15m <= 20m
        "success_rate": "missed",  # 67% < 90%
        "false_rollback_rate": "met",
        "data_loss_incidents": "missed",
    }
    assert data["targets"]["mean_time_to_restore"] == 1200.0 and data["targets"]["success_rate"] == 0.9
    assert list(data["incidents"]["by_env"]) == ["prod"]
    assert data["incidents"]["by_kind"]["fake"]["time_to_restore"]["mean"] == 900.0


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_drills_are_reported_apart(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    drills = kpis_of(shop, capsys, "prod", "--since", "30d")["drills"]["overall"]
    assert drills["rollbacks"] == 1
    assert drills["time_to_detect"] == {"count": 1, "mean": 30.0, "p95": 30.0}
    assert drills["time_to_restore"] == {"count": 1, "mean": 90.0, "p95": 90.0}
    assert drills["success_rate"] == 1.0 and drills["checks"]["success_rate"]["status"] == "met"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_every_environment_and_a_longer_window(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    data = kpis_of(shop, capsys, "--since", "30d")
    assert data["env"] is None
    assert {e: g["rollbacks"] for e, g in data["incidents"]["by_env"].items()} == {"prod": 3, "staging": 1}
    assert data["incidents"]["by_env"]["staging"]["time_to_restore"]["mean"] == 300.0
    older = kpis_of(shop, capsys, "prod", "--since", "60d")["incidents"]["overall"]
    assert older["rollbacks"] == 4 and older["time_to_restore"]["count"] == 3  # the old one counts now


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_review_changes_the_false_rollback_rate_and_is_audited(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    r1 = shop.ids["r1"]
    code, review = run_json(
        capsys, "rollback-review", r1, "--unnecessary", "--note", "a noisy alarm", "-f", str(shop.file)
    )
    assert code == 0, review
    assert review == {
        "id": r1,
        "env": "prod",
        "reviewed_by": "reviewer",
        "unnecessary": True,
        "note": "a noisy alarm",
        "previous": None,
    }
    overall = kpis_of(shop, capsys, "prod", "--since", "30d")["incidents"]["overall"]
    assert (overall["unnecessary"], overall["reviewed"]) == (1, 1)
    assert overall["false_rollback_rate"] == pytest.approx(1 / 3)
    assert overall["checks"]["false_rollback_rate"]["status"] == "missed"

    with shop.ledger.session() as session:
        row = session.get(RollbackRow, r1)
        assert row is not None and (row.unnecessary, row.review_note, row.reviewed_by) == (
            True,
            "a noisy alarm",
            "reviewer",
        )
        events = [e for e in store.events_of(session, r1) if e.type == "rollback-reviewed"]
    assert len(events) == 1 and events[0].actor == "reviewer" and "unnecessary: a noisy alarm" in events[0].message
    assert events[0].data == {"unnecessary": True, "note": "a noisy alarm", "previous": None}

    assert main(["rollback-review", r1, "--necessary", "-f", str(shop.file)]) == 0
    assert "reviewed by reviewer: necessary" in capsys.readouterr().out
    overall = kpis_of(shop, capsys, "prod", "--since", "30d")["incidents"]["overall"]
    assert (overall["unnecessary"], overall["reviewed"], overall["false_rollback_rate"]) == (0, 1, 0.0)
    assert main(["audit", "verify", "-f", str(shop.file)]) == 0  # the chain still holds
    with shop.ledger.session() as session:
        types = list(session.scalars(select(EventRow.type).filter_by(rollback_id=r1)))
    assert types.count("rollback-reviewed") == 2


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_text_output(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kpis", "prod", "--since", "30d", "-f", str(shop.file)]) == 0
    out = capsys.readouterr().out
    assert "real incidents in prod since" in out and "drills in prod since" in out
    assert "target" in out and "met" in out and "missed" in out


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_bad_input_exits_2(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    code, error = run_json(capsys, "kpis", "prod", "--since", "soon", "-f", str(shop.file))
    assert code == 2 and error["error"] == "BadInput" and "--since" in error["message"]
    code, error = run_json(capsys, "rollback-review", "rb-nope", "--unnecessary", "-f", str(shop.file))
    assert code == 2 and error["error"] == "UnknownRollback"
    code, error = run_json(capsys, "kpis", "qa", "-f", str(shop.file))
    assert code == 2 and "unknown environment" in error["message"]
    assert main(["rollback-review", shop.ids["r1"], "-f", str(shop.file)]) == 2  # neither flag


NOW = datetime(2026, 6, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "since"),
    [
        ("90d", NOW - timedelta(days=90)),
        ("12h", NOW - timedelta(hours=12)),
        ("1d12h", NOW - timedelta(hours=36)),
        ("2026-01-31", datetime(2026, 1, 31, tzinfo=UTC)),
        ("2026-01-31T10:00:00+02:00", datetime(2026, 1, 31, 8, 0, tzinfo=UTC)),
    ],
)
def test_parse_since(value: str, since: datetime) -> None:
    assert parse_since(value, NOW) == since


@pytest.mark.parametrize("value", ["soon", "-3d", "31/01/2026", ""])
def test_parse_since_refuses_what_it_cannot_read(value: str) -> None:
    with pytest.raises(BadInput, match="--since"):
        parse_since(value, NOW)
