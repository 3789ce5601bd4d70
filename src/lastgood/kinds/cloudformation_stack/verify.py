"""Verifying a rollback: polls until the stack settles on the recorded state; a failure names the resources
that failed and what to do next."""

from __future__ import annotations

from typing import Any

from lastgood.errors import StepFailed
from lastgood.kinds.base import KindContext, State
from lastgood.kinds.cloudformation_stack.compare import differences, fingerprint
from lastgood.kinds.cloudformation_stack.read import (
    OPERATION_STARTS,
    SETTLED,
    busy,
    describe_stack,
    event_line,
    events,
    is_stack_event,
    state_of,
    template_of,
)
from lastgood.kinds.cloudformation_stack.runs import Runs
from lastgood.kinds.cloudformation_stack.spec import CloudFormationStackSpec, StackSettledElsewhere

_AFTER = {"cancel": "cancelled update", "continue": "continued rollback", "wait": "operation already running"}


def verify(spec: CloudFormationStackSpec, ctx: KindContext, target: State, runs: Runs) -> list[str]:
    stack = describe_stack(spec, ctx)
    status = stack["StackStatus"]
    run = runs.get(spec, ctx)
    runs.report_events(spec, ctx, run)
    if busy(status):
        return [f"stack {spec.stack} is {status}"]
    if status not in SETTLED:
        raise StepFailed(failure(spec, ctx, stack, run.baseline))
    current = state_of(stack, template_of(spec, ctx))
    problems = differences(current, target)
    if not problems or run.accepted == fingerprint(current):
        runs.forget(spec, ctx)
        return []
    if run.action in _AFTER:
        raise StackSettledElsewhere(
            f"{spec.stack} settled on {status} after the {_AFTER[run.action]}, not on the recorded state "
            f"({'; '.join(problems)}); applying again starts UpdateStack"
        )
    if run.action == "update":
        raise StepFailed(failure(spec, ctx, stack, run.baseline, problems))
    return problems


def failure(
    spec: CloudFormationStackSpec,
    ctx: KindContext,
    stack: dict[str, Any],
    since: str | None,
    problems: list[str] | None = None,
) -> str:
    status = stack["StackStatus"]
    reason = stack.get("StackStatusReason")
    parts = [f"stack {spec.stack} is {status}" + (f" ({reason})" if reason else "")]
    if problems:
        parts.append("it still differs from the recorded state: " + "; ".join(problems))
    failed = _failed_resources(spec, ctx, stack, since)
    if failed:
        parts.append("failed: " + "; ".join(event_line(event) for event in failed))
    parts += _advice(spec, status, [event["LogicalResourceId"] for event in failed])
    return "; ".join(parts)


def _failed_resources(
    spec: CloudFormationStackSpec, ctx: KindContext, stack: dict[str, Any], since: str | None
) -> list[dict[str, Any]]:
    """The newest failure of each resource since `since` (or since the latest operation started)."""
    failed: dict[str, dict[str, Any]] = {}
    for event in events(spec, ctx):
        if event["EventId"] == since:
            break
        if is_stack_event(event, stack):
            if since is None and event["ResourceStatus"] in OPERATION_STARTS:
                break
            continue
        if event["ResourceStatus"].endswith("_FAILED"):
            failed.setdefault(event["LogicalResourceId"], event)
    return list(failed.values())


def _advice(spec: CloudFormationStackSpec, status: str, failed_ids: list[str]) -> list[str]:
    if status == "UPDATE_ROLLBACK_FAILED":
        skip = [i for i in failed_ids if i not in spec.skip_resources]
        if skip:
            return [
                "CloudFormation cannot finish rolling back; if those resources may stay as they are, set "
                f"skip_resources: [{', '.join(skip)}] on this component and run lastgood resume"
            ]
        return ["run lastgood resume to continue the rollback"]
    if status == "ROLLBACK_COMPLETE":
        return ["the stack's creation failed, so CloudFormation cannot update it: delete and recreate it"]
    if status not in SETTLED:
        return ["CloudFormation cannot update a stack in this state"]
    return []
