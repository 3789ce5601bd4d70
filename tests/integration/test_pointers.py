"""The pointer a data kind switches to a restored copy: SSM parameter, Lambda variable, key of a JSON secret."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from lastgood.aws.clients import AwsClients
from lastgood.errors import ResourceNotFound
from lastgood.kinds.base import IamScope, KindContext
from lastgood.kinds.pointers import Pointer, describe_pointer, pointer_iam_statements, read_pointer, set_pointer
from lastgood.testing import shop


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws, token="rb-0000000001-orders")


def test_exactly_one_pointer() -> None:
    with pytest.raises(ValidationError, match="exactly one of"):
        Pointer()
    with pytest.raises(ValidationError, match=r"got ssm_parameter, secret_key"):
        Pointer.model_validate({"ssm_parameter": "/a", "secret_key": {"secret": "s", "key": "k"}})
    with pytest.raises(ValidationError, match="Extra inputs"):
        Pointer.model_validate({"ssm_parameter": "/a", "ssm": "/b"})


def test_ssm_parameter_pointer(aws: AwsClients, ctx: KindContext) -> None:
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/shop/table", Value="orders", Type="String")
    pointer = Pointer(ssm_parameter="/shop/table")
    assert read_pointer(pointer, ctx) == "orders"
    assert set_pointer(pointer, ctx, "orders-restored-1")
    assert not set_pointer(pointer, ctx, "orders-restored-1")
    parameter = ssm.get_parameter(Name="/shop/table")["Parameter"]
    assert (parameter["Value"], parameter["Type"], parameter["Version"]) == ("orders-restored-1", "String", 2)
    assert describe_pointer(pointer) == "SSM parameter /shop/table"


def test_missing_ssm_parameter_is_not_created(aws: AwsClients, ctx: KindContext) -> None:
    with pytest.raises(ResourceNotFound, match="ssm:GetParameter /nope"):
        set_pointer(Pointer(ssm_parameter="/nope"), ctx, "x")


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_lambda_env_pointer_keeps_other_variables(aws: AwsClients, ctx: KindContext) -> None:
    shop.create_function(aws, "api", shop._role(aws))
    client = aws.client("lambda")
    client.update_function_configuration(
        FunctionName="api", Environment={"Variables": {"TABLE": "orders", "API_KEY": "k-123"}}
    )
    pointer = Pointer.model_validate({"lambda_env": {"function": "api", "variable": "TABLE"}})
    assert read_pointer(pointer, ctx) == "orders"
    assert set_pointer(pointer, ctx, "orders-restored-1")
    assert not set_pointer(pointer, ctx, "orders-restored-1")
    variables = client.get_function_configuration(FunctionName="api")["Environment"]["Variables"]
    assert variables == {"TABLE": "orders-restored-1", "API_KEY": "k-123"}

    unset = Pointer.model_validate({"lambda_env": {"function": "api", "variable": "DB_HOST"}})
    with pytest.raises(ResourceNotFound, match="environment variable DB_HOST of Lambda api: the variable is not set"):
        read_pointer(unset, ctx)


def test_secret_key_pointer_never_leaks_the_other_values(aws: AwsClients, ctx: KindContext) -> None:
    sm = aws.client("secretsmanager")
    sm.create_secret(Name="db", SecretString=json.dumps({"host": "db-1.example", "password": "hunter2"}))
    pointer = Pointer.model_validate({"secret_key": {"secret": "db", "key": "host"}})
    assert read_pointer(pointer, ctx) == "db-1.example"
    assert set_pointer(pointer, ctx, "db-restored.example")
    assert not set_pointer(pointer, ctx, "db-restored.example")
    versions = sm.list_secret_version_ids(SecretId="db")["Versions"]
    assert len(versions) == 2  # one new version: the repeat wrote nothing
    value = json.loads(sm.get_secret_value(SecretId="db", VersionStage="AWSCURRENT")["SecretString"])
    assert value == {"host": "db-restored.example", "password": "hunter2"}

    missing = Pointer.model_validate({"secret_key": {"secret": "db", "key": "endpoint"}})
    with pytest.raises(ResourceNotFound, match="secret db: has no key 'endpoint'") as raised:
        read_pointer(missing, ctx)
    assert "hunter2" not in str(raised.value)


def test_secret_pointer_retry_reuses_its_version(aws: AwsClients, ctx: KindContext) -> None:
    sm = aws.client("secretsmanager")
    first = sm.create_secret(Name="db", SecretString=json.dumps({"host": "a"}))["VersionId"]
    pointer = Pointer.model_validate({"secret_key": {"secret": "db", "key": "host"}})
    assert set_pointer(pointer, ctx, "b")
    written = sm.get_secret_value(SecretId="db", VersionStage="AWSCURRENT")["VersionId"]
    # Someone moved AWSCURRENT back; the retried step puts with the same token: no new version, the stage moves.
    sm.update_secret_version_stage(
        SecretId="db", VersionStage="AWSCURRENT", MoveToVersionId=first, RemoveFromVersionId=written
    )
    assert read_pointer(pointer, ctx) == "a"
    assert set_pointer(pointer, ctx, "b")
    assert read_pointer(pointer, ctx) == "b"
    assert sm.get_secret_value(SecretId="db", VersionStage="AWSCURRENT")["VersionId"] == written
    assert len(sm.list_secret_version_ids(SecretId="db")["Versions"]) == 2


def test_secret_that_is_not_json_is_refused_without_echoing_it(aws: AwsClients, ctx: KindContext) -> None:
    aws.client("secretsmanager").create_secret(Name="plain", SecretString="s3cr3t-value")
    pointer = Pointer.model_validate({"secret_key": {"secret": "plain", "key": "host"}})
    with pytest.raises(ResourceNotFound, match="not a JSON object") as raised:
        read_pointer(pointer, ctx)
    assert "s3cr3t" not in str(raised.value)


def test_iam_statements_name_only_the_pointer() -> None:
    scope = IamScope(region="eu-west-1", account="123")
    ssm = pointer_iam_statements(Pointer(ssm_parameter="/shop/table"), scope)
    assert ssm[0].resources == ("arn:aws:ssm:eu-west-1:123:parameter/shop/table",)
    lam = pointer_iam_statements(Pointer.model_validate({"lambda_env": {"function": "api", "variable": "T"}}), scope)
    assert lam[0].actions == ("lambda:GetFunctionConfiguration", "lambda:UpdateFunctionConfiguration")
    assert lam[0].resources == ("arn:aws:lambda:eu-west-1:123:function:api",)
    sec = pointer_iam_statements(Pointer.model_validate({"secret_key": {"secret": "db", "key": "host"}}), scope)
    assert sec[0].resources == ("arn:aws:secretsmanager:eu-west-1:123:secret:db-*",)
