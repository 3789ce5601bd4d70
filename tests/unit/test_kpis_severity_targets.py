"""Maximum rollback time per severity (policy.targets.rollback_time): each rollback met or missed, per severity,
real incidents and drills apart."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from lastgood.config.policy import Targets
from lastgood.kpis import RollbackRecord, by_severity, compute

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TARGETS = Targets.model_validate({"rollback_time": {"critical": "15m", "high": "1h"}})


def rb(id: str, severity: str | None, status: str = "succeeded", restore: float | None = None, drill: bool = False):  # type: ignore[no-untyped-def]
    finished = None if restore is None else T0 + timedelta(seconds=restore)
    return RollbackRecord(
        id, "prod", ("fake",), drill, status, T0, detected_at=T0, finished_at=finished, severity=severity
    )


TABLE = [
    rb("c1", "critical", restore=600),  # 10m < 15m: met
    rb("c2", "critical", restore=900),  # exactly the target: met
    rb("c3", "critical", restore=901),  # missed
    rb("c4", "critical", status="failed", restore=100),  # failed: not restored, missed
    rb("c5", "critical", status="running"),  # undecided: no data
    rb("h1", "high", restore=3000),  # 50m < 1h: met
    rb("m1", "medium", restore=10),  # no target for medium
    rb("u1", None, restore=10),  # severity never assessed
    rb("d1", "critical", restore=2000, drill=True),  # a drill: missed, in the drills' section only
]


def test_each_rollback_is_met_or_missed_against_its_severitys_maximum() -> None:
    found = by_severity([r for r in TABLE if not r.drill], TARGETS)
    assert list(found) == ["critical", "high", "medium", "unassessed"]
    critical = found["critical"]
    assert (critical.target, critical.met, critical.missed, critical.no_data) == (900, 2, 2, 1)
    assert [(r.id, r.status) for r in critical.rollbacks] == [
        ("c1", "met"),
        ("c2", "met"),
        ("c3", "missed"),
        ("c4", "missed"),
        ("c5", "no data"),
    ]
    assert critical.rollbacks[2].seconds == 901
    assert (found["high"].met, found["high"].missed) == (1, 0)
    assert found["medium"].target is None and found["medium"].rollbacks[0].status == "no target"
    assert found["unassessed"].rollbacks[0].status == "no target"


def test_the_report_keeps_drills_apart_and_states_the_targets() -> None:
    report = compute(TABLE, TARGETS)
    assert report.incidents.by_severity["critical"].missed == 2
    assert [r.id for r in report.drills.by_severity["critical"].rollbacks] == ["d1"]
    assert report.drills.by_severity["critical"].missed == 1
    data = report.to_dict()
    assert data["targets"]["rollback_time_critical"] == 900 and data["targets"]["rollback_time_high"] == 3600
    assert data["incidents"]["by_severity"]["high"]["met"] == 1


def test_without_per_severity_targets_nothing_is_judged() -> None:
    report = compute([dataclasses.replace(TABLE[0])], Targets())
    assert report.incidents.by_severity["critical"].rollbacks[0].status == "no target"
