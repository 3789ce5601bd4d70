"""elbv2-listener against the moto server: record -> change -> plan -> apply -> verify, re-apply, failure paths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.errors import StepFailed
from lastgood.kinds.base import KindContext
from lastgood.kinds.elbv2_listener import Elbv2Listener, Elbv2ListenerSpec


@dataclass
class Alb:
    listener: str
    blue: str
    green: str


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws)


def forward(weights: dict[str, int]) -> list[dict[str, Any]]:
    groups = [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in weights.items()]
    return [{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}]


@pytest.fixture
def alb(aws: AwsClients) -> Alb:
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{zone}")["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate("ab")
    ]
    lb = elbv2.create_load_balancer(Name="shop", Subnets=subnets)["LoadBalancers"][0]["LoadBalancerArn"]
    blue, green = (
        elbv2.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
        for name in ("blue", "green")
    )
    listener = elbv2.create_listener(
        LoadBalancerArn=lb, Protocol="HTTP", Port=80, DefaultActions=forward({blue: 100, green: 0})
    )["Listeners"][0]["ListenerArn"]
    return Alb(listener, blue, green)


@pytest.mark.slow
def test_listener_weights_go_back(aws: AwsClients, ctx: KindContext, alb: Alb) -> None:
    kind, spec = Elbv2Listener(), Elbv2ListenerSpec(name="alb", listener_arn=alb.listener)
    recorded = kind.read(spec, ctx)
    assert recorded == {"target_groups": dict(sorted({alb.blue: 100, alb.green: 0}.items()))}

    elbv2 = aws.client("elbv2")
    elbv2.modify_listener(ListenerArn=alb.listener, DefaultActions=forward({alb.blue: 10, alb.green: 90}))
    change = kind.plan(spec, kind.read(spec, ctx), recorded)
    assert change is not None and change.action == "shift-traffic"
    assert "blue 10%" in change.before and "green 90%" in change.before
    assert "blue 100%" in change.after and "green 0%" in change.after

    assert kind.apply(spec, ctx, recorded).changed
    assert kind.verify(spec, ctx, recorded) == []
    action = elbv2.describe_listeners(ListenerArns=[alb.listener])["Listeners"][0]["DefaultActions"][0]
    weights = {g["TargetGroupArn"]: g["Weight"] for g in action["ForwardConfig"]["TargetGroups"]}
    assert weights == {alb.blue: 100, alb.green: 0}
    assert not kind.apply(spec, ctx, recorded).changed  # idempotent


@pytest.mark.slow
def test_rule_weights_go_back(aws: AwsClients, ctx: KindContext, alb: Alb) -> None:
    elbv2 = aws.client("elbv2")
    rule = elbv2.create_rule(
        ListenerArn=alb.listener,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
        Actions=forward({alb.blue: 80, alb.green: 20}),
    )["Rules"][0]["RuleArn"]
    kind = Elbv2Listener()
    spec = Elbv2ListenerSpec(name="api", listener_arn=alb.listener, rule_arn=rule)
    recorded = kind.read(spec, ctx)
    assert recorded["target_groups"] == {alb.blue: 80, alb.green: 20}

    elbv2.modify_rule(RuleArn=rule, Actions=forward({alb.green: 100}))
    assert kind.differences(spec, kind.read(spec, ctx), recorded)
    assert kind.apply(spec, ctx, recorded).changed
    assert kind.verify(spec, ctx, recorded) == []
    assert not kind.apply(spec, ctx, recorded).changed
    # The listener's default action was left alone.
    assert kind.read(Elbv2ListenerSpec(name="alb", listener_arn=alb.listener), ctx)["target_groups"] == {
        alb.blue: 100,
        alb.green: 0,
    }


@pytest.mark.slow
def test_no_forward_action_and_deleted_target_group_fail_clearly(aws: AwsClients, ctx: KindContext, alb: Alb) -> None:
    kind, spec = Elbv2Listener(), Elbv2ListenerSpec(name="alb", listener_arn=alb.listener)
    recorded = kind.read(spec, ctx)
    elbv2 = aws.client("elbv2")
    maintenance = {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}
    elbv2.modify_listener(ListenerArn=alb.listener, DefaultActions=[maintenance])
    with pytest.raises(StepFailed, match="expected one forward action, found 0"):
        kind.apply(spec, ctx, recorded)

    elbv2.modify_listener(ListenerArn=alb.listener, DefaultActions=forward({alb.blue: 1}))
    gone = alb.green.replace(alb.green.rsplit("/", 1)[-1], "0123456789abcdef")
    with pytest.raises(StepFailed, match=f"target group {gone} no longer exists"):
        kind.apply(spec, ctx, {"target_groups": {alb.blue: 50, gone: 50}})
