"""cloudformation-stack: a stack's template and parameters, rolled back with UpdateStack.

A stack caught mid-update is cancelled instead, and a stack stuck in UPDATE_ROLLBACK_FAILED has its rollback
continued. Those two end wherever CloudFormation's own rollback lands; when that is not the recorded template,
verify raises a retryable error so the engine applies again, which then starts UpdateStack.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import takewhile
from typing import Any, Literal

import yaml
from pydantic import Field

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import Component
from lastgood.errors import AwsError, ResourceNotFound, StepFailed
from lastgood.kinds.base import (
    ApplyResult,
    Change,
    IamScope,
    IamStatement,
    Kind,
    KindContext,
    ReadinessCheck,
    State,
    value_hash,
)

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
MAX_TEMPLATE_BODY = 51_200  # bytes UpdateStack accepts inline; larger templates need a TemplateURL in S3
SETTLED = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
)
OPERATION_STARTS = frozenset({"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "IMPORT_IN_PROGRESS"})
KEEPING_POLICIES = frozenset({"Retain", "RetainExceptOnCreate"})
NO_UPDATES = "No updates are to be performed"
EVENT_PAGES = 5
REPORTED_EVENTS = 20
_AFTER = {"cancel": "cancelled update", "continue": "continued rollback", "wait": "operation already running"}


class CloudFormationStackSpec(Component):
    kind: Literal["cloudformation-stack"] = "cloudformation-stack"
    stack: str = Field(description="Stack name; {env} is substituted.")
    skip_resources: list[str] = Field(
        default_factory=list,
        description="Logical ids ContinueUpdateRollback may skip when the stack is UPDATE_ROLLBACK_FAILED "
        "(resources CloudFormation cannot roll back; they are left as they are).",
    )


class StackSettledElsewhere(StepFailed):
    """The stack finished a cancel, a continued rollback or an operation already running, on a state other than
    the recorded one. Retryable: the engine applies again, and apply then starts UpdateStack."""

    retryable = True


@dataclass
class _Run:
    """What this process did for one step (stack + token); the step's apply and its verify polls share it."""

    action: str = ""  # update | noop | cancel | continue | wait
    baseline: str | None = None  # the newest stack event before the action
    last_event: str | None = None  # the newest stack event reported through ctx.progress
    accepted: str | None = None  # a state CloudFormation answered "No updates are to be performed" for


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, !GetAtt ...) read as plain values."""


def _construct_tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    return None


_CfnLoader.add_multi_constructor("!", _construct_tagged)


def parse_template(body: str) -> dict[str, Any] | None:
    """The template as a dict (JSON or YAML), or None when it cannot be read."""
    try:
        parsed = json.loads(body)
    except ValueError:
        try:
            parsed = yaml.load(body, Loader=_CfnLoader)  # a SafeLoader subclass: no arbitrary objects
        except yaml.YAMLError:
            return None
    return parsed if isinstance(parsed, dict) else None


def template_hash(body: str) -> str:
    """JSON is hashed in canonical form: boto3 decodes a JSON TemplateBody, so lastgood re-serialises it."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body
    return value_hash(canonical)


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


def _busy(status: str) -> bool:
    return status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS"


def _no_echo(declaration: Any) -> bool:
    return isinstance(declaration, dict) and str(declaration.get("NoEcho", "")).lower() == "true"


def _resources(body: str) -> dict[str, dict[str, Any]] | None:
    template = parse_template(body)
    if template is None:
        return None
    resources = template.get("Resources") or {}
    return {str(k): v for k, v in resources.items() if isinstance(v, dict)} if isinstance(resources, dict) else None


def _fingerprint(state: State) -> str:
    return value_hash(json.dumps([state["template_hash"], state["parameters"]], sort_keys=True))


def _names(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


class CloudFormationStack(Kind[CloudFormationStackSpec]):
    name = "cloudformation-stack"
    spec_model = CloudFormationStackSpec
    estimate_seconds = 300.0
    verify_timeout_seconds = 3600.0
    verify_interval_seconds = 5.0
    destructive = False  # plan() marks an update that deletes or replaces resources
    slow = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], _Run] = {}

    # reading

    def read(self, spec: CloudFormationStackSpec, ctx: KindContext) -> State:
        return self._state(self._describe(spec, ctx), self._template(spec, ctx))

    def _describe(self, spec: CloudFormationStackSpec, ctx: KindContext) -> dict[str, Any]:
        with map_aws_errors(f"cloudformation:DescribeStacks {spec.stack}"):
            stacks = ctx.aws.client("cloudformation").describe_stacks(StackName=spec.stack)["Stacks"]
        return dict(stacks[0])

    def _template(self, spec: CloudFormationStackSpec, ctx: KindContext) -> str:
        with map_aws_errors(f"cloudformation:GetTemplate {spec.stack}"):
            body = ctx.aws.client("cloudformation").get_template(StackName=spec.stack, TemplateStage="Original")
        template = body["TemplateBody"]
        return template if isinstance(template, str) else json.dumps(template, indent=2)

    @staticmethod
    def _state(stack: dict[str, Any], body: str) -> State:
        parsed = parse_template(body)
        declared = (parsed or {}).get("Parameters") or {}
        plain: dict[str, str] = {}
        hidden: dict[str, str] = {}
        resolved: list[str] = []
        for parameter in stack.get("Parameters") or []:
            key, value = parameter["ParameterKey"], parameter.get("ParameterValue", "")
            if parsed is not None and key not in declared:
                continue  # UpdateStack rejects parameters the template does not declare
            if _no_echo(declared.get(key)) or value == "****":
                hidden[key] = value_hash(value)
            else:
                plain[key] = value
            if "ResolvedValue" in parameter:  # an SSM-typed parameter: keep its name, never the resolved value
                resolved.append(key)
        return {
            "status": stack["StackStatus"],
            "template_hash": template_hash(body),
            "template_body": body,
            "parameters": plain,
            "no_echo_parameters": hidden,
            "resolved_parameters": sorted(resolved),
        }

    # comparing and planning

    def differences(self, spec: CloudFormationStackSpec, current: State, target: State) -> list[str]:
        out = []
        if current["template_hash"] != target["template_hash"]:
            out.append(f"template {_short(current)} -> {_short(target)}{_resource_summary(current, target)}")
        for key, value in sorted(target["parameters"].items()):
            now = current["parameters"].get(key)
            if now != value:
                out.append(f"parameter {key}: {'(not set)' if now is None else repr(now)} -> {value!r}")
        out += [f"NoEcho parameter {key} is no longer on the stack" for key in _lost_no_echo(current, target)]
        if current["status"] not in SETTLED:
            out.append(f"stack is {current['status']}")
        return out

    def plan(self, spec: CloudFormationStackSpec, current: State, target: State) -> Change | None:
        problems = self.differences(spec, current, target)
        if not problems:
            return None
        notes, destructive = _resource_notes(current, target)
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
        resources = _resources(state["template_body"])
        count = "?" if resources is None else str(len(resources))
        parameters = len(state["parameters"]) + len(state["no_echo_parameters"])
        status = "" if state["status"] in SETTLED else f", {state['status']}"
        plural = "" if parameters == 1 else "s"
        return f"template {_short(state)} ({count} resources, {parameters} parameter{plural}{status})"

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
        problem = _template_problem(state)
        if problem:
            return [ReadinessCheck("impossible", f"{spec.stack}: {problem}")]
        try:
            stack = self._describe(spec, ctx)
        except ResourceNotFound:
            return [ReadinessCheck("impossible", f"stack {spec.stack} no longer exists")]
        status = stack["StackStatus"]
        if status not in SETTLED and not _busy(status) and status != "UPDATE_ROLLBACK_FAILED":
            return [ReadinessCheck("impossible", f"stack {spec.stack} is {status}: it cannot be updated")]
        present = {p["ParameterKey"] for p in stack.get("Parameters") or []}
        lost = sorted(set(state["no_echo_parameters"]) - present)
        if lost:
            return [ReadinessCheck("impossible", f"{spec.stack}: NoEcho parameters {', '.join(lost)} are gone")]
        return [ReadinessCheck("ok", f"stack {spec.stack} is {status}; template {_short(state)} is stored")]

    # rolling back

    def apply(self, spec: CloudFormationStackSpec, ctx: KindContext, target: State) -> ApplyResult:
        stack = self._describe(spec, ctx)
        status = stack["StackStatus"]
        if status == "UPDATE_ROLLBACK_FAILED":
            return self._continue_rollback(spec, ctx, stack)
        if status == "UPDATE_IN_PROGRESS":
            return self._cancel_unless_ours(spec, ctx, stack, target)
        if _busy(status):
            self._start(spec, ctx, "wait", self._newest_events(spec, ctx))
            return ApplyResult(f"stack is {status}; waiting for it to settle")
        if status not in SETTLED:
            raise StepFailed(self._failure(spec, ctx, stack, None))
        current = self._state(stack, self._template(spec, ctx))
        if not self.differences(spec, current, target):
            return ApplyResult("already at target", changed=False)
        return self._update(spec, ctx, stack, current, target)

    def _update(
        self, spec: CloudFormationStackSpec, ctx: KindContext, stack: dict[str, Any], current: State, target: State
    ) -> ApplyResult:
        body = target["template_body"]
        if len(body.encode()) > MAX_TEMPLATE_BODY:
            raise StepFailed(
                f"{spec.stack}: the recorded template is {len(body.encode())} bytes; UpdateStack takes at most "
                f"{MAX_TEMPLATE_BODY} inline (lastgood does not upload templates to S3)"
            )
        lost = _lost_no_echo(current, target)
        if lost:
            raise StepFailed(
                f"{spec.stack}: NoEcho parameters {', '.join(lost)} are no longer on the stack; CloudFormation never "
                "reveals their values, so the recorded ones cannot be restored"
            )
        parameters: list[dict[str, Any]] = [
            {"ParameterKey": key, "ParameterValue": value} for key, value in sorted(target["parameters"].items())
        ]
        parameters += [{"ParameterKey": key, "UsePreviousValue": True} for key in sorted(target["no_echo_parameters"])]
        events = self._newest_events(spec, ctx)
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
            self._start(spec, ctx, "noop", events, accepted=_fingerprint(current))
            return ApplyResult("CloudFormation: no updates are to be performed", changed=False)
        self._start(spec, ctx, "update", events)
        return ApplyResult(f"UpdateStack started: {self.describe(target)}")

    def _cancel_unless_ours(
        self, spec: CloudFormationStackSpec, ctx: KindContext, stack: dict[str, Any], target: State
    ) -> ApplyResult:
        events = self._newest_events(spec, ctx)
        current = self._state(stack, self._template(spec, ctx))
        started = next((e for e in events if _stack_event(e, stack) and e["ResourceStatus"] in OPERATION_STARTS), {})
        ours = str(started.get("ClientRequestToken") or "").startswith(_token_prefix("update", ctx.token))
        if ours or not self.differences(spec, {**current, "status": "UPDATE_COMPLETE"}, target):
            # Our own UpdateStack (sent before a crash) failing is a failure, not a reason to send it again.
            self._start(spec, ctx, "update" if ours else "wait", events)
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
        self._start(spec, ctx, "cancel", events)
        return ApplyResult("cancelled the update in progress; CloudFormation rolls it back")

    def _continue_rollback(self, spec: CloudFormationStackSpec, ctx: KindContext, stack: dict[str, Any]) -> ApplyResult:
        events = self._newest_events(spec, ctx)
        with map_aws_errors(f"cloudformation:ContinueUpdateRollback {spec.stack}"):
            ctx.aws.client("cloudformation").continue_update_rollback(
                StackName=spec.stack,
                ResourcesToSkip=list(spec.skip_resources),
                ClientRequestToken=request_token("continue", ctx.token, _generation(stack)),
            )
        self._start(spec, ctx, "continue", events)
        skipped = f", skipping {', '.join(spec.skip_resources)}" if spec.skip_resources else ""
        return ApplyResult(f"continued the failed rollback{skipped}")

    # verifying

    def verify(self, spec: CloudFormationStackSpec, ctx: KindContext, target: State) -> list[str]:
        stack = self._describe(spec, ctx)
        status = stack["StackStatus"]
        run = self._run(spec, ctx)
        self._report_events(spec, ctx, run)
        if _busy(status):
            return [f"stack {spec.stack} is {status}"]
        if status not in SETTLED:
            raise StepFailed(self._failure(spec, ctx, stack, run.baseline))
        current = self._state(stack, self._template(spec, ctx))
        problems = self.differences(spec, current, target)
        if not problems or run.accepted == _fingerprint(current):
            self._forget(spec, ctx)
            return []
        if run.action in _AFTER:
            raise StackSettledElsewhere(
                f"{spec.stack} settled on {status} after the {_AFTER[run.action]}, not on the recorded state "
                f"({'; '.join(problems)}); applying again starts UpdateStack"
            )
        if run.action == "update":
            raise StepFailed(self._failure(spec, ctx, stack, run.baseline, problems))
        return problems

    def _failure(
        self,
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
        failed = self._failed_resources(spec, ctx, stack, since)
        if failed:
            parts.append("failed: " + "; ".join(_event_line(event) for event in failed))
        parts += _advice(spec, status, [event["LogicalResourceId"] for event in failed])
        return "; ".join(parts)

    def _failed_resources(
        self, spec: CloudFormationStackSpec, ctx: KindContext, stack: dict[str, Any], since: str | None
    ) -> list[dict[str, Any]]:
        """The newest failure of each resource since `since` (or since the latest operation started)."""
        failed: dict[str, dict[str, Any]] = {}
        for event in self._events(spec, ctx):
            if event["EventId"] == since:
                break
            if _stack_event(event, stack):
                if since is None and event["ResourceStatus"] in OPERATION_STARTS:
                    break
                continue
            if event["ResourceStatus"].endswith("_FAILED"):
                failed.setdefault(event["LogicalResourceId"], event)
        return list(failed.values())

    # stack events and the per-step memory

    def _events(self, spec: CloudFormationStackSpec, ctx: KindContext) -> Iterator[dict[str, Any]]:
        """Stack events, newest first, fetched a page at a time as they are consumed."""
        kwargs: dict[str, Any] = {"StackName": spec.stack}
        for _ in range(EVENT_PAGES):
            with map_aws_errors(f"cloudformation:DescribeStackEvents {spec.stack}"):
                page = ctx.aws.client("cloudformation").describe_stack_events(**kwargs)
            yield from page.get("StackEvents") or []
            if not page.get("NextToken"):
                return
            kwargs["NextToken"] = page["NextToken"]

    def _newest_events(self, spec: CloudFormationStackSpec, ctx: KindContext) -> list[dict[str, Any]]:
        with map_aws_errors(f"cloudformation:DescribeStackEvents {spec.stack}"):
            page = ctx.aws.client("cloudformation").describe_stack_events(StackName=spec.stack)
        return list(page.get("StackEvents") or [])

    def _report_events(self, spec: CloudFormationStackSpec, ctx: KindContext, run: _Run) -> None:
        with self._lock:
            since = run.last_event
        if since is None:  # nothing seen yet (verify without apply in this process): start from now
            newest = next(self._events(spec, ctx), None)
            with self._lock:
                run.last_event = newest["EventId"] if newest else None
            return
        new = list(takewhile(lambda event: event["EventId"] != since, self._events(spec, ctx)))
        if not new:
            return
        with self._lock:
            run.last_event = new[0]["EventId"]
        if len(new) > REPORTED_EVENTS:
            ctx.progress(f"{len(new) - REPORTED_EVENTS} earlier stack events not shown")
        for event in reversed(new[:REPORTED_EVENTS]):
            ctx.progress(_event_line(event))

    def _run(self, spec: CloudFormationStackSpec, ctx: KindContext) -> _Run:
        with self._lock:
            return self._runs.setdefault((spec.stack, ctx.token), _Run())

    def _start(
        self,
        spec: CloudFormationStackSpec,
        ctx: KindContext,
        action: str,
        events: list[dict[str, Any]],
        accepted: str | None = None,
    ) -> None:
        baseline = events[0]["EventId"] if events else None
        with self._lock:
            self._runs[(spec.stack, ctx.token)] = _Run(action, baseline, baseline, accepted)

    def _forget(self, spec: CloudFormationStackSpec, ctx: KindContext) -> None:
        with self._lock:
            self._runs.pop((spec.stack, ctx.token), None)

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


def _short(state: State) -> str:
    return str(state["template_hash"]).removeprefix("sha256:")[:8]


def _template_problem(state: State) -> str | None:
    """Why the recorded template cannot be sent back with UpdateStack (None: it can)."""
    body = state.get("template_body") or ""
    if not body or template_hash(body) != state.get("template_hash"):
        return "the recorded template is not stored in the ledger"
    size = len(body.encode())
    if size > MAX_TEMPLATE_BODY:
        return f"the recorded template is {size} bytes; UpdateStack takes at most {MAX_TEMPLATE_BODY} inline"
    return None


def _lost_no_echo(current: State, target: State) -> list[str]:
    present = set(current["no_echo_parameters"]) | set(current["parameters"])
    return sorted(set(target["no_echo_parameters"]) - present)


def _stack_event(event: dict[str, Any], stack: dict[str, Any]) -> bool:
    return event.get("PhysicalResourceId") == stack["StackId"] and event.get("LogicalResourceId") == stack.get(
        "StackName"
    )


def _event_line(event: dict[str, Any]) -> str:
    reason = event.get("ResourceStatusReason")
    return f"{event['LogicalResourceId']} {event['ResourceStatus']}" + (f": {reason}" if reason else "")


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


def _resource_summary(current: State, target: State) -> str:
    now, then = _resources(current["template_body"]), _resources(target["template_body"])
    if now is None or then is None:
        return ""
    removes, adds = sorted(set(now) - set(then)), sorted(set(then) - set(now))
    parts = ([f"removes {_names(removes)}"] if removes else []) + ([f"adds {_names(adds)}"] if adds else [])
    return f" ({'; '.join(parts)})" if parts else ""


def _resource_notes(current: State, target: State) -> tuple[list[str], bool]:
    """Notes on what the update does to resources, and whether it deletes any (destructive)."""
    now, then = _resources(current["template_body"]), _resources(target["template_body"])
    if now is None or then is None:
        return ["could not read the resources of both templates: treat this update as one that may delete some"], True
    gone = sorted(set(now) - set(then))
    kept = [i for i in gone if now[i].get("DeletionPolicy") in KEEPING_POLICIES]
    deleted = [i for i in gone if i not in kept]
    shared = sorted(set(now) & set(then))
    replaced = [i for i in shared if now[i].get("Type") != then[i].get("Type")]
    changed = [i for i in shared if i not in replaced and now[i] != then[i]]
    created = sorted(set(then) - set(now))
    notes = []
    if deleted:
        notes.append("deletes " + _names([f"{i} ({now[i].get('Type')})" for i in deleted]))
    if kept:
        notes.append(f"removes {_names(kept)} from the stack without deleting (DeletionPolicy Retain)")
    if replaced:
        notes.append(
            "replaces (deletes, then creates) "
            + _names([f"{i} ({now[i].get('Type')} -> {then[i].get('Type')})" for i in replaced])
        )
    if changed:
        notes.append(
            f"updates {_names(changed)}; CloudFormation replaces a resource when a changed property requires it "
            "(a change set shows which)"
        )
    if created:
        notes.append(f"creates {_names(created)}")
    return notes, bool(deleted or replaced)
