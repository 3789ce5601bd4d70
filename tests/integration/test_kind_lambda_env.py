"""lambda-env on moto's server: record -> change -> plan -> apply -> verify, $LATEST or publish + alias, secrets
kept only in the vault, re-apply, the `lambda_env` pointer with an alias (the PropIE table swap), bad config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from lastgood.aws.clients import AwsClients
from lastgood.errors import StepFailed
from lastgood.kinds.base import KindContext
from lastgood.kinds.lambda_env import LambdaEnv, LambdaEnvSpec
from lastgood.kinds.pointers import Pointer, read_pointer, set_pointer
from lastgood.testing import shop

pytestmark = pytest.mark.aws

FUNCTION = "orders-api"
RELEASED = {"TABLE_NAME": "orders", "LOG_LEVEL": "info", "API_TOKEN": "tok-released-1234"}


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    shop.create_function(aws, FUNCTION, shop._role(aws))
    _set_latest(aws, RELEASED)
    version = aws.client("lambda").publish_version(FunctionName=FUNCTION)["Version"]
    aws.client("lambda").update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=version)
    return KindContext(app="shop", env="prod", aws=aws, token="rb-1-orders-env")


def _set_latest(aws: AwsClients, variables: dict[str, str]) -> None:
    aws.client("lambda").update_function_configuration(FunctionName=FUNCTION, Environment={"Variables": variables})


def _variables(aws: AwsClients, qualifier: str | None = None) -> dict[str, str]:
    kwargs: dict[str, Any] = {"FunctionName": FUNCTION} | ({"Qualifier": qualifier} if qualifier else {})
    config = aws.client("lambda").get_function_configuration(**kwargs)
    return dict(config["Environment"]["Variables"])


def _calls(aws: AwsClients) -> list[str]:
    """The Lambda operations sent from now on, in order."""
    sent: list[str] = []

    def note(model: Any, **_: Any) -> None:
        sent.append(model.name)

    aws.client("lambda").meta.events.register("before-call.lambda", note)
    return sent


def _alias_version(aws: AwsClients) -> str:
    return str(aws.client("lambda").get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"])


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_latest_only_restores_the_named_variable_and_keeps_the_others(aws: AwsClients, ctx: KindContext) -> None:
    kind = LambdaEnv()
    spec = LambdaEnvSpec(name="orders-env", function=FUNCTION, variables=["TABLE_NAME"])
    recorded = kind.record(spec, ctx)
    assert recorded == {
        "variables": {"TABLE_NAME": {"hash": recorded["variables"]["TABLE_NAME"]["hash"], "value": "orders"}}
    }

    _set_latest(aws, {**RELEASED, "TABLE_NAME": "orders-v2", "LOG_LEVEL": "debug"})
    current = kind.read(spec, ctx)
    change = kind.plan(spec, current, recorded)
    assert change is not None and change.action == "update-variables"
    assert change.notes == ("TABLE_NAME: changed since the release", "updates $LATEST only")
    versions_before = _alias_version(aws)

    result = kind.apply(spec, ctx, recorded)
    assert result.changed and result.observed is not None
    assert not kind.differences(spec, result.observed, recorded)
    assert _variables(aws) == {**RELEASED, "LOG_LEVEL": "debug"}  # not a selected variable: left as it is
    assert _alias_version(aws) == versions_before
    assert kind.verify(spec, ctx, recorded) == []
    assert not kind.apply(spec, ctx, recorded).changed


def test_alias_mode_publishes_a_version_and_moves_the_alias(aws: AwsClients, ctx: KindContext) -> None:
    kind = LambdaEnv()
    spec = LambdaEnvSpec(name="orders-env", function=FUNCTION, alias="live", secrets=["LOG_LEVEL"], vault="/lg/prod")
    recorded = kind.record(spec, ctx)
    entries = recorded["variables"]
    assert set(entries) == set(RELEASED)
    assert "value" not in entries["API_TOKEN"] and "value" not in entries["LOG_LEVEL"]  # secrets: hash + vault only
    assert entries["TABLE_NAME"]["value"] == "orders"
    assert "tok-released-1234" not in repr(recorded)
    vault = aws.client("ssm").get_parameter(Name="/lg/prod/orders-env/API_TOKEN", WithDecryption=True)["Parameter"]
    assert vault["Type"] == "SecureString" and vault["Value"] == "tok-released-1234"
    assert kind.record(spec, ctx) == recorded  # the vault is not written twice for the same value
    assert kind.warnings(spec, recorded) == []

    # The bad release: new variables published behind the alias, one added.
    _set_latest(aws, {"TABLE_NAME": "orders-v2", "LOG_LEVEL": "debug", "API_TOKEN": "tok-new-5678", "NEW": "1"})
    bad = aws.client("lambda").publish_version(FunctionName=FUNCTION)["Version"]
    aws.client("lambda").update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=bad)
    change = kind.plan(spec, kind.read(spec, ctx), recorded)
    assert change is not None
    assert "NEW: added since the release (removed by the rollback)" in change.notes
    assert "publishes a version and moves alias live to it" in change.notes
    assert "tok-" not in repr(change)

    calls = _calls(aws)
    result = kind.apply(spec, ctx, recorded)
    assert calls == ["GetFunctionConfiguration", "UpdateFunctionConfiguration", "PublishVersion", "UpdateAlias"]
    assert result.changed and result.extra["version"] not in {bad, "$LATEST"}
    assert "tok-" not in result.detail
    assert _alias_version(aws) == result.extra["version"]
    assert _variables(aws, result.extra["version"]) == RELEASED  # the secret came back from the vault
    assert kind.verify(spec, ctx, recorded) == []
    assert not kind.apply(spec, ctx, recorded).changed


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_alias_behind_latest_is_published_without_a_second_update(aws: AwsClients, ctx: KindContext) -> None:
    """An earlier attempt updated $LATEST and its publish answer was lost: the retry publishes and moves."""
    kind = LambdaEnv()
    spec = LambdaEnvSpec(name="orders-env", function=FUNCTION, alias="live", variables=["TABLE_NAME"])
    recorded = kind.record(spec, ctx)
    _set_latest(aws, {**RELEASED, "TABLE_NAME": "orders-v2"})
    bad = aws.client("lambda").publish_version(FunctionName=FUNCTION)["Version"]
    aws.client("lambda").update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=bad)
    _set_latest(aws, RELEASED)  # $LATEST is back already, the alias is not
    calls = _calls(aws)

    result = kind.apply(spec, ctx, recorded)
    assert result.changed
    assert calls == [
        "GetFunctionConfiguration",
        "GetAlias",
        "GetFunctionConfiguration",
        "PublishVersion",
        "UpdateAlias",
    ]
    assert _variables(aws, _alias_version(aws))["TABLE_NAME"] == "orders"


def test_secret_without_vault_is_flagged_and_not_restorable(aws: AwsClients, ctx: KindContext) -> None:
    kind = LambdaEnv()
    spec = LambdaEnvSpec(name="orders-env", function=FUNCTION)
    recorded = kind.record(spec, ctx)
    assert kind.warnings(spec, recorded) == [
        "API_TOKEN: secret, so the value is not recorded; without a `vault` a change to it cannot be rolled back"
    ]
    _set_latest(aws, {**RELEASED, "API_TOKEN": "tok-rotated-999"})
    with pytest.raises(StepFailed, match="API_TOKEN: a secret whose value was not recorded") as error:
        kind.apply(spec, ctx, recorded)
    assert "tok-" not in str(error.value)
    assert _variables(aws)["API_TOKEN"] == "tok-rotated-999"  # nothing written


def test_pointer_with_alias_switches_table_and_publishes(aws: AwsClients, ctx: KindContext) -> None:
    pointer = Pointer.model_validate({"lambda_env": {"function": FUNCTION, "variable": "TABLE_NAME", "alias": "live"}})
    before = _alias_version(aws)
    assert read_pointer(pointer, ctx) == "orders"
    assert set_pointer(pointer, ctx, "orders-restored-abc") is True
    assert _alias_version(aws) != before
    assert read_pointer(pointer, ctx) == "orders-restored-abc"
    assert _variables(aws, _alias_version(aws)) == {**RELEASED, "TABLE_NAME": "orders-restored-abc"}
    after = _alias_version(aws)
    assert set_pointer(pointer, ctx, "orders-restored-abc") is False
    assert _alias_version(aws) == after


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"variables": []}, "list at least one variable"),
        ({"vault": "lg/prod"}, "starts with '/'"),
        ({"alias": 3}, "string"),
    ],
)
def test_bad_config_is_refused(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        LambdaEnvSpec.model_validate({"name": "e", "kind": "lambda-env", "function": FUNCTION, **extra})


def test_bad_component_in_the_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lastgood.cli.app import main

    path = tmp_path / "lastgood.yaml"
    path.write_text(
        "app: shop\nstate: sqlite:///state.db\nenvironments: {prod: {}}\n"
        "components:\n  - {name: c, kind: lambda-env, function: fn, alias: 3}\n"
    )
    code = main(["validate", "-f", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and "components[0].alias" in captured.out + captured.err
    assert not (tmp_path / "state.db").exists()


@pytest.mark.slow
def test_propie_table_swap_publishes_and_moves_the_alias(aws: AwsClients, ctx: KindContext) -> None:
    """dynamodb-table restores into a copy, then its `lambda_env` pointer with `alias` switches TABLE_NAME:
    functions invoked through `live` read the restored table (PropIE's "swap tables" step)."""
    from datetime import timedelta

    from lastgood.kinds import _restore
    from lastgood.kinds.dynamodb_table import DynamoDbTable, DynamoDbTableSpec

    client = aws.client("dynamodb")
    client.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName="orders", Item={"pk": {"S": "order-1"}})
    described = client.update_continuous_backups(
        TableName="orders", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    at = described["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]["LatestRestorableDateTime"]
    pointer = {"lambda_env": {"function": FUNCTION, "variable": "TABLE_NAME", "alias": "live"}}
    spec = DynamoDbTableSpec.model_validate({"name": "orders", "table": "orders", "pointer": pointer})
    kind = DynamoDbTable()
    recorded = kind.read(spec, KindContext(app="shop", env="prod", aws=aws, now=lambda: at))
    before = _alias_version(aws)

    later = at + timedelta(minutes=10)
    step = KindContext(app="shop", env="prod", aws=aws, token="rb-2-orders", now=lambda: later)
    kind.apply(spec, step, recorded)
    assert kind.verify(spec, step, recorded) == []
    copy = _restore.copy_name("orders", step.token)
    assert _alias_version(aws) != before
    assert _variables(aws, _alias_version(aws)) == {**RELEASED, "TABLE_NAME": copy}
    assert _variables(aws)["TABLE_NAME"] == copy


def test_debug_logs_mask_variables_whose_names_look_secret() -> None:
    """--debug logs botocore's bodies before the kind has seen (and registered) a secret variable's value."""
    from lastgood.cli.globals import mask_secret_fields

    body = '{"Environment": {"Variables": {"API_TOKEN": "tok-1", "DB_PASSWORD": "pw-2", "TABLE_NAME": "orders"}}}'
    assert mask_secret_fields(body) == (
        '{"Environment": {"Variables": {"API_TOKEN": "****", "DB_PASSWORD": "****", "TABLE_NAME": "orders"}}}'
    )
