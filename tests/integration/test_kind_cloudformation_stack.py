"""cloudformation-stack: record -> change -> plan -> apply -> verify, re-apply, failure paths.

On the moto server: CreateStack, UpdateStack, GetTemplate, DescribeStacks, DescribeStackEvents (moto completes an
update at once, so the round trip there never sees a stack in progress).
Stubber-only paths: cloudformation:CancelUpdateStack and cloudformation:ContinueUpdateRollback (moto 5.2 raises
NotImplementedError), and every stack that is in progress, failed or rolled back (moto never produces one); those
tests stub DescribeStacks, DescribeStackEvents, GetTemplate and UpdateStack with their exact request shapes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from lastgood.aws.clients import AwsClients
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds.base import IamScope, KindContext
from lastgood.kinds.cloudformation_stack import (
    CAPABILITIES,
    CloudFormationStack,
    CloudFormationStackSpec,
    StackSettledElsewhere,
    request_token,
    template_hash,
)
from lastgood.kinds.registry import get_kind

TOKEN = "rb-1-web"
SECRET = "hunter2-do-not-store"


def template(*topics: str, env_param: bool = True) -> str:
    resources: dict[str, Any] = {
        "Setting": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": "/web/setting", "Type": "String", "Value": {"Ref": "Env"}},
        }
    }
    resources |= {topic: {"Type": "AWS::SNS::Topic"} for topic in topics}
    parameters: dict[str, Any] = {"Env": {"Type": "String"}, "DbPassword": {"Type": "String", "NoEcho": True}}
    if not env_param:
        del parameters["DbPassword"]
    return json.dumps({"Parameters": parameters, "Resources": resources})


@pytest.fixture
def progress() -> list[str]:
    return []


@pytest.fixture
def ctx(aws: AwsClients, progress: list[str]) -> KindContext:
    return KindContext(app="web", env="prod", aws=aws, token=TOKEN, progress=progress.append)


@pytest.fixture
def sent(aws: AwsClients) -> list[dict[str, Any]]:
    """The parameters of every UpdateStack call, as boto3 sends them."""
    calls: list[dict[str, Any]] = []
    aws.client("cloudformation").meta.events.register(
        "provide-client-params.cloudformation.UpdateStack", lambda params, **_: calls.append(dict(params))
    )
    return calls


def create(aws: AwsClients, body: str, env: str, password: str = SECRET) -> None:
    aws.client("cloudformation").create_stack(
        StackName="web",
        TemplateBody=body,
        Parameters=[
            {"ParameterKey": "Env", "ParameterValue": env},
            {"ParameterKey": "DbPassword", "ParameterValue": password},
        ],
    )


def release(aws: AwsClients, body: str, env: str) -> None:
    """A later deployment of the stack (the bad release), as CI would run it."""
    aws.client("cloudformation").update_stack(
        StackName="web",
        TemplateBody=body,
        Parameters=[
            {"ParameterKey": "Env", "ParameterValue": env},
            {"ParameterKey": "DbPassword", "UsePreviousValue": True},
        ],
    )


def topics(aws: AwsClients) -> list[str]:
    return sorted(t["TopicArn"].split(":")[-1] for t in aws.client("sns").list_topics()["Topics"])


SPEC = CloudFormationStackSpec(name="web", stack="web")


@pytest.mark.slow
def test_stack_rolls_back_template_and_parameters(
    aws: AwsClients, ctx: KindContext, progress: list[str], sent: list[dict[str, Any]]
) -> None:
    kind = get_kind("cloudformation-stack")
    assert isinstance(kind, CloudFormationStack) and kind.slow and kind.verify_interval_seconds == 5.0
    create(aws, template("Orders"), "v1")
    recorded = kind.record(SPEC, ctx)
    assert recorded["status"] == "CREATE_COMPLETE"
    assert recorded["parameters"] == {"Env": "v1"}
    assert recorded["template_hash"] == template_hash(template("Orders"))
    assert set(recorded["no_echo_parameters"]) == {"DbPassword"}
    assert SECRET not in json.dumps(recorded)  # moto even returns NoEcho values; only a hash is kept
    assert kind.warnings(SPEC, recorded) == [
        "web: NoEcho parameters (DbPassword) are not recorded; a rollback keeps their values"
    ]

    release(aws, template("Orders", "Audit"), "v2")
    current = kind.read(SPEC, ctx)
    assert kind.differences(SPEC, current, recorded) == [
        f"template {current['template_hash'][7:15]} -> {recorded['template_hash'][7:15]} (removes Audit)",
        "parameter Env: 'v2' -> 'v1'",
    ]
    change = kind.plan(SPEC, current, recorded)
    assert change is not None and change.action == "update-stack" and change.slow and change.destructive
    assert change.notes[:2] == ("deletes Audit (AWS::SNS::Topic)", "parameter Env: 'v2' -> 'v1'")
    assert change.after == f"template {recorded['template_hash'][7:15]} (2 resources, 2 parameters)"

    assert len(sent) == 1  # the release above
    result = kind.apply(SPEC, ctx, recorded)
    assert result.changed and result.detail.startswith("UpdateStack started")
    assert sent[-1]["Parameters"] == [
        {"ParameterKey": "Env", "ParameterValue": "v1"},
        {"ParameterKey": "DbPassword", "UsePreviousValue": True},
    ]
    assert sent[-1]["Capabilities"] == CAPABILITIES
    assert sent[-1]["ClientRequestToken"].startswith(f"lastgood-update-{TOKEN}-")
    assert kind.verify(SPEC, ctx, recorded) == []
    assert any("UPDATE_COMPLETE" in line for line in progress)  # the stack events since the update began

    assert aws.client("ssm").get_parameter(Name="/web/setting")["Parameter"]["Value"] == "v1"
    assert [t for t in topics(aws) if "Audit" in t] == []
    assert kind.read(SPEC, ctx)["no_echo_parameters"] == recorded["no_echo_parameters"]  # value kept
    assert not kind.apply(SPEC, ctx, recorded).changed  # idempotent
    assert len(sent) == 2  # the re-apply sent nothing
    assert kind.plan(SPEC, kind.read(SPEC, ctx), recorded) is None


@pytest.mark.slow
def test_adding_back_resources_is_not_destructive(aws: AwsClients, ctx: KindContext) -> None:
    kind = CloudFormationStack()
    create(aws, template("Orders", "Audit"), "v1")
    recorded = kind.read(SPEC, ctx)
    release(aws, template("Orders"), "v1")
    change = kind.plan(SPEC, kind.read(SPEC, ctx), recorded)
    assert change is not None and not change.destructive
    assert change.notes[0] == "creates Audit"


@pytest.mark.slow
def test_removed_noecho_parameter_and_missing_stack_fail_clearly(aws: AwsClients, ctx: KindContext) -> None:
    kind = CloudFormationStack()
    create(aws, template("Orders"), "v1")
    recorded = kind.read(SPEC, ctx)
    aws.client("cloudformation").update_stack(
        StackName="web",
        TemplateBody=template("Orders", env_param=False),
        Parameters=[{"ParameterKey": "Env", "ParameterValue": "v2"}],
    )
    current = kind.read(SPEC, ctx)
    assert "NoEcho parameter DbPassword is no longer on the stack" in kind.differences(SPEC, current, recorded)
    with pytest.raises(StepFailed, match="NoEcho parameters DbPassword are no longer on the stack"):
        kind.apply(SPEC, ctx, recorded)
    with pytest.raises(ResourceNotFound, match="cloudformation:DescribeStacks nope"):
        kind.read(CloudFormationStackSpec(name="x", stack="nope"), ctx)


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_oversized_template_is_refused_before_any_update(aws: AwsClients, ctx: KindContext) -> None:
    kind = CloudFormationStack()
    create(aws, template("Orders"), "v1")
    recorded = kind.read(SPEC, ctx)
    recorded["template_body"] = json.dumps({**json.loads(recorded["template_body"]), "Description": "x" * 52_000})
    recorded["template_hash"] = template_hash(recorded["template_body"])
    assert "a rollback to this release will fail" in kind.warnings(SPEC, recorded)[0]
    with pytest.raises(StepFailed, match="UpdateStack takes at most 51200 inline"):
        kind.apply(SPEC, ctx, recorded)


def state(body: str) -> dict[str, Any]:
    return {
        "status": "UPDATE_COMPLETE",
        "template_body": body,
        "template_hash": template_hash(body),
        "parameters": {},
        "no_echo_parameters": {},
        "resolved_parameters": [],
    }


def test_plan_reads_yaml_templates_with_short_form_tags() -> None:
    kind = CloudFormationStack()
    queue = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    DeletionPolicy: Retain\n"
    with_fn = queue + "  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      Role: !GetAtt Role.Arn\n"
    change = kind.plan(SPEC, state(with_fn), state(queue))
    assert change is not None and change.destructive and change.notes == ("deletes Fn (AWS::Lambda::Function)",)

    topic = queue.replace("AWS::SQS::Queue", "AWS::SNS::Topic")
    change = kind.plan(SPEC, state(topic), state(queue))
    assert change is not None and change.destructive
    assert change.notes == ("replaces (deletes, then creates) Queue (AWS::SNS::Topic -> AWS::SQS::Queue)",)

    change = kind.plan(SPEC, state(queue), state("Resources: {}\n"))
    assert change is not None and not change.destructive
    assert change.notes == ("removes Queue from the stack without deleting (DeletionPolicy Retain)",)

    change = kind.plan(SPEC, state(queue), state("{not a template"))
    assert change is not None and change.destructive  # unreadable: assume the worst


# Stubbed: stacks in progress, failed or rolled back.

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/web/1111"
GOOD = "Parameters:\n  Env:\n    Type: String\nResources:\n  Orders:\n    Type: AWS::SNS::Topic\n"
BAD = GOOD + "  Audit:\n    Type: AWS::SNS::Topic\n    Properties:\n      TopicName: !Sub '${Env}-audit'\n"
NAME = {"StackName": "web"}
TEMPLATE = {"StackName": "web", "TemplateStage": "Original"}
RECORDED = {
    "status": "UPDATE_COMPLETE",
    "template_hash": template_hash(GOOD),
    "template_body": GOOD,
    "parameters": {"Env": "v1"},
    "no_echo_parameters": {},
    "resolved_parameters": [],
}


def stack(status: str, env: str = "v1", reason: str | None = None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "StackId": STACK_ID,
        "StackName": "web",
        "CreationTime": WHEN,
        "LastUpdatedTime": LATER,
        "StackStatus": status,
        "Parameters": [{"ParameterKey": "Env", "ParameterValue": env}],
    }
    if reason:
        described["StackStatusReason"] = reason
    return {"Stacks": [described]}


def event(
    event_id: str, status: str, logical: str = "web", reason: str | None = None, token: str | None = None
) -> dict[str, Any]:
    physical = STACK_ID if logical == "web" else f"{logical}-physical"
    item: dict[str, Any] = {
        "StackId": STACK_ID,
        "EventId": event_id,
        "StackName": "web",
        "LogicalResourceId": logical,
        "PhysicalResourceId": physical,
        "ResourceType": "AWS::CloudFormation::Stack" if logical == "web" else "AWS::SNS::Topic",
        "Timestamp": WHEN,
        "ResourceStatus": status,
    }
    if reason:
        item["ResourceStatusReason"] = reason
    if token:
        item["ClientRequestToken"] = token
    return item


@pytest.fixture
def stub(aws: AwsClients) -> Iterator[Stubber]:
    stubber = Stubber(aws.client("cloudformation"))
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def describe(stub: Stubber, status: str, env: str = "v1", reason: str | None = None) -> None:
    stub.add_response("describe_stacks", stack(status, env, reason), NAME)


def events(stub: Stubber, *items: dict[str, Any]) -> None:
    stub.add_response("describe_stack_events", {"StackEvents": list(items)}, NAME)


def body(stub: Stubber, text: str) -> None:
    stub.add_response("get_template", {"TemplateBody": text}, TEMPLATE)


def update_params() -> dict[str, Any]:
    return {
        "StackName": "web",
        "TemplateBody": GOOD,
        "Parameters": [{"ParameterKey": "Env", "ParameterValue": "v1"}],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        "ClientRequestToken": request_token("update", TOKEN, LATER.isoformat()),
    }


def test_update_in_flight_is_cancelled_and_its_rollback_followed(
    stub: Stubber, ctx: KindContext, progress: list[str]
) -> None:
    kind = CloudFormationStack()
    describe(stub, "UPDATE_IN_PROGRESS", env="v2")
    events(stub, event("e2", "UPDATE_IN_PROGRESS", reason="User Initiated"), event("e1", "UPDATE_COMPLETE"))
    body(stub, BAD)
    cancel_token = request_token("cancel", TOKEN, LATER.isoformat())
    assert cancel_token.startswith("lastgood-cancel-rb-1-web-") and len(cancel_token) <= 128
    stub.add_response("cancel_update_stack", {}, {"StackName": "web", "ClientRequestToken": cancel_token})
    assert kind.action_name({**RECORDED, "status": "UPDATE_IN_PROGRESS"}, RECORDED) == "cancel-update"
    result = kind.apply(SPEC, ctx, RECORDED)
    assert result.changed and "cancelled the update in progress" in result.detail

    describe(stub, "UPDATE_ROLLBACK_IN_PROGRESS", env="v2")
    events(
        stub,
        event("e4", "UPDATE_ROLLBACK_IN_PROGRESS", reason="Stack update cancelled"),
        event("e3", "CREATE_IN_PROGRESS", logical="Audit"),
        event("e2", "UPDATE_IN_PROGRESS", reason="User Initiated"),
    )
    assert kind.verify(SPEC, ctx, RECORDED) == ["stack web is UPDATE_ROLLBACK_IN_PROGRESS"]
    assert progress == ["Audit CREATE_IN_PROGRESS", "web UPDATE_ROLLBACK_IN_PROGRESS: Stack update cancelled"]

    describe(stub, "UPDATE_ROLLBACK_COMPLETE")
    events(stub, event("e5", "UPDATE_ROLLBACK_COMPLETE"), event("e4", "UPDATE_ROLLBACK_IN_PROGRESS"))
    body(stub, GOOD)
    assert kind.verify(SPEC, ctx, RECORDED) == []
    assert progress[-1] == "web UPDATE_ROLLBACK_COMPLETE"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_cancel_that_lands_elsewhere_is_retried_as_an_update(stub: Stubber, ctx: KindContext) -> None:
    """The cancelled update rolled back to a template other than the recorded one (two releases ahead)."""
    kind = CloudFormationStack()
    describe(stub, "UPDATE_IN_PROGRESS", env="v3")
    events(stub, event("e2", "UPDATE_IN_PROGRESS"))
    body(stub, BAD + "  More:\n    Type: AWS::SNS::Topic\n")
    stub.add_response(
        "cancel_update_stack",
        {},
        {"StackName": "web", "ClientRequestToken": request_token("cancel", TOKEN, LATER.isoformat())},
    )
    kind.apply(SPEC, ctx, RECORDED)

    describe(stub, "UPDATE_ROLLBACK_COMPLETE", env="v2")
    events(stub, event("e3", "UPDATE_ROLLBACK_COMPLETE"), event("e2", "UPDATE_IN_PROGRESS"))
    body(stub, BAD)
    with pytest.raises(StackSettledElsewhere, match="after the cancelled update") as raised:
        kind.verify(SPEC, ctx, RECORDED)
    assert raised.value.retryable  # the engine applies again

    describe(stub, "UPDATE_ROLLBACK_COMPLETE", env="v2")
    body(stub, BAD)
    events(stub, event("e3", "UPDATE_ROLLBACK_COMPLETE"))
    stub.add_response("update_stack", {"StackId": STACK_ID}, update_params())
    assert kind.apply(SPEC, ctx, RECORDED).changed


@pytest.mark.slow
def test_update_already_running_towards_the_record_is_not_cancelled(stub: Stubber, ctx: KindContext) -> None:
    """A retried apply after a crash finds its own UpdateStack running: it must not cancel it."""
    kind = CloudFormationStack()
    ours = request_token("update", TOKEN, WHEN.isoformat())
    describe(stub, "UPDATE_IN_PROGRESS", env="v2")
    events(stub, event("e3", "CREATE_IN_PROGRESS", logical="Orders"), event("e2", "UPDATE_IN_PROGRESS", token=ours))
    body(stub, GOOD)
    result = kind.apply(SPEC, ctx, RECORDED)  # no cancel_update_stack is stubbed: none was sent
    assert result.changed and "already in progress" in result.detail

    # That update failing is a failure of the step, not a reason to send it again.
    describe(stub, "UPDATE_ROLLBACK_COMPLETE", env="v2")
    failure = event("e4", "UPDATE_FAILED", logical="Orders", reason="Rate exceeded")
    events(stub, event("e5", "UPDATE_ROLLBACK_COMPLETE"), failure, event("e3", "CREATE_IN_PROGRESS", logical="Orders"))
    body(stub, BAD)
    events(stub, event("e5", "UPDATE_ROLLBACK_COMPLETE"), failure, event("e3", "CREATE_IN_PROGRESS", logical="Orders"))
    with pytest.raises(StepFailed, match="failed: Orders UPDATE_FAILED: Rate exceeded") as raised:
        kind.verify(SPEC, ctx, RECORDED)
    assert not getattr(raised.value, "retryable", False)


def test_failed_rollback_is_continued_with_skipped_resources(stub: Stubber, ctx: KindContext) -> None:
    kind = CloudFormationStack()
    spec = CloudFormationStackSpec(name="web", stack="web", skip_resources=["Audit"])
    describe(stub, "UPDATE_ROLLBACK_FAILED", env="v2")
    events(stub, event("e4", "UPDATE_ROLLBACK_FAILED"))
    stub.add_response(
        "continue_update_rollback",
        {},
        {
            "StackName": "web",
            "ResourcesToSkip": ["Audit"],
            "ClientRequestToken": request_token("continue", TOKEN, LATER.isoformat()),
        },
    )
    assert kind.action_name({**RECORDED, "status": "UPDATE_ROLLBACK_FAILED"}, RECORDED) == "continue-rollback"
    result = kind.apply(spec, ctx, RECORDED)
    assert result.changed and result.detail == "continued the failed rollback, skipping Audit"

    describe(stub, "UPDATE_ROLLBACK_COMPLETE")
    events(stub, event("e5", "UPDATE_ROLLBACK_COMPLETE"), event("e4", "UPDATE_ROLLBACK_FAILED"))
    body(stub, GOOD)
    assert kind.verify(spec, ctx, RECORDED) == []


def test_rollback_that_fails_again_names_resources_to_skip(stub: Stubber, ctx: KindContext) -> None:
    kind = CloudFormationStack()
    describe(stub, "UPDATE_ROLLBACK_FAILED", env="v2")
    events(stub, event("e4", "UPDATE_ROLLBACK_FAILED"))
    stub.add_response(
        "continue_update_rollback",
        {},
        {
            "StackName": "web",
            "ResourcesToSkip": [],
            "ClientRequestToken": request_token("continue", TOKEN, LATER.isoformat()),
        },
    )
    kind.apply(SPEC, ctx, RECORDED)

    describe(stub, "UPDATE_ROLLBACK_FAILED", env="v2", reason="The following resource(s) failed to update: [Audit]")
    audit_failed = event("e6", "UPDATE_FAILED", logical="Audit", reason="Topic is in use")
    since_continue = [event("e7", "UPDATE_ROLLBACK_FAILED"), audit_failed, event("e5", "UPDATE_ROLLBACK_IN_PROGRESS")]
    events(stub, *since_continue, event("e4", "UPDATE_ROLLBACK_FAILED"))  # reported as progress
    events(stub, *since_continue, event("e4", "UPDATE_ROLLBACK_FAILED"))  # searched for failures
    with pytest.raises(StepFailed) as raised:
        kind.verify(SPEC, ctx, RECORDED)
    message = str(raised.value)
    assert "stack web is UPDATE_ROLLBACK_FAILED (The following resource(s) failed to update: [Audit])" in message
    assert "failed: Audit UPDATE_FAILED: Topic is in use" in message
    assert "set skip_resources: [Audit] on this component and run lastgood resume" in message
    assert not getattr(raised.value, "retryable", False)


def test_update_that_rolls_back_fails_with_the_failed_resources(stub: Stubber, ctx: KindContext) -> None:
    kind = CloudFormationStack()
    describe(stub, "UPDATE_COMPLETE", env="v2")
    body(stub, BAD)
    events(stub, event("e2", "UPDATE_COMPLETE"))
    stub.add_response("update_stack", {"StackId": STACK_ID}, update_params())
    kind.apply(SPEC, ctx, RECORDED)

    describe(stub, "UPDATE_ROLLBACK_COMPLETE", env="v2")
    failure = event("e4", "UPDATE_FAILED", logical="Orders", reason="Access denied for sns:SetTopicAttributes")
    new = [event("e6", "UPDATE_ROLLBACK_COMPLETE"), event("e5", "UPDATE_ROLLBACK_IN_PROGRESS"), failure]
    events(stub, *new, event("e3", "UPDATE_IN_PROGRESS"), event("e2", "UPDATE_COMPLETE"))
    body(stub, BAD)
    events(stub, *new, event("e3", "UPDATE_IN_PROGRESS"), event("e2", "UPDATE_COMPLETE"))
    with pytest.raises(StepFailed, match="failed: Orders UPDATE_FAILED: Access denied for sns:SetTopicAttributes"):
        kind.verify(SPEC, ctx, RECORDED)


def test_no_updates_to_be_performed_counts_as_there(stub: Stubber, ctx: KindContext) -> None:
    """CloudFormation may find a template that differs in text only (comments, spacing) to be no change."""
    kind = CloudFormationStack()
    commented = "# reformatted\n" + GOOD
    describe(stub, "UPDATE_COMPLETE")
    body(stub, commented)
    events(stub, event("e2", "UPDATE_COMPLETE"))
    stub.add_client_error(
        "update_stack", "ValidationError", "No updates are to be performed.", 400, expected_params=update_params()
    )
    result = kind.apply(SPEC, ctx, RECORDED)
    assert not result.changed and "no updates are to be performed" in result.detail
    describe(stub, "UPDATE_COMPLETE")
    events(stub, event("e2", "UPDATE_COMPLETE"))
    body(stub, commented)
    assert kind.verify(SPEC, ctx, RECORDED) == []


@pytest.mark.slow
def test_stack_whose_creation_failed_cannot_be_updated(stub: Stubber, ctx: KindContext) -> None:
    kind = CloudFormationStack()
    describe(stub, "ROLLBACK_COMPLETE")
    failed = event("e2", "CREATE_FAILED", logical="Orders", reason="bad name")
    events(stub, event("e3", "ROLLBACK_COMPLETE"), failed, event("e1", "CREATE_IN_PROGRESS"))
    with pytest.raises(StepFailed, match="failed: Orders CREATE_FAILED: bad name; the stack's creation failed"):
        kind.apply(SPEC, ctx, RECORDED)


def test_iam_statements_are_scoped_to_the_stack() -> None:
    statements = CloudFormationStack().iam_statements(SPEC, IamScope(region="eu-west-1", account="111122223333"))
    assert {s.resources for s in statements} == {("arn:aws:cloudformation:eu-west-1:111122223333:stack/web/*",)}
    assert "cloudformation:CancelUpdateStack" in statements[1].actions
