"""elbv2-listener: the target groups a listener's (or one rule's) forward action sends traffic to, and the weights.

The blue/green and canary switch of an Application Load Balancer; rolling back moves the weights back.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import BadInput, ResourceNotFound, StepFailed
from lastgood.kinds.base import (
    ApplyResult,
    IamScope,
    IamStatement,
    Kind,
    KindContext,
    Split,
    State,
    WeightedKind,
    split_by_weight,
    whole_percent,
)


class Elbv2ListenerSpec(Component):
    kind: Literal["elbv2-listener"] = "elbv2-listener"
    listener_arn: str = Field(description="Listener ARN.")
    rule_arn: str | None = Field(
        default=None, description="A rule of the listener; without it the listener's default action is used."
    )


class Elbv2Listener(Kind[Elbv2ListenerSpec], WeightedKind[Elbv2ListenerSpec]):
    name = "elbv2-listener"
    spec_model = Elbv2ListenerSpec
    estimate_seconds = 2.0
    version_noun = "target group"

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

    # -- weighted: a version is a target group, by name (its ARN is accepted) -----------------------------------

    def resolve_version(self, spec: Elbv2ListenerSpec, ctx: KindContext, state: State, version: str) -> str:
        return _tg_name(_target_group_arn(ctx, version))

    def current_split(self, spec: Elbv2ListenerSpec, state: State) -> Split:
        return split_by_weight({_tg_name(arn): float(w) for arn, w in state["target_groups"].items()})

    def split(
        self, spec: Elbv2ListenerSpec, ctx: KindContext, state: State, stable: str, candidate: str, percent: float
    ) -> State:
        """Weights in whole percents; the other groups of the forward action stay in it with weight 0."""
        groups: dict[str, int] = {arn: 0 for arn in state["target_groups"]}
        arns = {_tg_name(arn): arn for arn in groups}
        share = whole_percent(percent)
        for name, weight in ((stable, 100 - share), (candidate, share)):
            groups[arns.get(name) or _target_group_arn(ctx, name)] = weight
        return {"target_groups": dict(sorted(groups.items()))}

    def placeholders(self, spec: Elbv2ListenerSpec, state: State, version: str) -> dict[str, str]:
        """CloudWatch's AWS/ApplicationELB dimensions: TargetGroup (targetgroup/NAME/ID), LoadBalancer."""
        out = {"load_balancer": _load_balancer(spec.listener_arn)}
        arn = next((a for a in state["target_groups"] if _tg_name(a) == version), None)
        if arn is not None:
            out["target_group"] = arn.split(":")[-1]
        return out

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


def _target_group_arn(ctx: KindContext, version: str) -> str:
    """A target group's ARN, from its name or ARN; BadInput when there is none."""
    query = {"TargetGroupArns": [version]} if version.startswith("arn:") else {"Names": [version]}
    try:
        with map_aws_errors(f"elbv2:DescribeTargetGroups {version}"):
            groups = ctx.aws.client("elbv2").describe_target_groups(**query)["TargetGroups"]
    except ResourceNotFound:
        groups = []
    if not groups:
        raise BadInput(f"--version: no target group {version!r} (create it and register its targets first)")
    return str(groups[0]["TargetGroupArn"])


def _load_balancer(listener_arn: str) -> str:
    """arn:...:listener/app/NAME/LB_ID/LISTENER_ID -> app/NAME/LB_ID (CloudWatch's LoadBalancer dimension)."""
    path = listener_arn.split(":")[-1].split("/")
    return "/".join(path[1:4]) if len(path) >= 4 else listener_arn


def _tg_name(arn: str) -> str:
    """arn:...:targetgroup/NAME/ID -> NAME."""
    parts = arn.split("/")
    return parts[-2] if len(parts) >= 3 else arn
