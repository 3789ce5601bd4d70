"""rds-instance and aurora-cluster against the moto server: record -> plan -> restore into a new copy -> verify.

Stubber-only paths: an RDS instance copy that stays `creating` / `backing-up` across verify polls (moto makes
instances `available` at once), with progress reported on status changes only.
moto restores copy the source as it is (no time travel) and report LatestRestorableTime as "now", so these tests
check the mechanics: a new copy with the source's settings and lineage tags, the pointer, the original untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from lastgood.aws.clients import AwsClients
from lastgood.errors import StepFailed
from lastgood.kinds import _restore
from lastgood.kinds.aurora_cluster import AuroraCluster, AuroraClusterSpec
from lastgood.kinds.base import IamScope, KindContext
from lastgood.kinds.rds_instance import RdsInstance, RdsInstanceSpec
from lastgood.kinds.registry import get_kind

POINTER = "/shop/prod/db-host"


def _ctx(aws: AwsClients, at: datetime, token: str = "lastgood", events: list[str] | None = None) -> KindContext:
    log = events if events is not None else []
    return KindContext(app="shop", env="prod", aws=aws, token=token, now=lambda: at, progress=log.append)


def _pointer(aws: AwsClients) -> str:
    return str(aws.client("ssm").get_parameter(Name=POINTER)["Parameter"]["Value"])


def _instance(aws: AwsClients, retention: int = 7) -> str:
    described = aws.client("rds").create_db_instance(
        DBInstanceIdentifier="shop-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="shop",
        MasterUserPassword="password-1",
        AllocatedStorage=20,
        BackupRetentionPeriod=retention,
        DeletionProtection=True,
        Tags=[{"Key": "team", "Value": "shop"}],
    )["DBInstance"]
    address = str(described["Endpoint"]["Address"])
    aws.client("ssm").put_parameter(Name=POINTER, Value=address, Type="String")
    return address


def _instance_spec(**extra: Any) -> RdsInstanceSpec:
    return RdsInstanceSpec.model_validate(
        {"name": "db", "instance": "shop-db", "pointer": {"ssm_parameter": POINTER}, **extra}
    )


@pytest.mark.slow
def test_rds_instance_restores_into_a_new_instance(aws: AwsClients) -> None:
    address = _instance(aws)
    kind = get_kind("rds-instance")
    assert isinstance(kind, RdsInstance)
    spec = _instance_spec(instance_class="db.t3.small")
    recorded_at = datetime.now(UTC) - timedelta(seconds=30)
    recorded = kind.record(spec, _ctx(aws, recorded_at))
    assert recorded["instance"] == "shop-db" and recorded["endpoint"] == address and recorded["exists"]
    assert recorded["backup_retention"] == 7 and recorded["restored_for"] is None and recorded["snapshot"] is None
    assert kind.warnings(spec, recorded) == []

    later = recorded_at + timedelta(hours=1)
    change = kind.plan(spec, kind.read(spec, _ctx(aws, later)), recorded)
    assert change is not None and change.slow and not change.destructive and change.estimate_seconds == 1200
    assert change.data_loss_window_seconds == 3600.0
    assert any("shop-db-restored-<id>" in n and "not touched" in n for n in change.notes)

    events: list[str] = []
    step = _ctx(aws, later, token="rb-0000000001-db", events=events)
    copy = _restore.copy_name("shop-db", step.token, 63, rds=True)
    result = kind.apply(spec, step, recorded)
    assert result.changed and f"into instance {copy}" in result.detail
    assert kind.verify(spec, step, recorded) == []
    new = aws.client("rds").describe_db_instances(DBInstanceIdentifier=copy)["DBInstances"][0]
    assert _pointer(aws) == new["Endpoint"]["Address"] != address
    assert new["DBInstanceClass"] == "db.t3.small" and new["DeletionProtection"] is True
    tags = {t["Key"]: t["Value"] for t in new["TagList"]}
    assert tags[_restore.TAG_SOURCE] == "shop-db" and tags[_restore.TAG_AT] == recorded_at.isoformat()
    assert tags["team"] == "shop"
    assert f"instance {copy} is available" in events
    original = aws.client("rds").describe_db_instances(DBInstanceIdentifier="shop-db")["DBInstances"][0]
    assert original["DBInstanceClass"] == "db.t3.micro" and original["DBInstanceStatus"] == "available"

    now_state = kind.read(spec, _ctx(aws, later))
    assert now_state["instance"] == copy
    assert now_state["restored_for"] == {"source": "shop-db", "at": recorded_at.isoformat()}
    assert kind.plan(spec, now_state, recorded) is None
    again = kind.apply(spec, step, recorded)
    assert not again.changed and again.observed is not None
    assert kind.differences(spec, again.observed, recorded) == []


@pytest.mark.slow
def test_rds_instance_from_the_snapshot_taken_at_record(aws: AwsClients) -> None:
    _instance(aws)
    kind, spec = RdsInstance(), _instance_spec(snapshot_on_record=True, restore_from="snapshot")
    recorded_at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    recorded = kind.record(spec, _ctx(aws, recorded_at))
    assert recorded["snapshot"] == "lastgood-shop-db-20260301-120000-000000"
    assert kind.record(spec, _ctx(aws, recorded_at))["snapshot"] == recorded["snapshot"]  # a retried record
    step = _ctx(aws, recorded_at + timedelta(days=1), token="rb-0000000002-db")
    assert kind.apply(spec, step, recorded).detail.startswith(
        "restoring snapshot lastgood-shop-db-20260301-120000-000000"
    )
    assert kind.apply(spec, step, recorded).detail.endswith("exists from an earlier attempt; reusing it")
    assert kind.verify(spec, step, recorded) == []
    assert _pointer(aws).startswith(_restore.copy_name("shop-db", step.token, 63, rds=True) + ".")


@pytest.mark.slow
def test_rds_instance_waits_for_the_restorable_window(aws: AwsClients) -> None:
    _instance(aws)
    kind, spec = RdsInstance(), _instance_spec()
    future = datetime.now(UTC) + timedelta(hours=1)  # later than moto's LatestRestorableTime (now)
    recorded = kind.read(spec, _ctx(aws, future))
    step = _ctx(aws, future, token="rb-0000000003-db")
    assert kind.apply(spec, step, recorded).detail.startswith("waiting until shop-db is restorable")
    assert kind.verify(spec, step, recorded)[0].startswith("waiting until shop-db is restorable")
    assert [d["DBInstanceIdentifier"] for d in aws.client("rds").describe_db_instances()["DBInstances"]] == ["shop-db"]


@pytest.mark.slow
def test_rds_instance_without_backups_cannot_be_restored(aws: AwsClients) -> None:
    _instance(aws, retention=0)
    kind, spec = RdsInstance(), _instance_spec()
    recorded = kind.read(spec, _ctx(aws, datetime.now(UTC)))
    assert any("automated backups are off for shop-db" in w for w in kind.warnings(spec, recorded))
    with pytest.raises(StepFailed, match="automated backups are off for shop-db"):
        kind.apply(spec, _ctx(aws, datetime.now(UTC), token="rb-0000000004-db"), recorded)


@pytest.mark.slow
def test_pointer_at_an_unknown_endpoint(aws: AwsClients) -> None:
    _instance(aws)
    aws.client("ssm").put_parameter(Name=POINTER, Value="db.example.internal", Type="String", Overwrite=True)
    kind, spec = RdsInstance(), _instance_spec()
    recorded = kind.read(spec, _ctx(aws, datetime.now(UTC)))
    assert recorded["exists"] is False and recorded["instance"] is None
    assert "not the endpoint of any instance" in kind.warnings(spec, recorded)[0]
    with pytest.raises(StepFailed, match=r"recorded no instance behind db\.example\.internal"):
        kind.apply(spec, _ctx(aws, datetime.now(UTC), token="rb-0000000005-db"), recorded)


def _db(identifier: str, status: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "DBInstanceIdentifier": identifier,
        "DBInstanceClass": "db.t3.micro",
        "DBInstanceStatus": status,
        "Endpoint": {"Address": f"{identifier}.aaaaaaaaaa.us-east-1.rds.amazonaws.com", "Port": 5432},
        "BackupRetentionPeriod": 7,
        "TagList": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
    }


@pytest.mark.slow
def test_rds_instance_progress_while_the_copy_is_being_made(aws: AwsClients) -> None:
    """Stubber: moto never shows a `creating` instance. Progress is reported on status changes only."""
    address = "shop-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com"
    aws.client("ssm").put_parameter(Name=POINTER, Value=address, Type="String")
    kind, spec = RdsInstance(), _instance_spec()
    recorded_at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    recorded = {
        "instance": "shop-db",
        "endpoint": address,
        "reader": False,
        "exists": True,
        "status": "available",
        "recorded_at": recorded_at.isoformat(),
        "latest_restorable": None,
        "backup_retention": 7,
        "snapshot": None,
        "restored_for": None,
    }
    events: list[str] = []
    step = _ctx(aws, recorded_at + timedelta(hours=1), token="rb-0000000006-db", events=events)
    copy = _restore.copy_name("shop-db", step.token, 63, rds=True)
    lineage = _restore.lineage_tags("shop-db", recorded_at.isoformat(), step.token)
    client = aws.client("rds")
    stubber = Stubber(client)
    for status in ("creating", "creating", "backing-up", "available"):
        stubber.add_response(
            "describe_db_instances", {"DBInstances": [_db("shop-db", "available")]}, {"DBInstanceIdentifier": "shop-db"}
        )
        stubber.add_response(
            "describe_db_instances", {"DBInstances": [_db(copy, status, lineage)]}, {"DBInstanceIdentifier": copy}
        )
    # The available copy's encryption is compared with the source's before the switch.
    stubber.add_response(
        "describe_db_instances", {"DBInstances": [_db("shop-db", "available")]}, {"DBInstanceIdentifier": "shop-db"}
    )
    stubber.add_response(
        "describe_db_instances", {"DBInstances": [_db(copy, "available", lineage)]}, {"DBInstanceIdentifier": copy}
    )
    with stubber:
        assert kind.verify(spec, step, recorded) == [f"instance {copy} is creating"]
        assert kind.verify(spec, step, recorded) == [f"instance {copy} is creating"]
        assert kind.verify(spec, step, recorded) == [f"instance {copy} is backing-up"]
        assert kind.verify(spec, step, recorded) == []
        stubber.assert_no_pending_responses()
    assert events[:3] == [
        f"instance {copy} is creating",
        f"instance {copy} is backing-up",
        f"instance {copy} is available",
    ]
    assert _pointer(aws) == f"{copy}.aaaaaaaaaa.us-east-1.rds.amazonaws.com"


def _aurora(aws: AwsClients, reader: bool = False) -> dict[str, Any]:
    client = aws.client("rds")
    client.create_db_cluster(
        DBClusterIdentifier="shop-aurora",
        Engine="aurora-postgresql",
        MasterUsername="shop",
        MasterUserPassword="password-1",
        BackupRetentionPeriod=7,
        Port=5433,
        Tags=[{"Key": "team", "Value": "shop"}],
    )
    client.create_db_instance(
        DBInstanceIdentifier="shop-aurora-1",
        DBClusterIdentifier="shop-aurora",
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
    )
    cluster = client.describe_db_clusters(DBClusterIdentifier="shop-aurora")["DBClusters"][0]
    endpoint = cluster["ReaderEndpoint" if reader else "Endpoint"]
    aws.client("ssm").put_parameter(Name=POINTER, Value=endpoint, Type="String")
    return dict(cluster)


def _aurora_spec(**extra: Any) -> AuroraClusterSpec:
    return AuroraClusterSpec.model_validate(
        {"name": "db", "cluster": "shop-aurora", "pointer": {"ssm_parameter": POINTER}, **extra}
    )


@pytest.mark.slow
def test_aurora_restores_a_cluster_and_its_writer(aws: AwsClients) -> None:
    source = _aurora(aws)
    kind = get_kind("aurora-cluster")
    assert isinstance(kind, AuroraCluster)
    spec = _aurora_spec()
    recorded_at = datetime.now(UTC)
    recorded = kind.record(spec, _ctx(aws, recorded_at))
    assert recorded["cluster"] == "shop-aurora" and recorded["endpoint"] == source["Endpoint"]
    assert recorded["reader"] is False and recorded["backup_retention"] == 7
    change = kind.plan(spec, kind.read(spec, _ctx(aws, recorded_at + timedelta(minutes=10))), recorded)
    assert change is not None and change.data_loss_window_seconds == 600.0

    events: list[str] = []
    step = _ctx(aws, recorded_at + timedelta(minutes=10), token="rb-0000000007-db", events=events)
    copy = _restore.copy_name("shop-aurora", step.token, 56, rds=True)
    writer = copy + "-writer"
    assert kind.apply(spec, step, recorded).detail.endswith(f"into cluster {copy}")
    # moto answers the restore call with the cluster `creating` and is `available` from then on.
    assert kind.verify(spec, step, recorded) == [f"writer instance {writer} is being created"]
    assert _pointer(aws) == source["Endpoint"]  # not switched before the writer is there
    assert kind.verify(spec, step, recorded) == []
    rds = aws.client("rds")
    new = rds.describe_db_clusters(DBClusterIdentifier=copy)["DBClusters"][0]
    assert _pointer(aws) == new["Endpoint"] != source["Endpoint"]
    assert new["Port"] == 5433
    new_writer = rds.describe_db_instances(DBInstanceIdentifier=writer)["DBInstances"][0]
    assert new_writer["DBInstanceClass"] == "db.r6g.large"
    assert {"Key": "team", "Value": "shop"} in new_writer["TagList"]
    assert {"Key": _restore.TAG_SOURCE, "Value": "shop-aurora"} in new_writer["TagList"]
    assert events[:2] == [
        f"restoring shop-aurora as of {recorded_at.isoformat()} into {copy}",
        f"cluster {copy} is available",
    ]
    assert f"creating writer instance {writer} (db.r6g.large)" in events
    assert rds.describe_db_clusters(DBClusterIdentifier="shop-aurora")["DBClusters"][0]["Status"] == "available"

    assert kind.plan(spec, kind.read(spec, step), recorded) is None
    assert not kind.apply(spec, step, recorded).changed


@pytest.mark.slow
def test_aurora_reader_endpoint_from_a_snapshot(aws: AwsClients) -> None:
    source = _aurora(aws, reader=True)
    kind = AuroraCluster()
    spec = _aurora_spec(snapshot_on_record=True, restore_from="snapshot", instance_class="db.r6g.xlarge")
    recorded_at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    recorded = kind.record(spec, _ctx(aws, recorded_at))
    assert recorded["reader"] is True and recorded["endpoint"] == source["ReaderEndpoint"]
    assert recorded["snapshot"] == "lastgood-shop-aurora-20260301-120000-000000"
    step = _ctx(aws, recorded_at + timedelta(days=2), token="rb-0000000008-db")
    assert kind.apply(spec, step, recorded).detail.startswith("restoring snapshot lastgood-shop-aurora-20260301")
    for _ in range(5):
        if not kind.verify(spec, step, recorded):
            break
    else:
        pytest.fail("the restore did not finish")
    copy = _restore.copy_name("shop-aurora", step.token, 56, rds=True)
    new = aws.client("rds").describe_db_clusters(DBClusterIdentifier=copy)["DBClusters"][0]
    assert _pointer(aws) == new["ReaderEndpoint"]
    writer = aws.client("rds").describe_db_instances(DBInstanceIdentifier=copy + "-writer")["DBInstances"][0]
    assert writer["DBInstanceClass"] == "db.r6g.xlarge"


def test_specs_and_iam() -> None:
    with pytest.raises(ValueError, match="restore_from: snapshot needs snapshot_on_record: true"):
        _instance_spec(restore_from="snapshot")
    scope = IamScope(region="eu-west-1", account="123")
    instance = {r for s in RdsInstance().iam_statements(_instance_spec(), scope) for r in s.resources}
    assert "arn:aws:rds:eu-west-1:123:db:shop-db-restored-*" in instance
    assert "arn:aws:ssm:eu-west-1:123:parameter/shop/prod/db-host" in instance
    statements = AuroraCluster().iam_statements(_aurora_spec(), scope)
    restore = next(s for s in statements if "rds:RestoreDBClusterToPointInTime" in s.actions and len(s.actions) == 2)
    assert restore.resources == (
        "arn:aws:rds:eu-west-1:123:cluster:shop-aurora",
        "arn:aws:rds:eu-west-1:123:cluster:shop-aurora-restored-*",
    )
    long_name = AuroraCluster().copy_id(_aurora_spec(cluster="a" * 70), "rb-x")
    assert len(long_name + "-writer") == 63 and long_name.startswith("a")


RUNBOOK = """\
app: shop
state: sqlite:///.lastgood/state.db
environments:
  staging:
    aws: {{region: us-east-1, endpoint_url: "{endpoint}"}}
components:
  - name: db
    kind: rds-instance
    instance: shop-db
    pointer: {{ssm_parameter: /shop/prod/db-host}}
    snapshot_on_record: true
"""


@pytest.mark.slow
def test_rds_instance_through_the_cli(
    aws_env: Any, aws: AwsClients, tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from lastgood.cli.app import main

    def run(*args: str) -> tuple[int, Any]:
        code = main([*args, "--output", "json"])
        return code, json.loads(capsys.readouterr().out)

    (tmp_path / "lastgood.yaml").write_text(RUNBOOK.format(endpoint=aws_env.url))
    monkeypatch.chdir(tmp_path)
    address = _instance(aws)
    assert run("release", "record", "staging", "--version", "v1")[0] == 0
    assert run("release", "record", "staging", "--version", "v2")[0] == 0
    code, plan = run("plan", "staging")
    assert code == 0 and [s["component"] for s in plan["steps"]] == ["db"]
    step = plan["steps"][0]
    assert step["slow"] and not step["destructive"] and step["data_loss_window_seconds"] is not None
    code, result = run("rollback", "staging", "--yes")
    assert code == 0 and result["status"] == "succeeded", result
    assert _pointer(aws) != address and _pointer(aws).startswith("shop-db-restored-")
    code, again = run("plan", "staging", "--to", "v1")
    assert code == 0 and again["steps"] == [] and again["unchanged"] == ["db"]
    snapshots = aws.client("rds").describe_db_snapshots(DBInstanceIdentifier="shop-db")["DBSnapshots"]
    assert len([s for s in snapshots if s["DBSnapshotIdentifier"].startswith("lastgood-shop-db-")]) == 2
