"""The stack's redeploy action (`redeploy_after`): UpdateStack with the stack's own template and parameters.

That resolves `AWS::SSM::Parameter::Value<...>` parameters again. CloudFormation does not re-resolve a
template's `{{resolve:...}}` dynamic references on an update that changes nothing else: it answers "No updates
are to be performed", which the step reports as a success that changed nothing; for those stacks give the
component a `redeploy_command` (e.g. one that restarts what reads the secret).
"""

from __future__ import annotations

import threading

from lastgood.aws.errors import map_aws_errors
from lastgood.errors import AwsError, StepFailed
from lastgood.kinds.base import ApplyResult, KindContext
from lastgood.kinds.cloudformation_stack.apply import (
    CAPABILITIES,
    NO_UPDATES,
    _generation,
    _token_prefix,
    request_token,
)
from lastgood.kinds.cloudformation_stack.read import (
    OPERATION_STARTS,
    busy,
    describe_stack,
    is_stack_event,
    newest_events,
)
from lastgood.kinds.cloudformation_stack.spec import CloudFormationStackSpec, StackSettledElsewhere
from lastgood.kinds.cloudformation_stack.verify import failure

DESCRIPTION = "UpdateStack with the same template and parameters"


class Redeploys:
    """Which steps' redeploys CloudFormation found nothing to do for (in this process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._noop: set[str] = set()

    def start(self, spec: CloudFormationStackSpec, ctx: KindContext) -> ApplyResult:
        stack = describe_stack(spec, ctx)
        if busy(stack["StackStatus"]):
            return _already_running(spec, ctx, stack)
        parameters = [
            {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in stack.get("Parameters") or []
        ]
        try:
            with map_aws_errors(f"cloudformation:UpdateStack {spec.stack} (redeploy)"):
                ctx.aws.client("cloudformation").update_stack(
                    StackName=spec.stack,
                    UsePreviousTemplate=True,
                    Parameters=parameters,
                    Capabilities=CAPABILITIES,
                    ClientRequestToken=request_token("redeploy", ctx.token, _generation(stack)),
                )
        except AwsError as error:
            if NO_UPDATES not in str(error):
                raise
            with self._lock:
                self._noop.add(ctx.token)
            return ApplyResult(
                "CloudFormation: no updates are to be performed (dynamic references are not resolved again "
                "without a template change; see redeploy_command)",
                changed=False,
            )
        return ApplyResult(f"UpdateStack started with the same template ({len(parameters)} parameters kept)")

    def pending(self, spec: CloudFormationStackSpec, ctx: KindContext) -> list[str]:
        with self._lock:
            if ctx.token in self._noop:
                return []
        stack = describe_stack(spec, ctx)
        status = stack["StackStatus"]
        if busy(status):
            return [f"stack {spec.stack} is {status}"]
        if status != "UPDATE_COMPLETE":
            raise StepFailed(failure(spec, ctx, stack, None))
        return []


def _already_running(spec: CloudFormationStackSpec, ctx: KindContext, stack: dict[str, object]) -> ApplyResult:
    """Our own redeploy (sent before a crash, its answer lost) is waited for; anyone else's is waited out."""
    started = next(
        (e for e in newest_events(spec, ctx) if is_stack_event(e, stack) and e["ResourceStatus"] in OPERATION_STARTS),
        {},
    )
    if str(started.get("ClientRequestToken") or "").startswith(_token_prefix("redeploy", ctx.token)):
        return ApplyResult("the redeploy is already under way")
    raise StackSettledElsewhere(f"{spec.stack} is {stack['StackStatus']}: the redeploy starts once it settles")
