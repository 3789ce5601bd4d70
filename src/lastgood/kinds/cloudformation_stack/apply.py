"""Rolling a stack back: UpdateStack to the recorded template, or first cancel an update in progress, or continue
a failed rollback. Every request carries a ClientRequestToken derived from the step, so a retry repeats it."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any

from lastgood.aws.errors import map_aws_errors
from lastgood.errors import AwsError, StepFailed
from lastgood.kinds.base import ApplyResult, KindContext, State
from lastgood.kinds.cloudformation_stack.compare import describe, differences, fingerprint, lost_no_echo
from lastgood.kinds.cloudformation_stack.read import (
    OPERATION_STARTS,
    SETTLED,
    busy,
    describe_stack,
    is_stack_event,
    newest_events,
    state_of,
    template_of,
)
from lastgood.kinds.cloudformation_stack.runs import Runs
from lastgood.kinds.cloudformation_stack.spec import CloudFormationStackSpec, StackSettledElsewhere
from lastgood.kinds.cloudformation_stack.template import MAX_TEMPLATE_BODY
from lastgood.kinds.cloudformation_stack.verify import failure

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
NO_UPDATES = "No updates are to be performed"


def request_token(operation: str, token: str, generation: str) -> str:
    """A ClientRequestToken for one operation of one step on one version of the stack.

    A retry after a crash repeats it exactly (CloudFormation then ignores the duplicate). The stack version is
    part of it because CloudFormation also ignores a *later* request with a used token: a resume after a failed
    update must send a fresh one.
    """
    digest = hashlib.sha256(f"{token}|{generation}".encode()).hexdigest()[:12]
    return f"{_token_prefix(operation, token)}{digest}"


def _token_prefix(operation: str, token: str) -> str:
    readable = re.sub(r"[^A-Za-z0-9-]+", "-", token).strip("-")[:80]
    return f"lastgood-{operation}-{readable}-"


def _generation(stack: dict[str, Any]) -> str:
    when = stack.get("LastUpdatedTime") or stack.get("CreationTime") or ""
    return when.isoformat() if isinstance(when, datetime) else str(when)


def apply(spec: CloudFormationStackSpec, ctx: KindContext, target: State, runs: Runs) -> ApplyResult:
    stack = describe_stack(spec, ctx)
    status = stack["StackStatus"]
    if status == "UPDATE_ROLLBACK_FAILED":
        return _continue_rollback(spec, ctx, stack, runs)
    if status == "UPDATE_IN_PROGRESS":
        return _cancel_unless_ours(spec, ctx, stack, target, runs)
    if busy(status):
        runs.start(spec, ctx, "wait", newest_events(spec, ctx))
        return ApplyResult(f"stack is {status}; waiting for it to settle")
    if status not in SETTLED:
        raise StepFailed(failure(spec, ctx, stack, None))
    current = state_of(stack, template_of(spec, ctx))
    if not differences(current, target):
        return ApplyResult("already at target", changed=False)
    return _update(spec, ctx, stack, current, target, runs)


def _update(
    spec: CloudFormationStackSpec, ctx: KindContext, stack: dict[str, Any], current: State, target: State, runs: Runs
) -> ApplyResult:
    body = target["template_body"]
    if len(body.encode()) > MAX_TEMPLATE_BODY:
        raise StepFailed(
            f"{spec.stack}: the recorded template is {len(body.encode())} bytes; UpdateStack takes at most "
            f"{MAX_TEMPLATE_BODY} inline (lastgood does not upload templates to S3)"
        )
    lost = lost_no_echo(current, target)
    if lost:
        raise StepFailed(
            f"{spec.stack}: NoEcho parameters {', '.join(lost)} are no longer on the stack; CloudFormation never "
            "reveals their values, so the recorded ones cannot be restored"
        )
    parameters: list[dict[str, Any]] = [
        {"ParameterKey": key, "ParameterValue": value} for key, value in sorted(target["parameters"].items())
    ]
    parameters += [{"ParameterKey": key, "UsePreviousValue": True} for key in sorted(target["no_echo_parameters"])]
    events = newest_events(spec, ctx)
    try:
        with map_aws_errors(f"cloudformation:UpdateStack {spec.stack}"):
            ctx.aws.client("cloudformation").update_stack(
                StackName=spec.stack,
                TemplateBody=body,
                Parameters=parameters,
                Capabilities=CAPABILITIES,
                ClientRequestToken=request_token("update", ctx.token, _generation(stack)),
            )
    except AwsError as error:
        if NO_UPDATES not in str(error):
            raise
        runs.start(spec, ctx, "noop", events, accepted=fingerprint(current))
        return ApplyResult("CloudFormation: no updates are to be performed", changed=False)
    runs.start(spec, ctx, "update", events)
    return ApplyResult(f"UpdateStack started: {describe(target)}")


def _cancel_unless_ours(
    spec: CloudFormationStackSpec, ctx: KindContext, stack: dict[str, Any], target: State, runs: Runs
) -> ApplyResult:
    events = newest_events(spec, ctx)
    current = state_of(stack, template_of(spec, ctx))
    started = next((e for e in events if is_stack_event(e, stack) and e["ResourceStatus"] in OPERATION_STARTS), {})
    ours = str(started.get("ClientRequestToken") or "").startswith(_token_prefix("update", ctx.token))
    if ours or not differences({**current, "status": "UPDATE_COMPLETE"}, target):
        # Our own UpdateStack (sent before a crash) failing is a failure, not a reason to send it again.
        runs.start(spec, ctx, "update" if ours else "wait", events)
        return ApplyResult("an update to the recorded template is already in progress")
    try:
        with map_aws_errors(f"cloudformation:CancelUpdateStack {spec.stack}"):
            ctx.aws.client("cloudformation").cancel_update_stack(
                StackName=spec.stack, ClientRequestToken=request_token("cancel", ctx.token, _generation(stack))
            )
    except AwsError as error:
        if "cannot be called from current stack status" not in str(error):
            raise
        raise StackSettledElsewhere(f"{spec.stack}: the update finished before it could be cancelled") from error
    runs.start(spec, ctx, "cancel", events)
    return ApplyResult("cancelled the update in progress; CloudFormation rolls it back")


def _continue_rollback(
    spec: CloudFormationStackSpec, ctx: KindContext, stack: dict[str, Any], runs: Runs
) -> ApplyResult:
    events = newest_events(spec, ctx)
    with map_aws_errors(f"cloudformation:ContinueUpdateRollback {spec.stack}"):
        ctx.aws.client("cloudformation").continue_update_rollback(
            StackName=spec.stack,
            ResourcesToSkip=list(spec.skip_resources),
            ClientRequestToken=request_token("continue", ctx.token, _generation(stack)),
        )
    runs.start(spec, ctx, "continue", events)
    skipped = f", skipping {', '.join(spec.skip_resources)}" if spec.skip_resources else ""
    return ApplyResult(f"continued the failed rollback{skipped}")
