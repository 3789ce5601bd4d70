"""dynamodb-table against the moto server: record -> change -> plan -> restore into a new table -> verify.

moto's RestoreTableToPointInTime copies the source as it is when called (no time travel) and reports a fixed
restorable window (set when point-in-time recovery is turned on), so these tests record at that moment and
check the mechanics: a new copy, its lineage, the checks, the pointer, and that the original is never touched.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.errors import StepFailed
from lastgood.kinds import _restore, dynamodb_table
from lastgood.kinds.base import KindContext
from lastgood.kinds.dynamodb_table import DynamoDbTable, DynamoDbTableSpec
from lastgood.kinds.registry import get_kind

POINTER = "/shop/prod/orders-table"


def _orders(aws: AwsClients, items: int = 10, pitr: bool = True) -> datetime | None:
    """The app's table with `items` orders, named by an SSM pointer; returns the restorable point (moto)."""
    client = aws.client("dynamodb")
    client.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=[{"Key": "team", "Value": "shop"}],
    )
    for n in range(items):
        client.put_item(TableName="orders", Item={"pk": {"S": f"order-{n}"}, "status": {"S": "paid"}})
    aws.client("ssm").put_parameter(Name=POINTER, Value="orders", Type="String")
    if not pitr:
        return None
    client.update_time_to_live(TableName="orders", TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"})
    described = client.update_continuous_backups(
        TableName="orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    latest: datetime = described["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
        "LatestRestorableDateTime"
    ]
    return latest


def _ctx(aws: AwsClients, at: datetime, token: str = "lastgood", events: list[str] | None = None) -> KindContext:
    log = events if events is not None else []
    return KindContext(app="shop", env="prod", aws=aws, token=token, now=lambda: at, progress=log.append)


def _spec(**extra: Any) -> DynamoDbTableSpec:
    return DynamoDbTableSpec.model_validate(
        {"name": "orders", "table": "orders", "pointer": {"ssm_parameter": POINTER}, **extra}
    )


def _pointer(aws: AwsClients) -> str:
    return str(aws.client("ssm").get_parameter(Name=POINTER)["Parameter"]["Value"])


def _item_count(aws: AwsClients, table: str) -> int:
    return int(aws.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"])


@pytest.mark.slow
def test_restore_into_new_table_then_switch_pointer(aws: AwsClients) -> None:
    recorded_at = _orders(aws)
    assert recorded_at is not None
    kind = get_kind("dynamodb-table")
    assert isinstance(kind, DynamoDbTable)
    spec = _spec(
        checks={
            "sample_keys": [{"pk": "order-3"}],
            "queries": [{"filter": "#s = :s", "names": {"#s": "status"}, "values": {":s": "paid"}, "expect_count": 10}],
        }
    )
    recorded = kind.read(spec, _ctx(aws, recorded_at))
    assert recorded == {
        "table": "orders",
        "exists": True,
        "item_count": 10,
        "pitr": True,
        "recorded_at": recorded_at.isoformat(),
        "backup_arn": None,
        "restored_for": None,
    }
    assert kind.warnings(spec, recorded) == []

    # The release is bad: it rewrote an order. The pointer still names the original table, whose data changed.
    aws.client("dynamodb").put_item(TableName="orders", Item={"pk": {"S": "order-1"}, "status": {"S": "lost"}})
    later = recorded_at + timedelta(minutes=30)
    change = kind.plan(spec, kind.read(spec, _ctx(aws, later)), recorded)
    assert change is not None and change.slow and not change.destructive
    assert change.action == "restore-copy"
    assert change.data_loss_window_seconds == 1800.0
    assert any("orders-restored-<id>" in n and "not touched" in n for n in change.notes)
    assert any(f"SSM parameter {POINTER}" in n for n in change.notes)
    assert any("30m" in n for n in change.notes)

    spec = _spec(checks={"sample_keys": [{"pk": "order-3"}], "count_tolerance": 0.0})
    events: list[str] = []
    step = _ctx(aws, later, token="rb-0000000001-orders", events=events)
    copy = _restore.copy_name("orders", step.token)
    result = kind.apply(spec, step, recorded)
    assert result.changed and copy in result.detail and _pointer(aws) == "orders"
    assert kind.verify(spec, step, recorded) == []
    assert _pointer(aws) == copy
    assert any(f"table {copy} is ACTIVE" == e for e in events)
    assert any("now names" in e for e in events)

    client = aws.client("dynamodb")
    arn = client.describe_table(TableName=copy)["Table"]["TableArn"]
    tags = {t["Key"]: t["Value"] for t in client.list_tags_of_resource(ResourceArn=arn)["Tags"]}
    assert tags[_restore.TAG_SOURCE] == "orders" and tags[_restore.TAG_AT] == recorded_at.isoformat()
    assert tags["team"] == "shop"
    pitr = client.describe_continuous_backups(TableName=copy)["ContinuousBackupsDescription"]
    assert pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert client.describe_time_to_live(TableName=copy)["TimeToLiveDescription"]["AttributeName"] == "exp"
    # The original is untouched: same items, still there.
    assert _item_count(aws, "orders") == 10

    # Lineage, not the name: the pointer names the copy, yet the component is at the release.
    now_state = kind.read(spec, _ctx(aws, later))
    assert now_state["restored_for"] == {"source": "orders", "at": recorded_at.isoformat()}
    assert kind.plan(spec, now_state, recorded) is None
    assert not kind.apply(spec, step, recorded).changed
    assert not kind.apply(spec, _ctx(aws, later, token="rb-other-orders"), recorded).changed
    assert kind.verify(spec, _ctx(aws, later, token="rb-other-orders"), recorded) == []


@pytest.mark.slow
def test_a_retried_start_reuses_the_copy(aws: AwsClients) -> None:
    recorded_at = _orders(aws)
    assert recorded_at is not None
    kind, spec = DynamoDbTable(), _spec()
    recorded = kind.read(spec, _ctx(aws, recorded_at))
    step = _ctx(aws, recorded_at + timedelta(minutes=5), token="rb-0000000002-orders")
    first = kind.apply(spec, step, recorded)
    again = kind.apply(spec, step, recorded)  # the process died after starting the restore
    assert "restoring" in first.detail and "reusing" in again.detail
    assert kind.verify(spec, step, recorded) == []
    tables = aws.client("dynamodb").list_tables()["TableNames"]
    assert sorted(tables) == sorted(["orders", _restore.copy_name("orders", step.token)])


@pytest.mark.slow
def test_a_retry_that_does_not_see_the_copy_yet_reuses_it(aws: AwsClients, monkeypatch: pytest.MonkeyPatch) -> None:
    # The first restore's answer was lost and the retry's describe misses the new table (eventual consistency):
    # the restore sent again is refused with TableAlreadyExistsException, which means the copy is ours.
    recorded_at = _orders(aws)
    assert recorded_at is not None
    kind, spec = DynamoDbTable(), _spec()
    recorded = kind.read(spec, _ctx(aws, recorded_at))
    step = _ctx(aws, recorded_at + timedelta(minutes=5), token="rb-0000000003-orders")
    copy = _restore.copy_name("orders", step.token)
    assert "restoring" in kind.apply(spec, step, recorded).detail
    real = dynamodb_table._describe
    monkeypatch.setattr(dynamodb_table, "_describe", lambda ctx, table: None if table == copy else real(ctx, table))
    assert "reusing" in kind.apply(spec, step, recorded).detail


@pytest.mark.slow
def test_failed_check_leaves_the_pointer_alone(aws: AwsClients) -> None:
    recorded_at = _orders(aws)
    assert recorded_at is not None
    kind = DynamoDbTable()
    spec = _spec(checks={"sample_keys": [{"pk": "order-404"}], "min_items": 50})
    recorded = kind.read(spec, _ctx(aws, recorded_at))
    step = _ctx(aws, recorded_at + timedelta(minutes=5), token="rb-0000000003-orders")
    kind.apply(spec, step, recorded)
    with pytest.raises(StepFailed, match=r"failed its checks.*NOT switched.*fewer than min_items 50.*order-404"):
        kind.verify(spec, step, recorded)
    assert _pointer(aws) == "orders"


@pytest.mark.slow
def test_count_tolerance_compares_with_the_recorded_count(aws: AwsClients) -> None:
    recorded_at = _orders(aws, items=20)
    assert recorded_at is not None
    kind, spec = DynamoDbTable(), _spec(checks={"count_tolerance": 0.1})
    recorded = kind.read(spec, _ctx(aws, recorded_at))
    client = aws.client("dynamodb")
    for n in range(5):  # moto restores the table as it is now: 15 items against 20 recorded
        client.delete_item(TableName="orders", Key={"pk": {"S": f"order-{n}"}})
    step = _ctx(aws, recorded_at, token="rb-0000000004-orders")
    kind.apply(spec, step, recorded)
    with pytest.raises(StepFailed, match=r"15 items, but 20 were recorded \(tolerance 10%\)"):
        kind.verify(spec, step, recorded)


@pytest.mark.slow
def test_pitr_off_warns_at_record_and_fails_clearly(aws: AwsClients) -> None:
    _orders(aws, pitr=False)
    kind, spec = DynamoDbTable(), _spec()
    now = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    recorded = kind.read(spec, _ctx(aws, now))
    assert recorded["pitr"] is False
    assert any("point-in-time recovery is OFF for orders" in w for w in kind.warnings(spec, recorded))
    change = kind.plan(spec, kind.read(spec, _ctx(aws, now)), recorded)
    assert change is not None and any("OFF" in n for n in change.notes)
    with pytest.raises(StepFailed, match="point-in-time recovery is off for orders"):
        kind.apply(spec, _ctx(aws, now, token="rb-0000000005-orders"), recorded)
    assert aws.client("dynamodb").list_tables()["TableNames"] == ["orders"]


@pytest.mark.slow
def test_waits_while_the_recorded_point_is_not_restorable_yet(aws: AwsClients) -> None:
    latest = _orders(aws)
    assert latest is not None
    kind, spec = DynamoDbTable(), _spec()
    recorded = kind.read(spec, _ctx(aws, latest + timedelta(minutes=2)))
    step = _ctx(aws, latest + timedelta(minutes=3), token="rb-0000000006-orders")
    result = kind.apply(spec, step, recorded)
    assert result.detail.startswith("waiting until orders is restorable")
    assert kind.verify(spec, step, recorded)[0].startswith("waiting until orders is restorable")
    assert aws.client("dynamodb").list_tables()["TableNames"] == ["orders"]


@pytest.mark.slow
def test_restore_from_the_backup_taken_at_record(aws: AwsClients) -> None:
    _orders(aws, pitr=False)
    kind, spec = DynamoDbTable(), _spec(backup=True, restore_from="backup")
    now = datetime.fromisoformat("2026-01-01T00:00:00+00:00")
    recorded = kind.record(spec, _ctx(aws, now))
    assert recorded["backup_arn"] and "/backup/" in recorded["backup_arn"]
    assert kind.warnings(spec, recorded) == []
    step = _ctx(aws, now + timedelta(hours=1), token="rb-0000000007-orders")
    assert kind.apply(spec, step, recorded).detail.startswith("restoring the backup of orders")
    assert kind.verify(spec, step, recorded) == []
    assert _pointer(aws) == _restore.copy_name("orders", step.token)
    assert kind.plan(spec, kind.read(spec, step), recorded) is None


def test_spec_and_iam() -> None:
    with pytest.raises(ValueError, match="restore_from: backup needs backup: true"):
        _spec(restore_from="backup")
    with pytest.raises(ValueError, match="key_condition"):
        _spec(checks={"queries": [{"expect_count": 1}]})
    from lastgood.kinds.base import IamScope

    statements = DynamoDbTable().iam_statements(_spec(), IamScope(region="eu-west-1", account="123"))
    writes = [s for s in statements if "dynamodb:PutItem" in s.actions]
    assert writes and writes[0].resources == ("arn:aws:dynamodb:eu-west-1:123:table/orders-restored-*",)
    everything = {r for s in statements for r in s.resources}
    assert "arn:aws:ssm:eu-west-1:123:parameter/shop/prod/orders-table" in everything
