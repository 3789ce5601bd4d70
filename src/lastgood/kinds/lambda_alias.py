"""lambda-alias: the version an alias points to and its weighted routing (canary) configuration."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import BadInput, ResourceNotFound
from lastgood.kinds.base import (
    ApplyResult,
    IamScope,
    IamStatement,
    Kind,
    KindContext,
    ReadinessCheck,
    Split,
    State,
    WeightedKind,
)


class LambdaAliasSpec(Component):
    kind: Literal["lambda-alias"] = "lambda-alias"
    function: str = Field(description="Function name or ARN; {env} is substituted.")
    alias: str = "live"


def _weights(routing: dict[str, Any] | None) -> dict[str, float]:
    weights = (routing or {}).get("AdditionalVersionWeights") or {}
    return {str(version): round(float(weight), 6) for version, weight in weights.items()}


class LambdaAlias(Kind[LambdaAliasSpec], WeightedKind[LambdaAliasSpec]):
    name = "lambda-alias"
    spec_model = LambdaAliasSpec
    estimate_seconds = 1.0

    def read(self, spec: LambdaAliasSpec, ctx: KindContext) -> State:
        with map_aws_errors(f"lambda:GetAlias {spec.function}:{spec.alias}"):
            alias = ctx.aws.client("lambda").get_alias(FunctionName=spec.function, Name=spec.alias)
        return {"version": str(alias["FunctionVersion"]), "weights": _weights(alias.get("RoutingConfig"))}

    def differences(self, spec: LambdaAliasSpec, current: State, target: State) -> list[str]:
        out = []
        if current["version"] != target["version"]:
            out.append(f"version {current['version']} -> {target['version']}")
        if current.get("weights", {}) != target.get("weights", {}):
            out.append(f"routing {self._routing(current)} -> {self._routing(target)}")
        return out

    def apply(self, spec: LambdaAliasSpec, ctx: KindContext, target: State) -> ApplyResult:
        current = ctx.known_state if ctx.known_state is not None else self.read(spec, ctx)
        if not self.differences(spec, current, target):
            return ApplyResult("already at target", changed=False, observed=current)
        with map_aws_errors(f"lambda:UpdateAlias {spec.function}:{spec.alias}"):
            alias = ctx.aws.client("lambda").update_alias(
                FunctionName=spec.function,
                Name=spec.alias,
                FunctionVersion=target["version"],
                RoutingConfig={"AdditionalVersionWeights": target.get("weights", {})},
            )
        observed = {"version": str(alias["FunctionVersion"]), "weights": _weights(alias.get("RoutingConfig"))}
        return ApplyResult(f"alias {spec.alias} -> {self.describe(target)}", observed=observed)

    def action_name(self, current: State, target: State) -> str:
        return "update-alias"

    def readiness(self, spec: LambdaAliasSpec, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        versions = sorted({str(state["version"]), *state.get("weights", {})})
        gone = [v for v in versions if not _version_exists(spec, ctx, v)]
        if gone:
            return [ReadinessCheck("impossible", f"{spec.function}: version {', '.join(gone)} no longer exists")]
        return [ReadinessCheck("ok", f"{spec.function}: version {', '.join(versions)} exists")]

    def describe(self, state: State) -> str:
        return f"version {state['version']}" + (f" ({self._routing(state)})" if state.get("weights") else "")

    @staticmethod
    def _routing(state: State) -> str:
        weights = state.get("weights") or {}
        if not weights:
            return "no extra weight"
        return ", ".join(f"{w * 100:g}% to version {v}" for v, w in sorted(weights.items()))

    # -- weighted: a version is the function's version number ---------------------------------------------------

    def resolve_version(self, spec: LambdaAliasSpec, ctx: KindContext, state: State, version: str) -> str:
        if not _version_exists(spec, ctx, version):
            raise BadInput(f"--version: {spec.function} has no version {version!r} (publish it first)")
        return version

    def current_split(self, spec: LambdaAliasSpec, state: State) -> Split:
        weights = {v: w for v, w in (state.get("weights") or {}).items() if w > 0}
        if not weights:
            return Split(str(state["version"]))
        candidate = max(weights, key=lambda v: weights[v])
        return Split(str(state["version"]), candidate, float(weights[candidate]))

    def split(
        self, spec: LambdaAliasSpec, ctx: KindContext, state: State, stable: str, candidate: str, percent: float
    ) -> State:
        """The stable version with `percent` extra weight on the candidate; at 100, the candidate alone."""
        if percent >= 100:
            return {"version": candidate, "weights": {}}
        if percent <= 0:
            return {"version": stable, "weights": {}}
        return {"version": stable, "weights": {candidate: round(percent / 100, 6)}}

    def placeholders(self, spec: LambdaAliasSpec, state: State, version: str) -> dict[str, str]:
        return {"function": spec.function, "alias": spec.alias}

    def iam_statements(self, spec: LambdaAliasSpec, scope: IamScope) -> list[IamStatement]:
        base = (
            spec.function
            if spec.function.startswith("arn:")
            else f"arn:{scope.partition}:lambda:{scope.region}:{scope.account}:function:{spec.function}"
        )
        return [
            IamStatement(
                actions=("lambda:GetFunctionConfiguration",),
                resources=(f"{base}:*",),
                purpose="readiness: the recorded versions still exist",
            ),
            IamStatement(
                actions=("lambda:GetAlias", "lambda:UpdateAlias"),
                resources=(base, f"{base}:{spec.alias}"),
                purpose=f"read and move alias {spec.alias}",
            ),
        ]


def _version_exists(spec: LambdaAliasSpec, ctx: KindContext, version: str) -> bool:
    try:
        with map_aws_errors(f"lambda:GetFunctionConfiguration {spec.function}:{version}"):
            ctx.aws.client("lambda").get_function_configuration(FunctionName=spec.function, Qualifier=version)
    except ResourceNotFound:
        return False
    return True
