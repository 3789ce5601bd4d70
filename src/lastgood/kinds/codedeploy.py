"""codedeploy: the revision of a deployment group's last successful deployment, redeployed on rollback.

Deployments in flight are stopped first (CodeDeploy rolls their instances back itself). While CodeDeploy's own
rollback runs the group is busy, so the recorded revision is deployed on a second apply: verify raises a
retryable error once the group is idle on another revision, and the engine applies again.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import AwsError, StepFailed
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, State, value_hash

# "Baking" too: a blue/green deployment in its bake time still holds the group.
IN_FLIGHT = ["Created", "Queued", "InProgress", "Baking", "Ready"]
ENDED_BADLY = frozenset({"Failed", "Stopped"})
CODEDEPLOY_ROLLBACK = "codeDeployRollback"  # the creator of the deployments CodeDeploy starts to roll back
BATCH = 25  # BatchGetDeployments takes at most 25 ids


class CodeDeploySpec(Component):
    kind: Literal["codedeploy"] = "codedeploy"
    application: str = Field(description="CodeDeploy application name; {env} is substituted.")
    deployment_group: str = Field(description="Deployment group name; {env} is substituted.")


class GroupSettledElsewhere(StepFailed):
    """Nothing is in flight any more but the group's last successful revision is not the recorded one (after
    stopping a deployment, CodeDeploy rolls back to the revision before it). Retryable: apply again deploys it."""

    retryable = True


@dataclass
class _Run:
    """What this process did for one step (group + token); the step's apply and its verify polls share it."""

    action: str = ""  # create | stop | wait
    created: str | None = None
    reported: dict[str, str] = field(default_factory=dict)  # deployment id -> the last progress line


def revision_label(revision: dict[str, Any] | None) -> str:
    if not revision:
        return "no successful deployment"
    kind = revision.get("revisionType")
    if kind == "S3":
        s3 = revision.get("s3Location") or {}
        label = f"s3://{s3.get('bucket')}/{s3.get('key')}"
        if s3.get("version"):
            return f"{label} (version {str(s3['version'])[:8]})"
        return f"{label} (eTag {str(s3['eTag'])[:8]})" if s3.get("eTag") else label
    if kind == "GitHub":
        github = revision.get("gitHubLocation") or {}
        return f"github:{github.get('repository')}@{str(github.get('commitId'))[:8]}"
    return f"{kind} revision {value_hash(_canonical(revision)).removeprefix('sha256:')[:8]}"


def _canonical(revision: dict[str, Any] | None) -> str:
    return json.dumps(revision, sort_keys=True)


class CodeDeploy(Kind[CodeDeploySpec]):
    name = "codedeploy"
    spec_model = CodeDeploySpec
    estimate_seconds = 600.0
    verify_timeout_seconds = 3600.0
    verify_interval_seconds = 10.0
    slow = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str, str], _Run] = {}

    # reading

    def read(self, spec: CodeDeploySpec, ctx: KindContext) -> State:
        return self._read(spec, ctx)[0]

    def _read(self, spec: CodeDeploySpec, ctx: KindContext) -> tuple[State, dict[str, Any] | None]:
        last = self._last_successful(spec, ctx)
        state = {
            "deployment_id": last["deploymentId"] if last else None,
            "revision": last.get("revision") if last else None,
            "in_flight": self._in_flight(spec, ctx),
        }
        return state, last

    def _last_successful(self, spec: CodeDeploySpec, ctx: KindContext) -> dict[str, Any] | None:
        client = ctx.aws.client("codedeploy")
        with map_aws_errors(f"codedeploy:GetDeploymentGroup {_group(spec)}"):
            group = client.get_deployment_group(
                applicationName=spec.application, deploymentGroupName=spec.deployment_group
            )["deploymentGroupInfo"]
        deployment_id = (group.get("lastSuccessfulDeployment") or {}).get("deploymentId")
        return self._deployment(ctx, deployment_id) if deployment_id else None

    @staticmethod
    def _deployment(ctx: KindContext, deployment_id: str) -> dict[str, Any]:
        with map_aws_errors(f"codedeploy:GetDeployment {deployment_id}"):
            return dict(ctx.aws.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"])

    def _in_flight(self, spec: CodeDeploySpec, ctx: KindContext) -> list[str]:
        kwargs: dict[str, Any] = {
            "applicationName": spec.application,
            "deploymentGroupName": spec.deployment_group,
            "includeOnlyStatuses": IN_FLIGHT,
        }
        found: list[str] = []
        with map_aws_errors(f"codedeploy:ListDeployments {_group(spec)}"):
            while True:
                page = ctx.aws.client("codedeploy").list_deployments(**kwargs)
                found += page.get("deployments") or []
                if not page.get("nextToken"):
                    return sorted(found)
                kwargs["nextToken"] = page["nextToken"]

    @staticmethod
    def _deployments(spec: CodeDeploySpec, ctx: KindContext, ids: list[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), BATCH):
            with map_aws_errors(f"codedeploy:BatchGetDeployments {_group(spec)}"):
                page = ctx.aws.client("codedeploy").batch_get_deployments(deploymentIds=ids[start : start + BATCH])
            found += page.get("deploymentsInfo") or []
        return found

    # comparing

    def differences(self, spec: CodeDeploySpec, current: State, target: State) -> list[str]:
        out = []
        if _canonical(current["revision"]) != _canonical(target["revision"]):
            out.append(f"revision {revision_label(current['revision'])} -> {revision_label(target['revision'])}")
        out += [f"deployment {deployment_id} is in flight" for deployment_id in current.get("in_flight") or []]
        return out

    def plan(self, spec: CodeDeploySpec, current: State, target: State) -> Change | None:
        change = super().plan(spec, current, target)
        if change is None or not current.get("in_flight"):
            return change
        stopping = f"stops {', '.join(current['in_flight'])} first (CodeDeploy rolls its targets back)"
        return replace(change, notes=(stopping,))

    def action_name(self, current: State, target: State) -> str:
        return "stop-and-redeploy" if current.get("in_flight") else "redeploy"

    def describe(self, state: State) -> str:
        label = revision_label(state["revision"])
        return f"{label} ({state['deployment_id']})" if state["deployment_id"] else label

    def warnings(self, spec: CodeDeploySpec, state: State) -> list[str]:
        out = []
        if not state["revision"]:
            out.append(f"{_group(spec)} has no successful deployment: a rollback to this release cannot redeploy")
        if state.get("in_flight"):
            out.append(
                f"{_group(spec)}: {', '.join(state['in_flight'])} was in flight when recorded; the recorded "
                f"revision is the last successful one ({state['deployment_id']})"
            )
        return out

    # rolling back

    def apply(self, spec: CodeDeploySpec, ctx: KindContext, target: State) -> ApplyResult:
        current, _ = self._read(spec, ctx)
        if current["in_flight"]:
            return self._settle_in_flight(spec, ctx, current["in_flight"])
        if not self.differences(spec, current, target):
            return ApplyResult("already at target", changed=False)
        if not target["revision"]:
            raise StepFailed(
                f"{_group(spec)} had no successful deployment when the release was recorded: no revision to deploy"
            )
        return self._create(spec, ctx, target)

    def _settle_in_flight(self, spec: CodeDeploySpec, ctx: KindContext, ids: list[str]) -> ApplyResult:
        deployments = self._deployments(spec, ctx, ids)
        ours = [d for d in deployments if (d.get("description") or "").startswith(_marker(ctx))]
        if ours:
            self._start(spec, ctx, "create", ours[0]["deploymentId"])
            return ApplyResult(f"deployment {ours[0]['deploymentId']} of this rollback is already {ours[0]['status']}")
        to_stop = [d["deploymentId"] for d in deployments if d.get("creator") != CODEDEPLOY_ROLLBACK]
        for deployment_id in to_stop:
            self._stop(ctx, deployment_id)
        self._start(spec, ctx, "stop" if to_stop else "wait")
        if to_stop:
            return ApplyResult(f"stopped {', '.join(to_stop)}; CodeDeploy rolls their instances back")
        return ApplyResult(f"waiting for CodeDeploy's own rollback {', '.join(ids)}")

    @staticmethod
    def _stop(ctx: KindContext, deployment_id: str) -> None:
        try:
            with map_aws_errors(f"codedeploy:StopDeployment {deployment_id}"):
                ctx.aws.client("codedeploy").stop_deployment(deploymentId=deployment_id, autoRollbackEnabled=True)
        except AwsError as error:
            if "DeploymentAlreadyCompletedException" not in str(error):
                raise

    def _create(self, spec: CodeDeploySpec, ctx: KindContext, target: State) -> ApplyResult:
        with map_aws_errors(f"codedeploy:CreateDeployment {_group(spec)}"):
            created = ctx.aws.client("codedeploy").create_deployment(
                applicationName=spec.application,
                deploymentGroupName=spec.deployment_group,
                revision=target["revision"],
                description=f"{_marker(ctx)} redeploy the revision of {target['deployment_id']}",
            )["deploymentId"]
        self._start(spec, ctx, "create", created)
        return ApplyResult(f"started deployment {created} of {revision_label(target['revision'])}")

    # verifying

    def verify(self, spec: CodeDeploySpec, ctx: KindContext, target: State) -> list[str]:
        current, last = self._read(spec, ctx)
        run = self._run(spec, ctx)
        if current["in_flight"]:
            deployments = self._deployments(spec, ctx, current["in_flight"])
            self._report(ctx, run, deployments)
            return [_progress_line(d) for d in deployments]
        if run.created and (last or {}).get("deploymentId") != run.created:
            mine = self._deployment(ctx, run.created)
            if mine.get("status") in ENDED_BADLY:
                raise StepFailed(_failure(mine))
        problems = self.differences(spec, current, target)
        if not problems:
            self._forget(spec, ctx)
            return []
        if run.action in ("stop", "wait"):
            raise GroupSettledElsewhere(
                f"{_group(spec)} is idle on {self.describe(current)}, not the recorded {self.describe(target)}; "
                "applying again deploys the recorded revision"
            )
        if run.action == "create":
            raise StepFailed(f"{_group(spec)}: deployment {run.created} ended but {'; '.join(problems)}")
        return problems

    def _report(self, ctx: KindContext, run: _Run, deployments: list[dict[str, Any]]) -> None:
        for deployment in deployments:
            line = _progress_line(deployment)
            with self._lock:
                if run.reported.get(deployment["deploymentId"]) == line:
                    continue
                run.reported[deployment["deploymentId"]] = line
            ctx.progress(line)

    def _run(self, spec: CodeDeploySpec, ctx: KindContext) -> _Run:
        with self._lock:
            return self._runs.setdefault((spec.application, spec.deployment_group, ctx.token), _Run())

    def _start(self, spec: CodeDeploySpec, ctx: KindContext, action: str, created: str | None = None) -> None:
        with self._lock:
            self._runs[(spec.application, spec.deployment_group, ctx.token)] = _Run(action, created)

    def _forget(self, spec: CodeDeploySpec, ctx: KindContext) -> None:
        with self._lock:
            self._runs.pop((spec.application, spec.deployment_group, ctx.token), None)

    def iam_statements(self, spec: CodeDeploySpec, scope: IamScope) -> list[IamStatement]:
        prefix = f"arn:{scope.partition}:codedeploy:{scope.region}:{scope.account}"
        group = f"{prefix}:deploymentgroup:{spec.application}/{spec.deployment_group}"
        return [
            IamStatement(
                actions=(
                    "codedeploy:GetDeploymentGroup",
                    "codedeploy:GetDeployment",
                    "codedeploy:ListDeployments",
                    "codedeploy:BatchGetDeployments",
                ),
                resources=(group,),
                purpose="read the group's last successful deployment and what is in flight",
            ),
            IamStatement(
                actions=("codedeploy:StopDeployment", "codedeploy:CreateDeployment"),
                resources=(group,),
                purpose="stop deployments in flight and redeploy the recorded revision",
            ),
            IamStatement(
                actions=("codedeploy:GetApplicationRevision", "codedeploy:RegisterApplicationRevision"),
                resources=(f"{prefix}:application:{spec.application}",),
                purpose="CreateDeployment registers the revision with the application",
            ),
            IamStatement(
                actions=("codedeploy:GetDeploymentConfig",),
                resources=(f"{prefix}:deploymentconfig:*",),
                purpose="CreateDeployment reads the group's deployment configuration",
            ),
        ]


def _marker(ctx: KindContext) -> str:
    """How a deployment's description names the rollback step that started it (found again after a crash)."""
    return f"lastgood rollback {ctx.token}:"


def _group(spec: CodeDeploySpec) -> str:
    return f"{spec.application}/{spec.deployment_group}"


def _progress_line(deployment: dict[str, Any]) -> str:
    overview = deployment.get("deploymentOverview") or {}
    total = sum(int(v) for v in overview.values())
    who = " (CodeDeploy's rollback)" if deployment.get("creator") == CODEDEPLOY_ROLLBACK else ""
    done = f": {overview.get('Succeeded', 0)}/{total} targets succeeded" if total else ""
    return f"deployment {deployment['deploymentId']}{who} is {deployment.get('status')}{done}"


def _failure(deployment: dict[str, Any]) -> str:
    error = deployment.get("errorInformation") or {}
    detail = ": ".join(str(error[k]) for k in ("code", "message") if error.get(k))
    return f"deployment {deployment['deploymentId']} {deployment.get('status')}" + (f": {detail}" if detail else "")
