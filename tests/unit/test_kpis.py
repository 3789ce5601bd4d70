"""The KPI computation: a table of rollbacks with known times gives exact figures, groups and verdicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from lastgood import kpis
from lastgood.config.policy import Targets
from lastgood.kpis import RollbackRecord, check, compute, group_kpis, nearest_rank, record_of, stats_of
from lastgood.ledger.tables import RollbackRow, StepRow

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float | None) -> datetime | None:
    return None if seconds is None else T0 + timedelta(seconds=seconds)


def rb(
    id: str,
    env: str = "prod",
    kinds: tuple[str, ...] = ("lambda-alias",),
    status: str = "succeeded",
    deploy: float | None = 0,
    created: float = 0,
    detect: float | None = None,
    decide: float | None = None,
    start: float | None = None,
    finish: float | None = None,
    drill: bool = False,
    unnecessary: bool | None = None,
    data_loss: bool = False,
) -> RollbackRecord:
    """A rollback whose times are seconds after T0 (the deployment is at `deploy`)."""
    return RollbackRecord(
        id=id,
        env=env,
        kinds=kinds,
        drill=drill,
        status=status,
        created_at=T0 + timedelta(seconds=created),
        deployed_at=at(deploy),
        detected_at=at(detect),
        decided_at=at(decide),
        started_at=at(start),
        finished_at=at(finish),
        unnecessary=unnecessary,
        data_loss=data_loss,
    )


# detect = detected - deploy; decide = (decided or started) - detected; restore = finished - detected (succeeded)
TABLE = [
    rb("a", detect=60, decide=120, finish=360),  # detect 60, decide 60, restore 300
    rb("b", kinds=("lambda-alias", "ssm-parameter"), created=180, start=300, finish=780),  # 180, 120, 600
    rb("c", kinds=("dynamodb-table",), status="failed", detect=600, decide=660, finish=900, data_loss=True),
    rb("d", env="staging", deploy=None, detect=0, finish=1200, unnecessary=True),  # -, -, 1200
    rb("e", status="running", detect=30),  # detect 30; not finished
    rb("f", detect=20, finish=80, drill=True),  # a drill: 20, -, 60
    rb("g", status="declined", detect=10, decide=40, unnecessary=True),  # fix forward: 10, 30, -; did not run
]


@pytest.fixture
def report() -> kpis.KpiReport:
    return compute(TABLE, Targets())


def test_overall_figures_of_real_incidents(report: kpis.KpiReport) -> None:
    overall = report.incidents.overall
    assert (overall.rollbacks, overall.ran) == (6, 5)
    assert overall.time_to_detect == kpis.Stats(count=5, mean=176.0, p95=600.0)
    assert overall.time_to_decide == kpis.Stats(count=4, mean=67.5, p95=120.0)
    assert overall.time_to_restore == kpis.Stats(count=3, mean=700.0, p95=1200.0)
    assert (overall.finished, overall.succeeded, overall.success_rate) == (4, 3, 0.75)
    # d of the five that ran; g was declined, so its review does not count
    assert (overall.reviewed, overall.unnecessary, overall.false_rollback_rate) == (1, 1, 0.2)
    assert overall.data_loss_incidents == 1


def test_overall_verdicts_against_the_default_targets(report: kpis.KpiReport) -> None:
    statuses = {name: c.status for name, c in report.incidents.overall.checks.items()}
    assert statuses == {
        "mean_time_to_detect": "no target",
        "mean_time_to_restore": "met",  # 700s <= 15m
        "success_rate": "missed",  # 75% < 95%
        "false_rollback_rate": "missed",  # 20% > 5%
        "data_loss_incidents": "missed",  # 1 > 0
    }
    restore = report.incidents.overall.checks["mean_time_to_restore"]
    assert (restore.value, restore.target) == (700.0, 900.0)


def test_per_environment(report: kpis.KpiReport) -> None:
    prod, staging = report.incidents.by_env["prod"], report.incidents.by_env["staging"]
    assert list(report.incidents.by_env) == ["prod", "staging"]
    assert (
        (prod.rollbacks, prod.ran) == (5, 4)
        and prod.time_to_restore.mean == 450.0
        and prod.success_rate == pytest.approx(2 / 3)
    )
    assert prod.false_rollback_rate == 0.0 and prod.checks["false_rollback_rate"].status == "met"
    assert staging.rollbacks == 1 and staging.time_to_detect.count == 0  # its deployment was not recorded
    assert staging.time_to_restore.mean == 1200.0 and staging.checks["mean_time_to_restore"].status == "missed"
    assert staging.checks["success_rate"].status == "met" and staging.false_rollback_rate == 1.0
    assert staging.checks["data_loss_incidents"].status == "met"


def test_per_kind_counts_a_rollback_under_each_of_its_kinds(report: kpis.KpiReport) -> None:
    by_kind = report.incidents.by_kind
    assert {k: g.rollbacks for k, g in by_kind.items()} == {"dynamodb-table": 1, "lambda-alias": 5, "ssm-parameter": 1}
    assert by_kind["ssm-parameter"].time_to_restore.mean == 600.0
    assert by_kind["dynamodb-table"].success_rate == 0.0 and by_kind["dynamodb-table"].data_loss_incidents == 1
    assert by_kind["lambda-alias"].time_to_restore == kpis.Stats(count=3, mean=700.0, p95=1200.0)


def test_drills_are_kept_apart_from_real_incidents(report: kpis.KpiReport) -> None:
    drills = report.drills.overall
    assert drills.rollbacks == 1
    assert drills.time_to_detect == kpis.Stats(1, 20.0, 20.0)
    assert drills.time_to_restore == kpis.Stats(1, 60.0, 60.0)
    assert drills.success_rate == 1.0 and drills.checks["success_rate"].status == "met"
    assert list(report.drills.by_env) == ["prod"] and list(report.drills.by_kind) == ["lambda-alias"]
    # and the drill is in none of the incident figures (its 20s detection would change the mean)
    assert report.incidents.overall.time_to_detect.mean == 176.0


def test_no_data_gives_no_figures_and_no_verdicts() -> None:
    report = compute([], Targets(mean_time_to_detect=300))
    overall = report.incidents.overall
    assert overall.rollbacks == 0 and report.incidents.by_env == {} and report.incidents.by_kind == {}
    assert overall.time_to_restore == kpis.Stats(0, None, None)
    assert overall.success_rate is None and overall.false_rollback_rate is None
    assert {c.status for c in overall.checks.values()} == {"no data"}
    assert report.drills.overall.rollbacks == 0


def test_targets_from_the_file_change_the_verdicts() -> None:
    records = [rb("a", detect=600, finish=1500), rb("b", status="failed", detect=60, finish=100)]
    strict = group_kpis(records, Targets(mean_time_to_restore=60, success_rate=0.5, mean_time_to_detect=300))
    assert strict.time_to_restore.mean == 900.0 and strict.checks["mean_time_to_restore"].status == "missed"
    assert strict.success_rate == 0.5 and strict.checks["success_rate"].status == "met"  # on the target: met
    assert strict.time_to_detect.mean == 330.0 and strict.checks["mean_time_to_detect"].status == "missed"
    lenient = group_kpis(records, Targets(mean_time_to_restore=900, mean_time_to_detect=330, data_loss_incidents=2))
    assert lenient.checks["mean_time_to_restore"].status == "met"
    assert lenient.checks["mean_time_to_detect"].status == "met"
    assert lenient.checks["data_loss_incidents"].status == "met"


@pytest.mark.parametrize(
    ("value", "target", "higher", "status"),
    [
        (899.0, 900.0, False, "met"),
        (900.0, 900.0, False, "met"),
        (900.5, 900.0, False, "missed"),
        (0.96, 0.95, True, "met"),
        (0.95, 0.95, True, "met"),
        (0.94, 0.95, True, "missed"),
        (None, 0.95, True, "no data"),
        (12.0, None, False, "no target"),
    ],
)
def test_check(value: float | None, target: float | None, higher: bool, status: str) -> None:
    assert check(value, target, higher).status == status


def test_time_to_decide_prefers_decided_over_started_and_detected_falls_back_to_created() -> None:
    both = rb("x", created=100, decide=130, start=400)
    assert both.time_to_decide() == 30.0 and both.time_to_detect() == 100.0
    neither = rb("y", created=100)
    assert neither.time_to_decide() is None


def test_restore_counts_only_succeeded_and_out_of_order_times_are_left_out() -> None:
    assert rb("x", status="failed", detect=10, finish=70).time_to_restore() is None
    assert rb("x", status="succeeded", detect=10, finish=None).time_to_restore() is None
    assert rb("x", status="succeeded", detect=10, finish=10).time_to_restore() == 0.0
    assert rb("x", deploy=500, detect=10).time_to_detect() is None
    assert rb("x", detect=100, decide=90).time_to_decide() is None
    assert rb("x", detect=100, finish=40).time_to_restore() is None


@pytest.mark.parametrize(
    ("n", "expected"),
    [(1, 1.0), (2, 2.0), (19, 19.0), (20, 19.0), (21, 20.0), (40, 38.0), (100, 95.0), (101, 96.0)],
)
def test_p95_is_nearest_rank(n: int, expected: float) -> None:
    values = [float(v) for v in range(n, 0, -1)]  # unsorted on purpose
    assert nearest_rank(values) == expected
    assert stats_of(values).p95 == expected


def test_numpy_and_the_standard_library_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kpis._numpy() is not None, "NumPy comes with the test extra; this test compares both paths"
    samples = [[float((i * 37) % 101) for i in range(n)] for n in range(1, 120)]
    with_numpy = [stats_of(s) for s in samples]
    monkeypatch.setattr(kpis, "_numpy", lambda: None)
    without = [stats_of(s) for s in samples]
    assert [s.p95 for s in with_numpy] == [s.p95 for s in without]
    assert [s.mean for s in with_numpy] == pytest.approx([s.mean for s in without])


def test_record_of_a_ledger_row() -> None:
    row = RollbackRow(
        id="rb-1", app="shop", env="prod", status="succeeded", created_at=T0, drill=True, unnecessary=False
    )
    steps = [("secret", None, "succeeded"), ("dynamodb-table", 0.0, "succeeded"), ("aurora-cluster", 60.0, "failed")]
    for position, (kind, window, status) in enumerate(steps):
        row.steps.append(
            StepRow(
                position=position, component=f"c{position}", kind=kind, status=status, data_loss_window_seconds=window
            )
        )
    record = record_of(row, deployed_at=T0 - timedelta(minutes=5))
    assert record.kinds == ("aurora-cluster", "dynamodb-table", "secret")
    assert record.drill and record.unnecessary is False
    assert not record.data_loss  # the one restore with a window failed: nothing was lost
    assert record.time_to_detect() == 300.0  # no detected_at: the rollback's creation
    row.steps[1].data_loss_window_seconds = 42.0  # a restore that went through, with writes after the backup
    assert record_of(row, None).data_loss


def test_report_is_plain_json() -> None:
    data = json.loads(json.dumps(compute(TABLE, Targets(), "prod", T0).to_dict()))
    assert data["env"] == "prod" and data["since"] == T0.isoformat()
    assert data["targets"]["mean_time_to_restore"] == 900.0 and data["targets"]["mean_time_to_detect"] is None
    overall = data["incidents"]["overall"]
    assert overall["time_to_restore"] == {"count": 3, "mean": 700.0, "p95": 1200.0}
    assert overall["checks"]["success_rate"] == {"value": 0.75, "target": 0.95, "status": "missed"}
    assert data["drills"]["by_env"]["prod"]["rollbacks"] == 1


def test_restored_unhealthy_is_counted_with_its_share_and_is_no_success() -> None:
    table = [
        rb("a", detect=0, finish=60),
        rb("b", status="restored-unhealthy", detect=0, finish=120),
        rb("c", status="failed", detect=0, finish=30),
        rb("d", status="restored-unhealthy", detect=0, finish=90),
    ]
    group = group_kpis(table, Targets())
    assert (group.finished, group.ran, group.succeeded) == (4, 4, 1)
    assert group.restored_unhealthy == 2 and group.restored_unhealthy_share == 0.5
    assert group.success_rate == 0.25
    assert group.time_to_restore.count == 1  # the service was not restored by the unhealthy ones
    assert group_kpis([rb("x", status="running")], Targets()).restored_unhealthy_share is None
