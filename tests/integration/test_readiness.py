"""Rollback readiness against the moto server: record releases, delete what a release needs, see readiness say so.

Stubber-only paths: appconfig ListApplications, ListEnvironments, ListConfigurationProfiles and
GetHostedConfigurationVersion (moto 5.2 has no AppConfig environments, so the lookups share one stubbed client).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.config.loader import load_runbook
from lastgood.engine.readiness import check_env
from lastgood.engine.record import record_release
from lastgood.errors import AccessDenied, ResourceNotFound
from lastgood.kinds.base import KindContext, ReadinessCheck, State
from lastgood.kinds.cloudformation_stack import CloudFormationStack, CloudFormationStackSpec
from lastgood.kinds.dynamodb_table import DynamoDbTable, DynamoDbTableSpec
from lastgood.kinds.ecs_service import EcsService, EcsServiceSpec
from lastgood.kinds.feature_flag import FeatureFlag, FeatureFlagSpec
from lastgood.kinds.lambda_alias import LambdaAlias, LambdaAliasSpec
from lastgood.kinds.rds_instance import RdsInstance, RdsInstanceSpec
from lastgood.kinds.s3_prefix import S3Prefix, S3PrefixSpec
from lastgood.kinds.secret import Secret as SecretKind
from lastgood.kinds.secret import SecretSpec
from lastgood.kinds.ssm_parameter import SsmParameter, SsmParameterSpec
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.testing import shop

# The shop, through the CLI


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def readiness(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code, out, _err = run(capsys, "readiness", "prod", "-o", "json")
    return code, json.loads(out)


def statuses(data: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["label"], c["component"]): c["status"] for r in data["releases"] for c in r["components"]}


def detail(data: dict[str, Any], label: str, component: str) -> str:
    release = next(r for r in data["releases"] if r["label"] == label)
    return " ".join(k["detail"] for c in release["components"] if c["component"] == component for k in c["checks"])


def two_releases(capsys: pytest.CaptureFixture[str], aws: AwsClients) -> None:
    """v1 recorded; v2 = new Lambda versions (fully shifted), a changed parameter, a rotated secret."""
    assert run(capsys, "release", "record", "prod", "--version", "v1")[0] == 0
    s = shop.Shop("prod", ("shop-api-prod", "shop-worker-prod"), "/shop/prod/api/", "shop/prod/db")
    for name in s.functions:
        shop.shift_alias(aws, name, "1", shop.publish_new_version(aws, name, "v2"), 1.0)
    shop.deploy_config_change(aws, s, "v2")
    assert run(capsys, "release", "record", "prod", "--version", "v2")[0] == 0


COMPONENTS = ("api", "worker", "api-config", "db-credentials")


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_all_ok_until_a_lambda_version_is_deleted(shop_dir: Path, aws: AwsClients, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    two_releases(capsys, aws)
    code, data = readiness(capsys)
    assert code == 0 and data["ready"] is True
    assert statuses(data) == {(label, c): "ok" for label in ("v1", "v2") for c in COMPONENTS}
    assert [(r["label"], r["role"], r["status"]) for r in data["releases"]] == [
        ("v2", "live", "ok"),
        ("v1", "previous", "ok"),
    ]

    aws.client("lambda").delete_function(FunctionName="shop-api-prod", Qualifier="1")
    code, data = readiness(capsys)
    assert code == 1 and data["ready"] is False
    assert statuses(data)[("v1", "api")] == "impossible"
    assert statuses(data)[("v2", "api")] == "ok"
    assert detail(data, "v1", "api") == "shop-api-prod: version 1 no longer exists"
    assert [r["status"] for r in data["releases"]] == ["ok", "impossible"]

    code, out, _err = run(capsys, "readiness", "prod")
    assert code == 1
    assert "v1 (previous): impossible" in out and "v2 (live): ok" in out
    assert "status" in out and "detail" in out  # the table's header


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_deleted_parameter_is_impossible(shop_dir: Path, aws: AwsClients, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    two_releases(capsys, aws)
    aws.client("ssm").delete_parameter(Name="/shop/prod/api/pricing-engine")
    code, data = readiness(capsys)
    assert code == 1
    assert statuses(data)[("v1", "api-config")] == statuses(data)[("v2", "api-config")] == "impossible"
    assert "/shop/prod/api/pricing-engine: the parameter was deleted" in detail(data, "v1", "api-config")
    assert "/shop/prod/api/timeout-ms: version 1 is in the history" in detail(data, "v1", "api-config")


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_secret_version_without_a_staging_label_is_at_risk(
    shop_dir: Path, aws: AwsClients, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    two_releases(capsys, aws)
    secrets = aws.client("secretsmanager")
    # A second rotation takes AWSPREVIOUS from v1's version: it is deprecated now.
    secrets.put_secret_value(SecretId="shop/prod/db", SecretString='{"user": "shop", "password": "third"}')
    code, data = readiness(capsys)
    assert code == 1
    assert statuses(data)[("v1", "db-credentials")] == "at-risk"
    assert "has no staging label" in detail(data, "v1", "db-credentials")
    assert statuses(data)[("v2", "db-credentials")] == "ok"
    assert "AWSPREVIOUS" in detail(data, "v2", "db-credentials")


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_errors_of_a_kind_become_checks(shop_dir: Path, aws: AwsClients, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    two_releases(capsys, aws)

    def denied(self: LambdaAlias, spec: LambdaAliasSpec, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        raise AccessDenied("lambda:GetFunctionConfiguration: AccessDenied")

    monkeypatch.setattr(LambdaAlias, "readiness", denied)
    code, data = readiness(capsys)
    assert code == 1 and statuses(data)[("v1", "api")] == "at-risk"  # unknown, not known to be gone
    assert detail(data, "v1", "api") == "not checked: lambda:GetFunctionConfiguration: AccessDenied"

    def gone(self: SecretKind, spec: SecretSpec, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        raise ResourceNotFound("secretsmanager:ListSecretVersionIds shop/prod/db: ResourceNotFoundException")

    monkeypatch.setattr(SecretKind, "readiness", gone)
    code, data = readiness(capsys)
    assert statuses(data)[("v1", "db-credentials")] == statuses(data)[("v2", "db-credentials")] == "impossible"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_nothing_to_roll_back_to_is_not_ready(shop_dir: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 14: every row ok exits 0 (it exited 1); that a rollback has nowhere to go is `ready: false` and a note."""
    monkeypatch.chdir(shop_dir)
    run(capsys, "release", "record", "prod", "--version", "v1")
    code, data = readiness(capsys)
    assert code == 0 and data["ready"] is False
    assert [r["role"] for r in data["releases"]] == ["live"]
    assert data["notes"] == ["no release older than the live one (v1) that is not marked bad"]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_guard_refuses_when_the_rollback_is_impossible(shop_dir: Path, aws: AwsClients, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(shop_dir)
    two_releases(capsys, aws)
    aws.client("lambda").delete_function(FunctionName="shop-api-prod", Qualifier="1")

    code, _out, err = run(capsys, "guard", "prod", "--for", "1s")
    assert code == 3
    assert "rolling back to v1 is impossible: api: shop-api-prod: version 1 no longer exists" in err
    assert "--force" in err
    lam = aws.client("lambda")
    assert lam.get_alias(FunctionName="shop-api-prod", Name="live")["FunctionVersion"] == "2"
    runbook = load_runbook(shop_dir / "lastgood.yaml")
    with open_ledger(resolve_url(runbook.state, runbook.base_dir)).session() as session:
        assert store.list_rollbacks(session, "shop", "prod") == []
        assert store.live_release(session, "shop", "prod").label == "v2"  # type: ignore[union-attr]
        assert "guard-refused" in [e.type for e in store.events_since(session, "shop", "prod")]

    code, out, err = run(capsys, "guard", "prod", "--for", "1s", "--force")
    assert code == 4 and out.startswith("blind")  # watched, but no traffic: no data (and 1s judges no 5m window)
    assert "warning" in err and "version 1 no longer exists" in err


# Data components (DynamoDB, RDS) through the engine

DATA_RUNBOOK = """
app: data
state: sqlite:///state.db
environments:
  prod:
    aws: {{region: us-east-1, endpoint_url: "{url}"}}
components:
  - name: orders
    kind: dynamodb-table
    table: orders
    pointer: {{ssm_parameter: /data/prod/orders-table}}
  - name: db
    kind: rds-instance
    instance: shop-db
    pointer: {{ssm_parameter: /data/prod/db-host}}
    snapshot_on_record: true
    restore_from: snapshot
"""


def orders_table(aws: AwsClients, pointer: str = "/data/prod/orders-table") -> datetime:
    """A table with point-in-time recovery on, named by an SSM pointer; returns moto's latest restorable time."""
    client = aws.client("dynamodb")
    client.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    aws.client("ssm").put_parameter(Name=pointer, Value="orders", Type="String")
    described = client.update_continuous_backups(
        TableName="orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    latest: datetime = described["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"][
        "LatestRestorableDateTime"
    ]
    return latest


def rds_instance(aws: AwsClients, pointer: str = "/data/prod/db-host") -> None:
    described = aws.client("rds").create_db_instance(
        DBInstanceIdentifier="shop-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="shop",
        MasterUserPassword="password-1",
        AllocatedStorage=20,
        BackupRetentionPeriod=7,
    )["DBInstance"]
    aws.client("ssm").put_parameter(Name=pointer, Value=described["Endpoint"]["Address"], Type="String")


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_deleted_snapshot_and_pitr_off_are_impossible(aws_env, aws: AwsClients, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    orders_table(aws)
    rds_instance(aws)
    (tmp_path / "lastgood.yaml").write_text(DATA_RUNBOOK.format(url=aws_env.url))
    runbook = load_runbook(tmp_path / "lastgood.yaml")
    ledger = open_ledger(resolve_url(runbook.state, runbook.base_dir))
    ctx = EnvContext(runbook, "prod", ledger, AwsClients(runbook.environment("prod").aws))
    v1 = record_release(ctx, "v1")
    v1_snapshot = next(c.state["snapshot"] for c in v1.components if c.component == "db")
    record_release(ctx, "v2")

    found = check_env(ctx)
    assert found.ready
    assert {(r.label, c.component): c.status for r in found.releases for c in r.components} == {
        ("v2", "orders"): "ok",
        ("v2", "db"): "ok",
        ("v1", "orders"): "ok",
        ("v1", "db"): "ok",
    }

    aws.client("rds").delete_db_snapshot(DBSnapshotIdentifier=v1_snapshot)
    found = check_env(ctx)
    live, previous = found.releases
    assert not found.ready and previous.status == "impossible" and live.status == "ok"
    assert previous.problems() == [f"db: snapshot {v1_snapshot} no longer exists"]

    aws.client("dynamodb").update_continuous_backups(
        TableName="orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    live, previous = check_env(ctx).releases
    assert live.status == "impossible"
    assert live.problems("impossible") == [
        "orders: point-in-time recovery is off for orders: the recorded point cannot be restored"
    ]
    assert len(previous.problems("impossible")) == 2


# Each kind's checks, at the edges

SHOP = "/shop/prod/orders-table"


def ctx_at(aws: AwsClients, now: datetime) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws, now=lambda: now)


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_restore_windows_are_at_risk_on_their_last_day(aws: AwsClients) -> None:
    recorded_at = orders_table(aws, SHOP)
    kind = DynamoDbTable()
    spec = DynamoDbTableSpec.model_validate({"name": "orders", "table": "orders", "pointer": {"ssm_parameter": SHOP}})
    state = kind.read(spec, ctx_at(aws, recorded_at))
    assert kind.readiness(spec, ctx_at(aws, recorded_at + timedelta(days=34)), state)[0].status == "ok"
    late = kind.readiness(spec, ctx_at(aws, recorded_at + timedelta(days=34, hours=12)), state)
    assert late == [
        ReadinessCheck("at-risk", f"orders: {state['recorded_at']} leaves the 35-day point-in-time window in 12h00m")
    ]
    too_old = {**state, "recorded_at": (recorded_at - timedelta(days=1)).isoformat()}
    assert (
        "older than the earliest restorable time" in kind.readiness(spec, ctx_at(aws, recorded_at), too_old)[0].detail
    )

    backup = spec.model_copy(update={"backup": True, "restore_from": "backup"})
    with_backup = kind.record(backup, ctx_at(aws, recorded_at))
    assert kind.readiness(backup, ctx_at(aws, recorded_at), with_backup)[0].status == "ok"
    aws.client("dynamodb").delete_backup(BackupArn=with_backup["backup_arn"])
    gone = kind.readiness(backup, ctx_at(aws, recorded_at), with_backup)
    assert gone[0].status == "impossible"

    rds_instance(aws, "/shop/prod/db-host")
    rds, rds_spec = (
        RdsInstance(),
        RdsInstanceSpec.model_validate(
            {"name": "db", "instance": "shop-db", "pointer": {"ssm_parameter": "/shop/prod/db-host"}}
        ),
    )
    now = datetime.now(UTC)
    db_state = rds.read(rds_spec, ctx_at(aws, now))
    assert rds.readiness(rds_spec, ctx_at(aws, now + timedelta(days=6)), db_state)[0].status == "ok"
    end = rds.readiness(rds_spec, ctx_at(aws, now + timedelta(days=6, hours=18)), db_state)[0]
    assert end.status == "at-risk" and "leaves the backups in 6h00m" in end.detail
    aws.client("rds").modify_db_instance(DBInstanceIdentifier="shop-db", BackupRetentionPeriod=0, ApplyImmediately=True)
    off = rds.readiness(rds_spec, ctx_at(aws, now), db_state)
    assert off == [ReadinessCheck("impossible", "automated backups are off for shop-db")]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_ssm_history_limit(aws: AwsClients) -> None:
    ssm, name = aws.client("ssm"), "/shop/prod/flag"
    ssm.put_parameter(Name=name, Value="v1", Type="String")
    kind, spec = SsmParameter(), SsmParameterSpec(name="cfg", parameters=[name])
    ctx = ctx_at(aws, datetime.now(UTC))
    state = kind.read(spec, ctx)

    def write(times: int) -> ReadinessCheck:
        for n in range(times):
            ssm.put_parameter(Name=name, Value=f"later-{n}", Type="String", Overwrite=True)
        return kind.readiness(spec, ctx, state)[0]

    assert write(89) == ReadinessCheck("ok", f"{name}: version 1 is in the history (89 newer)")
    assert write(1).status == "at-risk"  # 90 newer: 10 more writes and SSM drops version 1
    assert write(9).detail == f"{name}: 99 versions written since version 1; SSM keeps 100, so 1 more writes drop it"
    gone = write(1)
    assert gone.status == "impossible" and "version 1 is no longer in the parameter's history" in gone.detail


def test_weighted_lambda_versions_are_checked(aws: AwsClients) -> None:
    role = aws.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument=json.dumps(shop.ROLE_POLICY))
    shop.create_function(aws, "fn", role["Role"]["Arn"])
    canary = shop.publish_new_version(aws, "fn", "v2")
    shop.shift_alias(aws, "fn", "1", canary, 0.1)
    kind, spec = LambdaAlias(), LambdaAliasSpec(name="fn", function="fn")
    ctx = ctx_at(aws, datetime.now(UTC))
    state = kind.read(spec, ctx)
    assert kind.readiness(spec, ctx, state) == [ReadinessCheck("ok", "fn: version 1, 2 exists")]
    shop.shift_alias(aws, "fn", shop.publish_new_version(aws, "fn", "v3"), None, 0)
    aws.client("lambda").delete_function(FunctionName="fn", Qualifier=canary)
    assert kind.readiness(spec, ctx, state) == [ReadinessCheck("impossible", "fn: version 2 no longer exists")]


def test_s3_cloudformation_and_ecs_say_what_is_gone(aws: AwsClients) -> None:
    ctx = ctx_at(aws, datetime.now(UTC))
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="shop-assets")
    s3.put_bucket_versioning(Bucket="shop-assets", VersioningConfiguration={"Status": "Enabled"})
    for key in ("site/a.txt", "site/b.txt"):
        s3.put_object(Bucket="shop-assets", Key=key, Body=b"1")
    bucket, bucket_spec = S3Prefix(), S3PrefixSpec(name="assets", bucket="shop-assets", prefix="site/")
    recorded = bucket.read(bucket_spec, ctx)
    assert bucket.readiness(bucket_spec, ctx, recorded)[0].status == "ok"
    s3.put_object(Bucket="shop-assets", Key="site/a.txt", Body=b"2")
    s3.delete_object(Bucket="shop-assets", Key="site/a.txt", VersionId=recorded["objects"]["site/a.txt"]["version_id"])
    assert bucket.readiness(bucket_spec, ctx, recorded) == [
        ReadinessCheck("impossible", "s3://shop-assets/site/: the recorded versions of site/a.txt are gone")
    ]

    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    aws.client("cloudformation").create_stack(StackName="web", TemplateBody=body)
    stack, stack_spec = CloudFormationStack(), CloudFormationStackSpec(name="web", stack="web")
    state = stack.read(stack_spec, ctx)
    assert stack.readiness(stack_spec, ctx, state)[0].status == "ok"
    assert "not stored" in stack.readiness(stack_spec, ctx, {**state, "template_body": ""})[0].detail
    aws.client("cloudformation").delete_stack(StackName="web")
    assert stack.readiness(stack_spec, ctx, state) == [ReadinessCheck("impossible", "stack web no longer exists")]

    ecs = aws.client("ecs")
    task = ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "web:1", "memory": 128}]
    )["taskDefinition"]["taskDefinitionArn"]
    service, service_spec = EcsService(), EcsServiceSpec(name="web", cluster="shop", service="web")
    recorded_task = {"task_definition": task, "desired_count": 1}
    assert service.readiness(service_spec, ctx, recorded_task) == [
        ReadinessCheck("ok", "task definition web:1 is ACTIVE")
    ]
    ecs.deregister_task_definition(taskDefinition=task)
    assert service.readiness(service_spec, ctx, recorded_task)[0].status == "impossible"


def test_feature_flags(aws: AwsClients) -> None:
    ctx = ctx_at(aws, datetime.now(UTC))
    kind = FeatureFlag()
    http = FeatureFlagSpec.model_validate({"name": "f", "http": {"url": "http://127.0.0.1:9/flags"}})
    assert kind.readiness(http, ctx, {"backend": "http", "flags": {}})[0].status == "ok"

    client = boto3.client("appconfig", region_name="us-east-1")
    aws._clients["appconfig"] = client
    stub = Stubber(client)
    stub.activate()
    spec = FeatureFlagSpec.model_validate(
        {"name": "f", "appconfig": {"application": "shop", "environment": "prod", "profile": "flags"}}
    )
    for version, exists in ((3, True), (2, False)):
        stub.add_response("list_applications", {"Items": [{"Id": "app1", "Name": "shop"}]}, {})
        stub.add_response("list_environments", {"Items": [{"Id": "env1", "Name": "prod"}]}, {"ApplicationId": "app1"})
        profile = {"Id": "prof1", "Name": "flags", "LocationUri": "hosted"}
        stub.add_response("list_configuration_profiles", {"Items": [profile]}, {"ApplicationId": "app1"})
        expected = {"ApplicationId": "app1", "ConfigurationProfileId": "prof1", "VersionNumber": version}
        if exists:
            answer = {"Content": b"{}", "ContentType": "application/json", "VersionNumber": version}
            stub.add_response("get_hosted_configuration_version", answer, expected)
        else:
            stub.add_client_error(
                "get_hosted_configuration_version", "ResourceNotFoundException", "gone", 404, expected_params=expected
            )
    state = {"backend": "appconfig", "version": "3", "flags": None}
    assert kind.readiness(spec, ctx, state) == [ReadinessCheck("ok", "configuration version 3 exists")]
    assert kind.readiness(spec, ctx, {**state, "version": "2"}) == [
        ReadinessCheck("impossible", "configuration version 2 no longer exists")
    ]
    stub.assert_no_pending_responses()
