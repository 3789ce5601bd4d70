"""ecs-service: the task definition revision an ECS service runs and its desired count.

Rolling back starts an ECS deployment of the recorded revision; verify waits until it has settled.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, ReadinessCheck, State


class EcsServiceSpec(Component):
    kind: Literal["ecs-service"] = "ecs-service"
    cluster: str = Field(description="Cluster name or ARN.")
    service: str = Field(description="Service name or ARN.")


class EcsService(Kind[EcsServiceSpec]):
    name = "ecs-service"
    spec_model = EcsServiceSpec
    estimate_seconds = 300.0
    verify_timeout_seconds = 1800.0
    verify_interval_seconds = 10.0
    slow = True

    def read(self, spec: EcsServiceSpec, ctx: KindContext) -> State:
        service = self._service(spec, ctx)
        return {"task_definition": service["taskDefinition"], "desired_count": int(service["desiredCount"])}

    def differences(self, spec: EcsServiceSpec, current: State, target: State) -> list[str]:
        out = []
        if current["task_definition"] != target["task_definition"]:
            out.append(f"task definition {_revision(current)} -> {_revision(target)}")
        if current["desired_count"] != target["desired_count"]:
            out.append(f"desired count {current['desired_count']} -> {target['desired_count']}")
        return out

    def apply(self, spec: EcsServiceSpec, ctx: KindContext, target: State) -> ApplyResult:
        if not self.differences(spec, self.read(spec, ctx), target):
            return ApplyResult("already at target", changed=False)
        self._check_task_definition(ctx, target["task_definition"])
        with map_aws_errors(f"ecs:UpdateService {spec.cluster}/{spec.service}"):
            updated = ctx.aws.client("ecs").update_service(
                cluster=spec.cluster,
                service=spec.service,
                taskDefinition=target["task_definition"],
                desiredCount=target["desired_count"],
            )["service"]
        primary = _primary(updated.get("deployments") or [])
        started = f" (deployment {primary['id']})" if primary else ""
        return ApplyResult(f"service deploys {self.describe(target)}{started}")

    def verify(self, spec: EcsServiceSpec, ctx: KindContext, target: State) -> list[str]:
        service = self._service(spec, ctx)
        current = {"task_definition": service["taskDefinition"], "desired_count": int(service["desiredCount"])}
        problems = self.differences(spec, current, target)
        if problems:
            return problems
        unsettled = _unsettled(service.get("deployments") or [])
        if unsettled:
            ctx.progress("; ".join(unsettled))
        return unsettled

    def _service(self, spec: EcsServiceSpec, ctx: KindContext) -> dict[str, Any]:
        with map_aws_errors(f"ecs:DescribeServices {spec.cluster}/{spec.service}"):
            answer = ctx.aws.client("ecs").describe_services(cluster=spec.cluster, services=[spec.service])
        services = [s for s in answer.get("services") or [] if s.get("status") != "INACTIVE"]
        if not services:
            reasons = ", ".join(f["reason"] for f in answer.get("failures") or []) or "INACTIVE"
            raise ResourceNotFound(f"ecs:DescribeServices {spec.cluster}/{spec.service}: {reasons}")
        return dict(services[0])

    @staticmethod
    def _check_task_definition(ctx: KindContext, arn: str) -> None:
        with map_aws_errors(f"ecs:DescribeTaskDefinition {arn}"):
            status = ctx.aws.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"]
        if status != "ACTIVE":
            raise StepFailed(f"task definition {arn} is {status}: ECS will not deploy it; re-register it first")

    def readiness(self, spec: EcsServiceSpec, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        try:
            self._check_task_definition(ctx, state["task_definition"])
        except StepFailed as error:
            return [ReadinessCheck("impossible", str(error))]
        return [ReadinessCheck("ok", f"task definition {_revision(state)} is ACTIVE")]

    def plan(self, spec: EcsServiceSpec, current: State, target: State) -> Change | None:
        change = super().plan(spec, current, target)
        if change and target["desired_count"] < current["desired_count"]:
            note = f"desired count drops {current['desired_count']} -> {target['desired_count']} (as at the release)"
            return replace(change, notes=(note,))
        return change

    def action_name(self, current: State, target: State) -> str:
        return "deploy" if current["task_definition"] != target["task_definition"] else "scale"

    def describe(self, state: State) -> str:
        return f"{_revision(state)} x{state['desired_count']}"

    def iam_statements(self, spec: EcsServiceSpec, scope: IamScope) -> list[IamStatement]:
        base = f"arn:{scope.partition}:ecs:{scope.region}:{scope.account}"
        cluster = spec.cluster.split("/")[-1]
        service = spec.service.split("/")[-1]
        return [
            IamStatement(
                actions=("ecs:DescribeServices", "ecs:UpdateService"),
                resources=(f"{base}:service/{cluster}/{service}",),
                purpose=f"read and redeploy service {service}",
            ),
            IamStatement(
                actions=("ecs:DescribeTaskDefinition",),
                resources=("*",),  # DescribeTaskDefinition supports no resource-level permissions
                purpose="check the recorded task definition is still ACTIVE",
            ),
        ]


def _primary(deployments: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((d for d in deployments if d.get("status") == "PRIMARY"), None)


def _unsettled(deployments: list[dict[str, Any]]) -> list[str]:
    primary = _primary(deployments)
    if primary and primary.get("rolloutState") == "FAILED":
        reason = primary.get("rolloutStateReason")
        raise StepFailed(f"deployment {primary['id']} FAILED" + (f": {reason}" if reason else ""))
    out = [
        f"deployment {d['id']} ({d.get('status')}) still has {d.get('runningCount', 0)} running tasks"
        for d in deployments
        if d is not primary
    ]
    if primary and primary.get("rolloutState", "COMPLETED") != "COMPLETED":
        out.append(
            f"deployment {primary['id']} {primary['rolloutState']}: "
            f"{primary.get('runningCount', 0)}/{primary.get('desiredCount', 0)} running"
        )
    return out


def _revision(state: State) -> str:
    """family:revision from a task definition ARN."""
    return str(state["task_definition"]).rsplit("/", 1)[-1]
