"""cloudformation-stack: a stack's template and parameters, rolled back with UpdateStack.

A stack caught mid-update is cancelled instead, and a stack stuck in UPDATE_ROLLBACK_FAILED has its rollback
continued. Those two end wherever CloudFormation's own rollback lands; when that is not the recorded template,
verify raises a retryable error so the engine applies again, which then starts UpdateStack.

spec.py (the keys), template.py (templates and what an update does to resources), read.py (the stack and its
events), compare.py (differences), runs.py (what this process did per step), apply.py, verify.py.
"""

from __future__ import annotations

from lastgood.errors import ResourceNotFound
from lastgood.kinds.base import ApplyResult, Change, IamScope, IamStatement, Kind, KindContext, ReadinessCheck, State
from lastgood.kinds.cloudformation_stack import apply as applying
from lastgood.kinds.cloudformation_stack import verify as verifying
from lastgood.kinds.cloudformation_stack.apply import CAPABILITIES, request_token
from lastgood.kinds.cloudformation_stack.compare import describe, differences
from lastgood.kinds.cloudformation_stack.read import SETTLED, busy, describe_stack, state_of, template_of
from lastgood.kinds.cloudformation_stack.redeploy import DESCRIPTION, Redeploys
from lastgood.kinds.cloudformation_stack.runs import Runs
from lastgood.kinds.cloudformation_stack.spec import CloudFormationStackSpec, StackSettledElsewhere
from lastgood.kinds.cloudformation_stack.template import (
    MAX_TEMPLATE_BODY,
    parse_template,
    resource_notes,
    short,
    template_hash,
    template_problem,
)
from lastgood.kinds.redeploy import Redeployable

__all__ = [
    "CAPABILITIES",
    "CloudFormationStack",
    "CloudFormationStackSpec",
    "StackSettledElsewhere",
    "parse_template",
    "request_token",
    "template_hash",
]


class CloudFormationStack(Kind[CloudFormationStackSpec], Redeployable[CloudFormationStackSpec]):
    name = "cloudformation-stack"
    spec_model = CloudFormationStackSpec
    estimate_seconds = 300.0
    verify_timeout_seconds = 3600.0
    verify_interval_seconds = 5.0
    destructive = False  # plan() marks an update that deletes or replaces resources
    slow = True
    redeploy_estimate_seconds = 300.0
    redeploy_description = DESCRIPTION

    def __init__(self) -> None:
        self._runs = Runs()
        self._redeploys = Redeploys()

    def read(self, spec: CloudFormationStackSpec, ctx: KindContext) -> State:
        return state_of(describe_stack(spec, ctx), template_of(spec, ctx))

    def differences(self, spec: CloudFormationStackSpec, current: State, target: State) -> list[str]:
        return differences(current, target)

    def plan(self, spec: CloudFormationStackSpec, current: State, target: State) -> Change | None:
        problems = self.differences(spec, current, target)
        if not problems:
            return None
        notes, destructive = resource_notes(current, target)
        notes += [line for line in problems if not line.startswith("template ")]
        if target["no_echo_parameters"]:
            names = ", ".join(sorted(target["no_echo_parameters"]))
            notes.append(f"NoEcho parameters ({names}) keep their current values: CloudFormation never reveals them")
        return Change(
            action=self.action_name(current, target),
            before=self.describe(current),
            after=self.describe(target),
            estimate_seconds=self.estimate_seconds,
            destructive=destructive,
            notes=tuple(notes),
            slow=True,
        )

    def action_name(self, current: State, target: State) -> str:
        return {"UPDATE_IN_PROGRESS": "cancel-update", "UPDATE_ROLLBACK_FAILED": "continue-rollback"}.get(
            current["status"], "update-stack"
        )

    def describe(self, state: State) -> str:
        return describe(state)

    def warnings(self, spec: CloudFormationStackSpec, state: State) -> list[str]:
        out = []
        size = len(state["template_body"].encode())
        if size > MAX_TEMPLATE_BODY:
            out.append(
                f"{spec.stack}: the template is {size} bytes; UpdateStack takes at most {MAX_TEMPLATE_BODY} inline "
                "and lastgood does not upload templates to S3, so a rollback to this release will fail"
            )
        if state["no_echo_parameters"]:
            names = ", ".join(sorted(state["no_echo_parameters"]))
            out.append(f"{spec.stack}: NoEcho parameters ({names}) are not recorded; a rollback keeps their values")
        if state["resolved_parameters"]:
            names = ", ".join(state["resolved_parameters"])
            out.append(f"{spec.stack}: parameters {names} come from SSM; a rollback resolves them again then")
        if state["status"] not in SETTLED:
            out.append(f"{spec.stack} was {state['status']} when recorded")
        return out

    def readiness(self, spec: CloudFormationStackSpec, ctx: KindContext, state: State) -> list[ReadinessCheck]:
        problem = template_problem(state)
        if problem:
            return [ReadinessCheck("impossible", f"{spec.stack}: {problem}")]
        try:
            stack = describe_stack(spec, ctx)
        except ResourceNotFound:
            return [ReadinessCheck("impossible", f"stack {spec.stack} no longer exists")]
        status = stack["StackStatus"]
        if status not in SETTLED and not busy(status) and status != "UPDATE_ROLLBACK_FAILED":
            return [ReadinessCheck("impossible", f"stack {spec.stack} is {status}: it cannot be updated")]
        present = {p["ParameterKey"] for p in stack.get("Parameters") or []}
        lost = sorted(set(state["no_echo_parameters"]) - present)
        if lost:
            return [ReadinessCheck("impossible", f"{spec.stack}: NoEcho parameters {', '.join(lost)} are gone")]
        return [ReadinessCheck("ok", f"stack {spec.stack} is {status}; template {short(state)} is stored")]

    def apply(self, spec: CloudFormationStackSpec, ctx: KindContext, target: State) -> ApplyResult:
        return applying.apply(spec, ctx, target, self._runs)

    def verify(self, spec: CloudFormationStackSpec, ctx: KindContext, target: State) -> list[str]:
        return verifying.verify(spec, ctx, target, self._runs)

    def redeploy(self, spec: CloudFormationStackSpec, ctx: KindContext) -> ApplyResult:
        return self._redeploys.start(spec, ctx)

    def redeploy_pending(self, spec: CloudFormationStackSpec, ctx: KindContext) -> list[str]:
        return self._redeploys.pending(spec, ctx)

    def iam_statements(self, spec: CloudFormationStackSpec, scope: IamScope) -> list[IamStatement]:
        stack = f"arn:{scope.partition}:cloudformation:{scope.region}:{scope.account}:stack/{spec.stack}/*"
        return [
            IamStatement(
                actions=(
                    "cloudformation:DescribeStacks",
                    "cloudformation:DescribeStackEvents",
                    "cloudformation:GetTemplate",
                ),
                resources=(stack,),
                purpose="read the stack's template, parameters, status and events",
            ),
            IamStatement(
                actions=(
                    "cloudformation:UpdateStack",
                    "cloudformation:CancelUpdateStack",
                    "cloudformation:ContinueUpdateRollback",
                ),
                resources=(stack,),
                purpose="roll the stack back; CloudFormation also needs rights on the resources it changes, "
                "through the stack's service role (lastgood passes none, so the stack keeps its own) or these "
                "credentials",
            ),
        ]
