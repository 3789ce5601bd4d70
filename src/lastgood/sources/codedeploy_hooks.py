"""CodeDeploy hook failures: the lifecycle hooks (BeforeAllowTraffic, AfterAllowTraffic, ...) of a deployment
group's recent deployments that reported Failed, counted per period by the time the hook ended.

ListDeployments (created within `lookback` of the window), ListDeploymentTargets, BatchGetDeploymentTargets (25
targets a call); Lambda, ECS and instance targets alike. Every complete period in the window has a value (0 when
no hook failed); a call that fails is an error Series.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from lastgood.aws.clients import AwsClients
from lastgood.aws.errors import map_aws_errors
from lastgood.config.durations import Condition, Duration
from lastgood.config.models import Strict, positive_period
from lastgood.errors import AwsError
from lastgood.sources.base import Series, SeriesRequest, counted

TARGETS_PER_CALL = 25
_TARGET_KEYS = ("lambdaTarget", "ecsTarget", "instanceTarget", "cloudFormationTarget")


class HookQuery(Strict):
    """Failed lifecycle hooks of a deployment group's deployments."""

    application: str = Field(min_length=1, max_length=100, description="The CodeDeploy application.")
    deployment_group: str = Field(min_length=1, max_length=100, description="Its deployment group.")
    hooks: list[str] = Field(
        default_factory=lambda: ["BeforeAllowTraffic", "AfterAllowTraffic"],
        min_length=1,
        description="The lifecycle events counted when they fail.",
    )
    lookback: Duration = Field(
        default=6 * 3600.0, gt=0, description="Deployments created this long before the window are read too."
    )


class CodeDeployHooksSource:
    """`codedeploy_hooks:` failed CodeDeploy lifecycle hooks counted per period."""

    name = "codedeploy_hooks"
    settings: ClassVar[Any] = HookQuery
    per_settings: ClassVar[Any] = None
    per_shape: ClassVar[str] = ""
    iam_actions: ClassVar[tuple[str, ...]] = (
        "codedeploy:ListDeployments",
        "codedeploy:ListDeploymentTargets",
        "codedeploy:BatchGetDeploymentTargets",
    )

    def __init__(self, aws: AwsClients) -> None:
        self.aws = aws

    @classmethod
    def build(cls, aws: AwsClients, queries: list[BaseModel]) -> CodeDeployHooksSource:
        return cls(aws)

    @classmethod
    def check_period(cls, period: float) -> None:
        positive_period(period)

    @classmethod
    def check_trigger(cls, query: Any, per: Any, when: Condition, period: float) -> None:
        if when.kind == "baseline":
            raise ValueError("hook failures are counted, not compared with a baseline")

    def fetch(self, requests: list[SeriesRequest], start: datetime, end: datetime) -> dict[str, Series]:
        out: dict[str, Series] = {}
        for request in requests:
            query = request.query
            if not isinstance(query, HookQuery):
                out[request.id] = Series(request.id, status="error", error=f"not a CodeDeploy hook query: {query!r}")
                continue
            try:
                failed = self._failed_hooks(query, start, end)
            except AwsError as error:
                group = f"{query.application}/{query.deployment_group}"
                out[request.id] = Series(request.id, status="error", error=f"CodeDeploy {group}: {error}")
                continue
            out[request.id] = counted(request, [at.timestamp() for at in failed], start, end)
        return out

    def _failed_hooks(self, query: HookQuery, start: datetime, end: datetime) -> list[datetime]:
        """When each counted hook failed (its end, else its start)."""
        stamps: list[datetime] = []
        for deployment in self._deployments(query, start - timedelta(seconds=query.lookback), end):
            for target in self._targets(deployment):
                for event in _lifecycle_events(target):
                    at = event.get("endTime") or event.get("startTime")
                    if event.get("status") == "Failed" and event.get("lifecycleEventName") in query.hooks and at:
                        stamps.append(at.astimezone(UTC))
        return stamps

    def _deployments(self, query: HookQuery, since: datetime, until: datetime) -> list[str]:
        client = self.aws.client("codedeploy")
        kwargs: dict[str, Any] = {
            "applicationName": query.application,
            "deploymentGroupName": query.deployment_group,
            "createTimeRange": {"start": since, "end": until},
        }
        found: list[str] = []
        while True:
            with map_aws_errors("codedeploy:ListDeployments"):
                page = client.list_deployments(**kwargs)
            found += page.get("deployments", [])
            if not page.get("nextToken"):
                return found
            kwargs["nextToken"] = page["nextToken"]

    def _targets(self, deployment_id: str) -> list[dict[str, Any]]:
        client = self.aws.client("codedeploy")
        kwargs: dict[str, Any] = {"deploymentId": deployment_id}
        ids: list[str] = []
        while True:
            with map_aws_errors("codedeploy:ListDeploymentTargets"):
                page = client.list_deployment_targets(**kwargs)
            ids += page.get("targetIds", [])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        targets: list[dict[str, Any]] = []
        for index in range(0, len(ids), TARGETS_PER_CALL):
            with map_aws_errors("codedeploy:BatchGetDeploymentTargets"):
                answer = client.batch_get_deployment_targets(
                    deploymentId=deployment_id, targetIds=ids[index : index + TARGETS_PER_CALL]
                )
            targets += answer.get("deploymentTargets", [])
        return targets


def _lifecycle_events(target: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for key in _TARGET_KEYS for e in (target.get(key) or {}).get("lifecycleEvents", [])]
