"""stepfunctions-alias against the moto server: record -> change -> plan -> apply -> verify, re-apply, failures."""

from __future__ import annotations

import json

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.errors import AwsError, ResourceNotFound
from lastgood.kinds.base import IamScope, KindContext
from lastgood.kinds.stepfunctions_alias import StepfunctionsAlias, StepfunctionsAliasSpec

ROLE = "arn:aws:iam::123456789012:role/sfn"


def definition(result: str) -> str:
    return json.dumps({"StartAt": "S", "States": {"S": {"Type": "Pass", "Result": result, "End": True}}})


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws)


def machine_with_versions(aws: AwsClients) -> tuple[str, list[str]]:
    sfn = aws.client("stepfunctions")
    created = sfn.create_state_machine(name="orders", definition=definition("v1"), roleArn=ROLE, publish=True)
    arn, versions = created["stateMachineArn"], [created["stateMachineVersionArn"]]
    for result in ("v2", "v3"):
        versions.append(
            sfn.update_state_machine(stateMachineArn=arn, definition=definition(result), publish=True)[
                "stateMachineVersionArn"
            ]
        )
    return arn, versions


def route(aws: AwsClients, alias_arn: str, weights: dict[str, int]) -> None:
    aws.client("stepfunctions").update_state_machine_alias(
        stateMachineAliasArn=alias_arn,
        routingConfiguration=[{"stateMachineVersionArn": v, "weight": w} for v, w in weights.items()],
    )


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_alias_routing_goes_back(aws: AwsClients, ctx: KindContext) -> None:
    arn, (v1, v2, v3) = machine_with_versions(aws)
    alias_arn = aws.client("stepfunctions").create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": v1, "weight": 100}]
    )["stateMachineAliasArn"]
    route(aws, alias_arn, {v1: 80, v2: 20})  # a canary was running at the release
    kind = StepfunctionsAlias()
    spec = StepfunctionsAliasSpec(name="orders", state_machine="orders", alias="live")
    recorded = kind.read(spec, ctx)
    assert recorded == {"routing": [{"version_arn": v1, "weight": 80}, {"version_arn": v2, "weight": 20}]}

    route(aws, alias_arn, {v3: 100})
    change = kind.plan(spec, kind.read(spec, ctx), recorded)
    assert change is not None and change.action == "update-alias"
    assert change.before == "100% to version 3" and change.after == "80% to version 1, 20% to version 2"

    assert kind.apply(spec, ctx, recorded).changed
    assert kind.verify(spec, ctx, recorded) == []
    routing = aws.client("stepfunctions").describe_state_machine_alias(stateMachineAliasArn=alias_arn)[
        "routingConfiguration"
    ]
    assert sorted((r["stateMachineVersionArn"], r["weight"]) for r in routing) == [(v1, 80), (v2, 20)]
    assert not kind.apply(spec, ctx, recorded).changed  # idempotent
    by_arn = StepfunctionsAliasSpec(name="orders", alias_arn=alias_arn)
    assert (
        kind.read(by_arn, ctx)
        == recorded
        == kind.read(StepfunctionsAliasSpec(name="o", state_machine=arn, alias="live"), ctx)
    )


def test_missing_alias_and_machine_fail_clearly(aws: AwsClients, ctx: KindContext) -> None:
    arn, _ = machine_with_versions(aws)
    kind = StepfunctionsAlias()
    with pytest.raises(AwsError, match=f"states:DescribeStateMachineAlias {arn}:nope"):
        kind.read(StepfunctionsAliasSpec(name="x", state_machine=arn, alias="nope"), ctx)
    with pytest.raises(ResourceNotFound, match="no state machine named 'ghost'"):
        kind.read(StepfunctionsAliasSpec(name="x", state_machine="ghost", alias="live"), ctx)
    with pytest.raises(ValueError, match="give alias_arn, or state_machine and alias"):
        StepfunctionsAliasSpec(name="x", state_machine="orders")


def test_iam_is_scoped_to_the_alias() -> None:
    spec = StepfunctionsAliasSpec(name="x", state_machine="orders", alias="live")
    statements = StepfunctionsAlias().iam_statements(spec, IamScope(region="eu-west-1", account="123456789012"))
    assert statements[0].resources == ("arn:aws:states:eu-west-1:123456789012:stateMachine:orders:live",)
    assert statements[1].actions == ("states:ListStateMachines",)
