"""apigateway-stage: the deployment a REST API stage serves and its stage-wide (`*/*`) throttling.

It also takes part in the emergency stop: throttling every method of the stage to 0 requests a second.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal, Self

from pydantic import Field, model_validator

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, State

ALL_METHODS = "*/*"
_RATE, _BURST = "throttlingRateLimit", "throttlingBurstLimit"
_PATHS = {"rate_limit": "/*/*/throttling/rateLimit", "burst_limit": "/*/*/throttling/burstLimit"}


class ApigatewayStageSpec(Component):
    kind: Literal["apigateway-stage"] = "apigateway-stage"
    rest_api_id: str | None = Field(default=None, description="REST API id (or give `rest_api`, its name).")
    rest_api: str | None = Field(default=None, description="REST API name, resolved to its id with GetRestApis.")
    stage: str = Field(description="Stage name.")

    @model_validator(mode="after")
    def _one_api(self) -> Self:
        if (self.rest_api_id is None) == (self.rest_api is None):
            raise ValueError("give exactly one of rest_api_id or rest_api")
        return self


class ApigatewayStage(Kind[ApigatewayStageSpec]):
    name = "apigateway-stage"
    spec_model = ApigatewayStageSpec
    estimate_seconds = 2.0

    def read(self, spec: ApigatewayStageSpec, ctx: KindContext) -> State:
        stage = self._stage(self._api_id(spec, ctx), spec, ctx)
        return {"deployment_id": stage.get("deploymentId"), "throttling": _throttling(stage)}

    def differences(self, spec: ApigatewayStageSpec, current: State, target: State) -> list[str]:
        out = []
        if current["deployment_id"] != target["deployment_id"]:
            out.append(f"deployment {current['deployment_id']} -> {target['deployment_id']}")
        if current["throttling"] != target["throttling"]:
            out.append(f"throttling {_limits(current['throttling'])} -> {_limits(target['throttling'])}")
        return out

    def apply(self, spec: ApigatewayStageSpec, ctx: KindContext, target: State) -> ApplyResult:
        api_id = self._api_id(spec, ctx)
        stage = self._stage(api_id, spec, ctx)
        current = {"deployment_id": stage.get("deploymentId"), "throttling": _throttling(stage)}
        if not self.differences(spec, current, target):
            return ApplyResult("already at target", changed=False)
        ops: list[dict[str, str]] = []
        if current["deployment_id"] != target["deployment_id"]:
            self._check_deployment(api_id, ctx, target["deployment_id"])
            ops.append({"op": "replace", "path": "/deploymentId", "value": target["deployment_id"]})
        ops += _throttling_ops(current["throttling"], target["throttling"])
        self._update(api_id, spec, ctx, ops)
        return ApplyResult(f"stage {spec.stage} -> {self.describe(target)}")

    # The emergency stop.

    def takes_part_in_stop(self, spec: ApigatewayStageSpec) -> bool:
        return True

    def stop(self, spec: ApigatewayStageSpec, ctx: KindContext) -> State:
        """Throttle the whole stage to 0. Returns the limits it had; when they were already 0 (a repeated
        stop, or a stage stopped by hand) `already_stopped` is true and a caller keeps the state it saved first."""
        api_id = self._api_id(spec, ctx)
        before = _throttling(self._stage(api_id, spec, ctx))
        stopped = before == _STOPPED
        if not stopped:
            self._update(api_id, spec, ctx, _throttling_ops(before, _STOPPED))
        return {"throttling": before, "already_stopped": stopped}

    def release_stop(self, spec: ApigatewayStageSpec, ctx: KindContext, saved: State) -> ApplyResult:
        if saved.get("already_stopped"):
            return ApplyResult("the stage was already throttled to 0 before the stop: left so", changed=False)
        api_id = self._api_id(spec, ctx)
        current = _throttling(self._stage(api_id, spec, ctx))
        if current == saved["throttling"]:
            return ApplyResult("throttling already restored", changed=False)
        self._update(api_id, spec, ctx, _throttling_ops(current, saved["throttling"]))
        return ApplyResult(f"throttling restored to {_limits(saved['throttling'])}")

    # AWS calls.

    @staticmethod
    def _stage(api_id: str, spec: ApigatewayStageSpec, ctx: KindContext) -> dict[str, Any]:
        with map_aws_errors(f"apigateway:GetStage {api_id}/{spec.stage}"):
            return dict(ctx.aws.client("apigateway").get_stage(restApiId=api_id, stageName=spec.stage))

    @staticmethod
    def _update(api_id: str, spec: ApigatewayStageSpec, ctx: KindContext, ops: list[dict[str, str]]) -> None:
        with map_aws_errors(f"apigateway:UpdateStage {api_id}/{spec.stage}"):
            ctx.aws.client("apigateway").update_stage(restApiId=api_id, stageName=spec.stage, patchOperations=ops)

    @staticmethod
    def _check_deployment(api_id: str, ctx: KindContext, deployment_id: str) -> None:
        # Listed rather than fetched: a missing deployment is "NotFoundException" on AWS and a 500 on moto.
        with map_aws_errors(f"apigateway:GetDeployments {api_id}"):
            pages = ctx.aws.client("apigateway").get_paginator("get_deployments").paginate(restApiId=api_id)
            if any(item["id"] == deployment_id for page in pages for item in page.get("items") or []):
                return
        raise StepFailed(
            f"deployment {deployment_id} of REST API {api_id} no longer exists, so the stage cannot go back"
        )

    @staticmethod
    def _api_id(spec: ApigatewayStageSpec, ctx: KindContext) -> str:
        if spec.rest_api_id:
            return spec.rest_api_id
        ids = []
        with map_aws_errors("apigateway:GetRestApis"):
            for page in ctx.aws.client("apigateway").get_paginator("get_rest_apis").paginate():
                ids += [api["id"] for api in page.get("items") or [] if api.get("name") == spec.rest_api]
        if len(ids) != 1:
            found = "no REST API" if not ids else f"{len(ids)} REST APIs ({', '.join(ids)})"
            raise ResourceNotFound(f"apigateway:GetRestApis: {found} named {spec.rest_api!r}")
        return str(ids[0])

    # Presentation and IAM.

    def plan(self, spec: ApigatewayStageSpec, current: State, target: State) -> Change | None:
        change = super().plan(spec, current, target)
        notes = []
        if change and current["throttling"] == _STOPPED and target["throttling"] != _STOPPED:
            notes.append("the stage is throttled to 0 (an emergency stop?): restoring the limits lifts it")
        if change and current["throttling"] is not None and target["throttling"] is None:
            notes.append("removes the stage-wide */* method settings, which did not exist at the release")
        return replace(change, notes=tuple(notes)) if change and notes else change

    def action_name(self, current: State, target: State) -> str:
        return "update-stage"

    def describe(self, state: State) -> str:
        return f"deployment {state['deployment_id']}, throttling {_limits(state['throttling'])}"

    def iam_statements(self, spec: ApigatewayStageSpec, scope: IamScope) -> list[IamStatement]:
        arn = f"arn:{scope.partition}:apigateway:{scope.region}::/restapis"
        api = f"{arn}/{spec.rest_api_id or '*'}"
        statements = [
            IamStatement(
                actions=("apigateway:GET", "apigateway:PATCH"),
                resources=(f"{api}/stages/{spec.stage}",),
                purpose=f"read and update stage {spec.stage} (deployment, throttling)",
            ),
            IamStatement(
                actions=("apigateway:GET",),
                resources=(f"{api}/deployments",),
                purpose="check the recorded deployment still exists",
            ),
        ]
        if spec.rest_api:
            statements.append(
                IamStatement(actions=("apigateway:GET",), resources=(arn,), purpose=f"find REST API {spec.rest_api}")
            )
        return statements


_STOPPED: dict[str, Any] = {"rate_limit": 0.0, "burst_limit": 0}


def _throttling(stage: dict[str, Any]) -> dict[str, Any] | None:
    """The stage-wide limits; None when the stage has no `*/*` method settings (the account's limits apply)."""
    settings = (stage.get("methodSettings") or {}).get(ALL_METHODS)
    if settings is None:
        return None
    rate, burst = settings.get(_RATE), settings.get(_BURST)
    return {
        "rate_limit": None if rate is None else float(rate),
        "burst_limit": None if burst is None else int(burst),
    }


def _throttling_ops(current: dict[str, Any] | None, target: dict[str, Any] | None) -> list[dict[str, str]]:
    if current == target:
        return []
    if target is None:
        # Only removing the whole `*/*` entry brings back "no stage-wide settings".
        return [{"op": "remove", "path": "/*/*"}]
    return [
        {"op": "replace", "path": path, "value": _number(target[key])}
        for key, path in _PATHS.items()
        if target[key] is not None and (current or {}).get(key) != target[key]
    ]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _limits(throttling: dict[str, Any] | None) -> str:
    if throttling is None:
        return "account default"
    rate, burst = throttling["rate_limit"], throttling["burst_limit"]
    return f"{'unset' if rate is None else _number(rate)}/s burst {'unset' if burst is None else burst}"
