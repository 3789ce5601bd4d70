"""stepfunctions-alias: the state machine versions a Step Functions alias routes to, and their weights."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, model_validator

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import BadInput, ResourceNotFound
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


class StepfunctionsAliasSpec(Component):
    kind: Literal["stepfunctions-alias"] = "stepfunctions-alias"
    alias_arn: str | None = Field(default=None, description="The alias ARN (or give `state_machine` and `alias`).")
    state_machine: str | None = Field(default=None, description="State machine name or ARN.")
    alias: str | None = Field(default=None, description="Alias name, with `state_machine`.")

    @model_validator(mode="after")
    def _one_alias(self) -> Self:
        half = (self.state_machine is None) != (self.alias is None)
        by_parts = self.state_machine is not None and self.alias is not None
        if half or (self.alias_arn is not None) == by_parts:
            raise ValueError("give alias_arn, or state_machine and alias")
        return self


class StepfunctionsAlias(Kind[StepfunctionsAliasSpec], WeightedKind[StepfunctionsAliasSpec]):
    name = "stepfunctions-alias"
    spec_model = StepfunctionsAliasSpec
    estimate_seconds = 1.0

    def read(self, spec: StepfunctionsAliasSpec, ctx: KindContext) -> State:
        arn = self._alias_arn(spec, ctx)
        with map_aws_errors(f"states:DescribeStateMachineAlias {arn}"):
            alias = ctx.aws.client("stepfunctions").describe_state_machine_alias(stateMachineAliasArn=arn)
        return {"routing": _routing(alias.get("routingConfiguration") or [])}

    def differences(self, spec: StepfunctionsAliasSpec, current: State, target: State) -> list[str]:
        if current["routing"] == target["routing"]:
            return []
        return [f"routing {self.describe(current)} -> {self.describe(target)}"]

    def apply(self, spec: StepfunctionsAliasSpec, ctx: KindContext, target: State) -> ApplyResult:
        if not self.differences(spec, self.read(spec, ctx), target):
            return ApplyResult("already at target", changed=False)
        arn = self._alias_arn(spec, ctx)
        routing = [{"stateMachineVersionArn": r["version_arn"], "weight": r["weight"]} for r in target["routing"]]
        with map_aws_errors(f"states:UpdateStateMachineAlias {arn}"):
            ctx.aws.client("stepfunctions").update_state_machine_alias(
                stateMachineAliasArn=arn, routingConfiguration=routing
            )
        return ApplyResult(f"alias routes {self.describe(target)}")

    @staticmethod
    def _alias_arn(spec: StepfunctionsAliasSpec, ctx: KindContext) -> str:
        if spec.alias_arn:
            return spec.alias_arn
        machine = str(spec.state_machine)
        if machine.startswith("arn:"):
            return f"{machine}:{spec.alias}"
        with map_aws_errors("states:ListStateMachines"):
            for page in ctx.aws.client("stepfunctions").get_paginator("list_state_machines").paginate():
                for found in page["stateMachines"]:
                    if found["name"] == machine:
                        return f"{found['stateMachineArn']}:{spec.alias}"
        raise ResourceNotFound(f"states:ListStateMachines: no state machine named {machine!r}")

    def action_name(self, current: State, target: State) -> str:
        return "update-alias"

    def describe(self, state: State) -> str:
        routes = state["routing"]
        if not routes:
            return "nothing"
        return ", ".join(f"{r['weight']}% to version {_version(r['version_arn'])}" for r in routes)

    # -- weighted: a version is the state machine's version number (its ARN is accepted) -------------------------

    def resolve_version(self, spec: StepfunctionsAliasSpec, ctx: KindContext, state: State, version: str) -> str:
        machine = self._alias_arn(spec, ctx).rsplit(":", 1)[0]
        number = version
        if version.startswith("arn:"):
            if version.rsplit(":", 1)[0] != machine:
                raise BadInput(f"--version: {version} is not a version of state machine {machine}")
            number = version.rsplit(":", 1)[1]
        if not number.isdigit():
            raise BadInput(f"--version: a state machine version is a number or a version ARN, not {version!r}")
        try:
            with map_aws_errors(f"states:DescribeStateMachine {machine}:{number}"):
                ctx.aws.client("stepfunctions").describe_state_machine(stateMachineArn=f"{machine}:{number}")
        except ResourceNotFound:
            raise BadInput(f"--version: {machine} has no version {number} (publish it first)") from None
        return number

    def current_split(self, spec: StepfunctionsAliasSpec, state: State) -> Split:
        weights = {_version(r["version_arn"]): float(r["weight"]) for r in state["routing"]}
        return split_by_weight(weights, order=int)

    def split(
        self,
        spec: StepfunctionsAliasSpec,
        ctx: KindContext,
        state: State,
        stable: str,
        candidate: str,
        percent: float,
    ) -> State:
        """Step Functions weights are whole percents, and an alias routes to at most two versions."""
        machine = _machine(state)
        share = whole_percent(percent)
        routes = [(stable, 100 - share), (candidate, share)]
        config = [{"stateMachineVersionArn": f"{machine}:{v}", "weight": w} for v, w in routes if w > 0]
        return {"routing": _routing(config)}

    def placeholders(self, spec: StepfunctionsAliasSpec, state: State, version: str) -> dict[str, str]:
        machine = _machine(state)
        alias = spec.alias_arn or f"{machine}:{spec.alias}"
        return {"version_arn": f"{machine}:{version}", "state_machine_arn": machine, "alias_arn": alias}

    def iam_statements(self, spec: StepfunctionsAliasSpec, scope: IamScope) -> list[IamStatement]:
        if spec.alias_arn:
            alias = spec.alias_arn
        elif str(spec.state_machine).startswith("arn:"):
            alias = f"{spec.state_machine}:{spec.alias}"
        else:
            prefix = f"arn:{scope.partition}:states:{scope.region}:{scope.account}:stateMachine"
            alias = f"{prefix}:{spec.state_machine}:{spec.alias}"
        statements = [
            IamStatement(
                actions=("states:DescribeStateMachineAlias", "states:UpdateStateMachineAlias"),
                resources=(alias,),
                purpose="read and move the alias's routing",
            )
        ]
        if spec.state_machine and not spec.state_machine.startswith("arn:"):
            statements.append(
                IamStatement(
                    actions=("states:ListStateMachines",),
                    resources=("*",),  # a list action: it takes no resource ARN
                    purpose=f"find state machine {spec.state_machine}",
                )
            )
        statements.append(
            IamStatement(
                actions=("states:DescribeStateMachine",),
                resources=(f"{alias.rsplit(':', 1)[0]}:*",),
                purpose="deploy: the version to shift to exists",
            )
        )
        return statements


def _routing(config: list[dict[str, Any]]) -> list[dict[str, Any]]:
    routes = [{"version_arn": str(r["stateMachineVersionArn"]), "weight": int(r["weight"])} for r in config]
    return sorted(routes, key=lambda r: (-r["weight"], r["version_arn"]))


def _version(version_arn: str) -> str:
    return version_arn.rsplit(":", 1)[-1]


def _machine(state: State) -> str:
    """The state machine's ARN, from the versions the alias routes to."""
    if not state["routing"]:
        raise ResourceNotFound("the alias routes to no state machine version")
    return str(state["routing"][0]["version_arn"]).rsplit(":", 1)[0]
