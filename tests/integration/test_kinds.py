"""Each kind against the moto server: record -> change -> plan -> apply -> verify, re-apply, failure path."""

from __future__ import annotations

import json

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds.base import KindContext, value_hash
from lastgood.kinds.lambda_alias import LambdaAlias, LambdaAliasSpec
from lastgood.kinds.secret import Secret, SecretSpec
from lastgood.kinds.ssm_parameter import SsmParameter, SsmParameterSpec
from lastgood.testing import shop


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws)


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_lambda_alias_round_trip_with_weights(aws: AwsClients, ctx: KindContext) -> None:
    shop.create_function(aws, "fn", shop._role(aws))
    v2 = shop.publish_new_version(aws, "fn", "v2")
    v3 = shop.publish_new_version(aws, "fn", "v3")
    kind, spec = LambdaAlias(), LambdaAliasSpec(name="fn", function="fn")
    shop.shift_alias(aws, "fn", "1", v2, 0.2)
    recorded = kind.read(spec, ctx)
    assert recorded == {"version": "1", "weights": {v2: 0.2}}

    shop.shift_alias(aws, "fn", v3, None, 0)
    change = kind.plan(spec, kind.read(spec, ctx), recorded)
    assert change is not None and change.action == "update-alias"
    assert change.before == "version 3" and change.after == "version 1 (20% to version 2)"
    assert kind.apply(spec, ctx, recorded).changed
    assert kind.verify(spec, ctx, recorded) == []
    assert not kind.apply(spec, ctx, recorded).changed  # idempotent
    assert kind.plan(spec, kind.read(spec, ctx), recorded) is None


def test_lambda_alias_missing_is_resource_not_found(aws: AwsClients, ctx: KindContext) -> None:
    with pytest.raises(ResourceNotFound, match="lambda:GetAlias nope:live"):
        LambdaAlias().read(LambdaAliasSpec(name="x", function="nope"), ctx)


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_ssm_parameters_restore_values_not_versions(aws: AwsClients, ctx: KindContext) -> None:
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/app/a", Value="one", Type="String")
    ssm.put_parameter(Name="/app/secret", Value="s3cr3t-1", Type="SecureString")
    ssm.put_parameter(Name="/other/x", Value="unrelated", Type="String")
    kind, spec = SsmParameter(), SsmParameterSpec(name="cfg", parameters=["/app/"])
    recorded = kind.read(spec, ctx)
    assert set(recorded["parameters"]) == {"/app/a", "/app/secret"}
    assert recorded["parameters"]["/app/secret"]["hash"] == value_hash("s3cr3t-1")
    assert "s3cr3t-1" not in json.dumps(recorded)

    ssm.put_parameter(Name="/app/a", Value="two", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/app/secret", Value="s3cr3t-2", Type="SecureString", Overwrite=True)
    ssm.put_parameter(Name="/app/new", Value="later", Type="String")
    change = kind.plan(spec, kind.read(spec, ctx), recorded)
    assert change is not None and change.action == "put-parameter"
    assert any("/app/new" in note for note in change.notes)  # created later: named, left alone

    assert kind.apply(spec, ctx, recorded).changed
    assert kind.verify(spec, ctx, recorded) == []
    assert ssm.get_parameter(Name="/app/a")["Parameter"]["Value"] == "one"
    restored = ssm.get_parameter(Name="/app/secret", WithDecryption=True)["Parameter"]
    assert restored["Value"] == "s3cr3t-1" and restored["Type"] == "SecureString"
    assert ssm.get_parameter(Name="/app/new")["Parameter"]["Value"] == "later"
    assert not kind.apply(spec, ctx, recorded).changed


def test_ssm_deleted_parameter_fails_clearly(aws: AwsClients, ctx: KindContext) -> None:
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/app/a", Value="one", Type="String")
    kind, spec = SsmParameter(), SsmParameterSpec(name="cfg", parameters=["/app/a"])
    recorded = kind.read(spec, ctx)
    ssm.delete_parameter(Name="/app/a")
    assert kind.differences(spec, kind.read(spec, ctx), recorded) == ["/app/a: deleted since the release (version 1)"]
    with pytest.raises(StepFailed, match="history is gone"):
        kind.apply(spec, ctx, recorded)


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_secret_moves_awscurrent_back(aws: AwsClients, ctx: KindContext) -> None:
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="db", SecretString="password-1")
    kind, spec = Secret(), SecretSpec(name="db", secret="db")
    recorded = kind.read(spec, ctx)
    sm.put_secret_value(SecretId="db", SecretString="password-2")
    assert kind.read(spec, ctx) != recorded
    change = kind.plan(spec, kind.read(spec, ctx), recorded)
    assert change is not None and change.action == "move-stage"
    assert kind.apply(spec, ctx, recorded).changed
    assert kind.verify(spec, ctx, recorded) == []
    # Asked by stage: moto 5.2 keeps answering the un-staged call with the newest version after a stage move.
    assert sm.get_secret_value(SecretId="db", VersionStage="AWSCURRENT")["SecretString"] == "password-1"
    assert not kind.apply(spec, ctx, recorded).changed


def test_secret_unknown_version_fails_clearly(aws: AwsClients, ctx: KindContext) -> None:
    aws.client("secretsmanager").create_secret(Name="db", SecretString="password-1")
    kind, spec = Secret(), SecretSpec(name="db", secret="db")
    with pytest.raises(StepFailed, match="no longer exists"):
        kind.apply(spec, ctx, {"version_id": "00000000-0000-0000-0000-000000000000"})
