"""elbv2-listener: the target groups a listener's (or one rule's) forward action sends traffic to, and the weights.

The blue/green and canary switch of an Application Load Balancer; rolling back moves the weights back.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds.base import ApplyResult, IamScope, IamStatement, Kind, KindContext, State


class Elbv2ListenerSpec(Component):
    kind: Literal["elbv2-listener"] = "elbv2-listener"
    listener_arn: str = Field(description="Listener ARN.")
    rule_arn: str | None = Field(
        default=None, description="A rule of the listener; without it the listener's default action is used."
    )


class Elbv2Listener(Kind[Elbv2ListenerSpec]):
    name = "elbv2-listener"
    spec_model = Elbv2ListenerSpec
    estimate_seconds = 2.0

    def read(self, spec: Elbv2ListenerSpec, ctx: KindContext) -> State:
        return {"target_groups": _weights(_forward(self._actions(spec, ctx), spec))}

    def differences(self, spec: Elbv2ListenerSpec, current: State, target: State) -> list[str]:
        if current["target_groups"] == target["target_groups"]:
            return []
        return [f"forward {self.describe(current)} -> {self.describe(target)}"]

    def apply(self, spec: Elbv2ListenerSpec, ctx: KindContext, target: State) -> ApplyResult:
        actions = self._actions(spec, ctx)
        if _weights(_forward(actions, spec)) == target["target_groups"]:
            return ApplyResult("already at target", changed=False)
        self._check_target_groups(ctx, set(target["target_groups"]) - set(_weights(_forward(actions, spec))))
        wanted = [_with_weights(action, target["target_groups"]) for action in actions]
        client = ctx.aws.client("elbv2")
        if spec.rule_arn:
            with map_aws_errors(f"elbv2:ModifyRule {spec.rule_arn}"):
                client.modify_rule(RuleArn=spec.rule_arn, Actions=wanted)
        else:
            with map_aws_errors(f"elbv2:ModifyListener {spec.listener_arn}"):
                client.modify_listener(ListenerArn=spec.listener_arn, DefaultActions=wanted)
        return ApplyResult(f"forward -> {self.describe(target)}")

    @staticmethod
    def _check_target_groups(ctx: KindContext, arns: set[str]) -> None:
        """Groups that left the forward action since the release must still exist to take traffic again."""
        if not arns:
            return
        with map_aws_errors("elbv2:DescribeTargetGroups"):
            pages = ctx.aws.client("elbv2").get_paginator("describe_target_groups").paginate()
            missing = arns - {group["TargetGroupArn"] for page in pages for group in page["TargetGroups"]}
        if missing:
            raise StepFailed(f"target group {', '.join(sorted(missing))} no longer exists: it cannot take traffic back")

    def _actions(self, spec: Elbv2ListenerSpec, ctx: KindContext) -> list[dict[str, Any]]:
        client = ctx.aws.client("elbv2")
        if spec.rule_arn:
            with map_aws_errors(f"elbv2:DescribeRules {spec.rule_arn}"):
                rules = client.describe_rules(RuleArns=[spec.rule_arn])["Rules"]
            found = rules[0]["Actions"] if rules else None
        else:
            with map_aws_errors(f"elbv2:DescribeListeners {spec.listener_arn}"):
                listeners = client.describe_listeners(ListenerArns=[spec.listener_arn])["Listeners"]
            found = listeners[0]["DefaultActions"] if listeners else None
        if found is None:
            raise ResourceNotFound(f"elbv2: {spec.rule_arn or spec.listener_arn} not found")
        return list(found)

    def action_name(self, current: State, target: State) -> str:
        return "shift-traffic"

    def describe(self, state: State) -> str:
        groups: dict[str, int] = state["target_groups"]
        total = sum(groups.values()) or 1
        return ", ".join(f"{_tg_name(arn)} {weight * 100 / total:g}%" for arn, weight in groups.items())

    def iam_statements(self, spec: Elbv2ListenerSpec, scope: IamScope) -> list[IamStatement]:
        if spec.rule_arn:
            return [
                IamStatement(
                    actions=("elasticloadbalancing:ModifyRule",),
                    resources=(spec.rule_arn,),
                    purpose="move the rule's forward weights back",
                ),
                _describe_statement("elasticloadbalancing:DescribeRules"),
                _describe_statement("elasticloadbalancing:DescribeTargetGroups"),
            ]
        return [
            IamStatement(
                actions=("elasticloadbalancing:ModifyListener",),
                resources=(spec.listener_arn,),
                purpose="move the listener's forward weights back",
            ),
            _describe_statement("elasticloadbalancing:DescribeListeners"),
            _describe_statement("elasticloadbalancing:DescribeTargetGroups"),
        ]


def _describe_statement(action: str) -> IamStatement:
    # Describe* actions of Elastic Load Balancing take no resource-level permissions.
    return IamStatement(actions=(action,), resources=("*",), purpose="read the forward action")


def _forward(actions: list[dict[str, Any]], spec: Elbv2ListenerSpec) -> dict[str, Any]:
    forwards = [action for action in actions if action["Type"] == "forward"]
    if len(forwards) != 1:
        raise StepFailed(f"{spec.rule_arn or spec.listener_arn}: expected one forward action, found {len(forwards)}")
    return forwards[0]


def _weights(action: dict[str, Any]) -> dict[str, int]:
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if not groups:
        return {action["TargetGroupArn"]: 1}
    return {group["TargetGroupArn"]: int(group.get("Weight", 1)) for group in sorted(groups, key=_arn)}


def _with_weights(action: dict[str, Any], weights: dict[str, int]) -> dict[str, Any]:
    """The action as it must be sent back: the forward one with the recorded weights, the others unchanged."""
    action = copy.deepcopy(action)
    if action["Type"] == "forward":
        action.pop("TargetGroupArn", None)  # with several groups only ForwardConfig is allowed
        config = action.setdefault("ForwardConfig", {})
        config["TargetGroups"] = [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in weights.items()]
    if "AuthenticateOidcConfig" in action:
        # The secret is never returned by Describe*; this keeps the one configured.
        action["AuthenticateOidcConfig"]["UseExistingClientSecret"] = True
    return action


def _arn(group: dict[str, Any]) -> str:
    return str(group["TargetGroupArn"])


def _tg_name(arn: str) -> str:
    """arn:...:targetgroup/NAME/ID -> NAME."""
    parts = arn.split("/")
    return parts[-2] if len(parts) >= 3 else arn
