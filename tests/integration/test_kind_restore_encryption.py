"""Encryption of restored copies (dynamodb-table, aurora-cluster, rds-instance) on moto's server.

The requests are real calls to moto, their parameters read on the way out (botocore's provide-client-params
event), not stubbed. moto ignores DynamoDB's SSESpecificationOverride (its restored tables use DynamoDB's own
key), which is how the check's failure path is shown; the passing path uses a copy made with the asked key, as
AWS would make it, found by the retried step.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.errors import StepFailed
from lastgood.kinds import _restore
from lastgood.kinds.aurora_cluster import AuroraCluster, AuroraClusterSpec
from lastgood.kinds.base import KindContext
from lastgood.kinds.dynamodb_table import DynamoDbTable, DynamoDbTableSpec
from lastgood.kinds.rds_instance import RdsInstance, RdsInstanceSpec

pytestmark = [pytest.mark.aws, pytest.mark.slow]  # moto restores and copies: seconds each on a loaded machine

POINTER = "/shop/prod/orders-table"
TOKEN = "rb-0000000009-orders"


def _sent(aws: AwsClients, service: str, operation: str) -> list[dict[str, Any]]:
    """The parameters of every `operation` call the client sends from now on."""
    calls: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        calls.append(dict(params))

    aws.client(service).meta.events.register(f"provide-client-params.{service}.{operation}", capture)
    return calls


def _key(aws: AwsClients, alias: str | None = None) -> str:
    kms = aws.client("kms")
    arn = str(kms.create_key(Description="shop")["KeyMetadata"]["Arn"])
    if alias:
        kms.create_alias(AliasName=alias, TargetKeyId=arn)
    return arn


def _table(aws: AwsClients, name: str, key: str | None = None) -> None:
    client = aws.client("dynamodb")
    extra = {"SSESpecification": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key}} if key else {}
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    client.put_item(TableName=name, Item={"pk": {"S": "order-1"}})


def _orders(aws: AwsClients, key: str | None = None) -> datetime:
    _table(aws, "orders", key)
    aws.client("ssm").put_parameter(Name=POINTER, Value="orders", Type="String")
    described = aws.client("dynamodb").update_continuous_backups(
        TableName="orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    latest: datetime = described["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
        "LatestRestorableDateTime"
    ]
    return latest


def _ctx(aws: AwsClients, at: datetime) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws, token=TOKEN, now=lambda: at)


def _table_spec(**extra: Any) -> DynamoDbTableSpec:
    return DynamoDbTableSpec.model_validate(
        {"name": "orders", "table": "orders", "pointer": {"ssm_parameter": POINTER}, **extra}
    )


def _pointer(aws: AwsClients) -> str:
    return str(aws.client("ssm").get_parameter(Name=POINTER)["Parameter"]["Value"])


def test_dynamodb_restore_keeps_the_source_key_and_checks_it(aws: AwsClients) -> None:
    key = _key(aws)
    at = _orders(aws, key)
    kind, spec = DynamoDbTable(), _table_spec()
    recorded = kind.read(spec, _ctx(aws, at))
    change = kind.plan(spec, kind.read(spec, _ctx(aws, at + timedelta(minutes=5))), recorded)
    assert change is not None and any("the source table's key (passed to the restore)" in n for n in change.notes)

    sent = _sent(aws, "dynamodb", "RestoreTableToPointInTime")
    kind.apply(spec, _ctx(aws, at), recorded)
    assert sent == [
        {
            "SourceTableName": "orders",
            "TargetTableName": _restore.copy_name("orders", TOKEN),
            "RestoreDateTime": at,
            "SSESpecificationOverride": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key},
        }
    ]
    # moto dropped the override: the copy uses DynamoDB's own key, so the check refuses to switch the pointer.
    with pytest.raises(StepFailed, match=f"encrypted with DynamoDB's own key, expected KMS key {key}"):
        kind.verify(spec, _ctx(aws, at), recorded)
    assert _pointer(aws) == "orders"


def test_dynamodb_copy_with_the_files_key_passes_by_alias(aws: AwsClients) -> None:
    at = _orders(aws)
    key = _key(aws, alias="alias/shop-restore")
    kind, spec = (
        DynamoDbTable(),
        _table_spec(encryption={"kms_key": "alias/shop-restore"}, checks={"count_tolerance": None}),
    )
    recorded = kind.read(spec, _ctx(aws, at))
    copy = _restore.copy_name("orders", TOKEN)
    _table(aws, copy, key)  # what AWS makes of the override: found and reused by the step
    assert kind.verify(spec, _ctx(aws, at), recorded) == []
    assert _pointer(aws) == copy

    # The same copy fails against another key: it was not encrypted as the file asks.
    other = _key(aws)
    wrong = _table_spec(encryption={"kms_key": other}, checks={"count_tolerance": None})
    aws.client("ssm").put_parameter(Name=POINTER, Value="orders", Overwrite=True)
    aws.client("dynamodb").untag_resource(
        ResourceArn=aws.client("dynamodb").describe_table(TableName=copy)["Table"]["TableArn"],
        TagKeys=[_restore.TAG_SOURCE, _restore.TAG_AT],
    )
    with pytest.raises(StepFailed, match=f"encrypted with KMS key {key}, expected {other}"):
        kind.verify(wrong, _ctx(aws, at), recorded)


def test_dynamodb_aws_owned_key_is_asked_for_explicitly(aws: AwsClients) -> None:
    at = _orders(aws, _key(aws))
    kind, spec = DynamoDbTable(), _table_spec(encryption={"kms_key": "aws-owned"})
    recorded = kind.read(spec, _ctx(aws, at))
    sent = _sent(aws, "dynamodb", "RestoreTableToPointInTime")
    kind.apply(spec, _ctx(aws, at), recorded)
    assert sent[0]["SSESpecificationOverride"] == {"Enabled": False}
    assert kind.verify(spec, _ctx(aws, at), recorded) == []
    assert _pointer(aws) == _restore.copy_name("orders", TOKEN)


def test_dynamodb_source_without_a_key_sends_no_override(aws: AwsClients) -> None:
    at = _orders(aws)
    kind, spec = DynamoDbTable(), _table_spec()
    recorded = kind.read(spec, _ctx(aws, at))
    sent = _sent(aws, "dynamodb", "RestoreTableToPointInTime")
    kind.apply(spec, _ctx(aws, at), recorded)
    assert "SSESpecificationOverride" not in sent[0]
    assert kind.verify(spec, _ctx(aws, at), recorded) == []


def _aurora(aws: AwsClients, key: str) -> str:
    client = aws.client("rds")
    cluster = client.create_db_cluster(
        DBClusterIdentifier="shop-aurora",
        Engine="aurora-postgresql",
        MasterUsername="shop",
        MasterUserPassword="password-1",
        BackupRetentionPeriod=7,
        StorageEncrypted=True,
        KmsKeyId=key,
    )["DBCluster"]
    client.create_db_instance(
        DBInstanceIdentifier="shop-aurora-1",
        DBClusterIdentifier="shop-aurora",
        Engine="aurora-postgresql",
        DBInstanceClass="db.r6g.large",
    )
    aws.client("ssm").put_parameter(Name=POINTER, Value=cluster["Endpoint"], Type="String")
    return str(cluster["Endpoint"])


def _aurora_spec(**extra: Any) -> AuroraClusterSpec:
    return AuroraClusterSpec.model_validate(
        {"name": "db", "cluster": "shop-aurora", "pointer": {"ssm_parameter": POINTER}, **extra}
    )


def _finish(kind: AuroraCluster, spec: AuroraClusterSpec, ctx: KindContext, target: dict[str, Any]) -> None:
    for _ in range(5):
        if not kind.verify(spec, ctx, target):
            return
    pytest.fail("the restore did not finish")


@pytest.mark.slow
def test_aurora_restore_with_the_files_key(aws: AwsClients) -> None:
    source_key, new_key = _key(aws), _key(aws)
    endpoint = _aurora(aws, source_key)
    kind, spec = AuroraCluster(), _aurora_spec(encryption={"kms_key": new_key, "storage_encrypted": True})
    at = datetime.now(UTC)
    recorded = kind.record(spec, _ctx(aws, at))
    change = kind.plan(spec, kind.read(spec, _ctx(aws, at)), recorded)
    assert change is not None
    assert any(f"KMS key {new_key} (the file's), StorageEncrypted True required" in n for n in change.notes)
    sent = _sent(aws, "rds", "RestoreDBClusterToPointInTime")
    kind.apply(spec, _ctx(aws, at), recorded)
    assert sent[0]["KmsKeyId"] == new_key
    _finish(kind, spec, _ctx(aws, at), recorded)
    copy = aws.client("rds").describe_db_clusters(
        DBClusterIdentifier=_restore.copy_name("shop-aurora", TOKEN, 56, rds=True)
    )
    described = copy["DBClusters"][0]
    assert described["StorageEncrypted"] is True and described["KmsKeyId"] == new_key
    assert _pointer(aws) == described["Endpoint"] != endpoint


@pytest.mark.slow
def test_aurora_copy_under_another_key_is_not_switched_to(aws: AwsClients) -> None:
    """Default: as the source. A copy with another key (made by hand, found by the step) fails the check."""
    source_key = _key(aws)
    endpoint = _aurora(aws, source_key)
    kind, spec = AuroraCluster(), _aurora_spec()
    at = datetime.now(UTC)
    recorded = kind.record(spec, _ctx(aws, at))
    sent = _sent(aws, "rds", "RestoreDBClusterToPointInTime")
    copy = _restore.copy_name("shop-aurora", TOKEN, 56, rds=True)
    aws.client("rds").create_db_cluster(
        DBClusterIdentifier=copy,
        Engine="aurora-postgresql",
        MasterUsername="shop",
        MasterUserPassword="password-1",
        StorageEncrypted=True,
        KmsKeyId=_key(aws),
    )
    kind.apply(spec, _ctx(aws, at), recorded)
    assert sent == []  # the existing copy is reused, no restore is sent
    with pytest.raises(StepFailed, match=f"is not encrypted as asked.*expected {source_key}"):
        kind.verify(spec, _ctx(aws, at), recorded)
    assert _pointer(aws) == endpoint


@pytest.mark.slow
def test_rds_instance_restores_a_copy_of_the_snapshot_made_with_the_files_key(aws: AwsClients) -> None:
    key = _key(aws, alias="alias/shop-db")
    described = aws.client("rds").create_db_instance(
        DBInstanceIdentifier="shop-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="shop",
        MasterUserPassword="password-1",
        AllocatedStorage=20,
        BackupRetentionPeriod=7,
    )["DBInstance"]
    aws.client("ssm").put_parameter(Name=POINTER, Value=described["Endpoint"]["Address"], Type="String")
    spec = RdsInstanceSpec.model_validate(
        {
            "name": "db",
            "instance": "shop-db",
            "pointer": {"ssm_parameter": POINTER},
            "snapshot_on_record": True,
            "restore_from": "snapshot",
            "encryption": {"kms_key": "alias/shop-db"},
        }
    )
    kind, at = RdsInstance(), datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    recorded = kind.record(spec, _ctx(aws, at))
    copies = _sent(aws, "rds", "CopyDBSnapshot")
    assert kind.apply(spec, _ctx(aws, at), recorded).detail.startswith(f"copying snapshot {recorded['snapshot']}")
    assert copies == [
        {
            "SourceDBSnapshotIdentifier": recorded["snapshot"],
            "TargetDBSnapshotIdentifier": f"{recorded['snapshot']}-rekeyed-{_restore.short_token('alias/shop-db')}",
            "KmsKeyId": "alias/shop-db",
            "CopyTags": True,
        }
    ]
    for _ in range(6):
        if not kind.verify(spec, _ctx(aws, at), recorded):
            break
    else:
        pytest.fail("the restore did not finish")
    assert len(copies) == 1  # the re-keyed snapshot is found again, not copied twice
    copy = _restore.copy_name("shop-db", TOKEN, 63, rds=True)
    restored = aws.client("rds").describe_db_instances(DBInstanceIdentifier=copy)["DBInstances"][0]
    assert restored["StorageEncrypted"] is True and restored["KmsKeyId"] == key
    assert _pointer(aws) == restored["Endpoint"]["Address"]


@pytest.mark.parametrize(
    ("component", "expected"),
    [
        (
            "{name: d, kind: dynamodb-table, table: t, pointer: {ssm_parameter: /p}, encryption: {kms_key: ''}}",
            "kms_key",
        ),
        ("{name: d, kind: dynamodb-table, table: t, pointer: {ssm_parameter: /p}, encryption: {key: x}}", "key"),
        (
            "{name: d, kind: aurora-cluster, cluster: c, pointer: {ssm_parameter: /p}, "
            "encryption: {storage_encrypted: maybe}}",
            "storage_encrypted",
        ),
        (
            "{name: d, kind: rds-instance, instance: i, pointer: {ssm_parameter: /p}, encryption: {kms_key: alias/x}}",
            "encryption.kms_key needs restore_from: snapshot",
        ),
    ],
)
def test_bad_encryption_is_exit_2(
    component: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(f"app: shop\nenvironments: {{prod: {{}}}}\ncomponents:\n  - {component}\n")
    assert main(["validate", "-f", str(file)]) == 2
    assert expected in capsys.readouterr().err
