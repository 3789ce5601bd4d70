"""Reading a stack: its status, template, parameters (NoEcho ones hashed) and events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from lastgood.aws.errors import map_aws_errors
from lastgood.kinds.base import KindContext, State, value_hash
from lastgood.kinds.cloudformation_stack.spec import CloudFormationStackSpec
from lastgood.kinds.cloudformation_stack.template import no_echo, parse_template, template_hash

SETTLED = frozenset(
    {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE", "IMPORT_COMPLETE", "IMPORT_ROLLBACK_COMPLETE"}
)
OPERATION_STARTS = frozenset({"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS", "IMPORT_IN_PROGRESS"})
EVENT_PAGES = 5


def busy(status: str) -> bool:
    return status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS"


def describe_stack(spec: CloudFormationStackSpec, ctx: KindContext) -> dict[str, Any]:
    with map_aws_errors(f"cloudformation:DescribeStacks {spec.stack}"):
        stacks = ctx.aws.client("cloudformation").describe_stacks(StackName=spec.stack)["Stacks"]
    return dict(stacks[0])


def template_of(spec: CloudFormationStackSpec, ctx: KindContext) -> str:
    with map_aws_errors(f"cloudformation:GetTemplate {spec.stack}"):
        body = ctx.aws.client("cloudformation").get_template(StackName=spec.stack, TemplateStage="Original")
    template = body["TemplateBody"]
    return template if isinstance(template, str) else json.dumps(template, indent=2)


def state_of(stack: dict[str, Any], body: str) -> State:
    parsed = parse_template(body)
    declared = (parsed or {}).get("Parameters") or {}
    plain: dict[str, str] = {}
    hidden: dict[str, str] = {}
    resolved: list[str] = []
    for parameter in stack.get("Parameters") or []:
        key, value = parameter["ParameterKey"], parameter.get("ParameterValue", "")
        if parsed is not None and key not in declared:
            continue  # UpdateStack rejects parameters the template does not declare
        if no_echo(declared.get(key)) or value == "****":
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


def events(spec: CloudFormationStackSpec, ctx: KindContext) -> Iterator[dict[str, Any]]:
    """Stack events, newest first, fetched a page at a time as they are consumed."""
    kwargs: dict[str, Any] = {"StackName": spec.stack}
    for _ in range(EVENT_PAGES):
        with map_aws_errors(f"cloudformation:DescribeStackEvents {spec.stack}"):
            page = ctx.aws.client("cloudformation").describe_stack_events(**kwargs)
        yield from page.get("StackEvents") or []
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


def newest_events(spec: CloudFormationStackSpec, ctx: KindContext) -> list[dict[str, Any]]:
    with map_aws_errors(f"cloudformation:DescribeStackEvents {spec.stack}"):
        page = ctx.aws.client("cloudformation").describe_stack_events(StackName=spec.stack)
    return list(page.get("StackEvents") or [])


def is_stack_event(event: dict[str, Any], stack: dict[str, Any]) -> bool:
    return event.get("PhysicalResourceId") == stack["StackId"] and event.get("LogicalResourceId") == stack.get(
        "StackName"
    )


def event_line(event: dict[str, Any]) -> str:
    reason = event.get("ResourceStatusReason")
    return f"{event['LogicalResourceId']} {event['ResourceStatus']}" + (f": {reason}" if reason else "")
