"""cloudformation-stack's redeploy action (`redeploy_after`): UpdateStack with the same template and parameters,
polled until the stack settles; a retry while our own redeploy runs waits for it; someone else's update is
waited out; a redeploy that rolls back fails with the resources that failed.

Stubber-only paths: every stack in progress or rolled back, and an UpdateStack that starts (moto completes an
update at once and answers "No updates are to be performed" to the same template and values, so the only path
it shows is the no-op one: that is tests/integration/test_redeploy_after.py, through the CLI on moto's server).
DescribeStacks, DescribeStackEvents and UpdateStack are stubbed with their exact request shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from lastgood.aws.clients import AwsClients
from lastgood.errors import StepFailed
from lastgood.kinds.base import KindContext
from lastgood.kinds.cloudformation_stack import (
    CAPABILITIES,
    CloudFormationStack,
    CloudFormationStackSpec,
    StackSettledElsewhere,
    request_token,
)
from lastgood.kinds.redeploy import RedeployStep

pytestmark = pytest.mark.aws

TOKEN = "rb-9-api:redeploy"
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/api/1"
WHEN = datetime(2024, 5, 1, tzinfo=UTC)
LATER = datetime(2024, 5, 2, tzinfo=UTC)
NAME = {"StackName": "api"}
SPEC = CloudFormationStackSpec(name="api", stack="api", redeploy_after=["db-secret"])
UPDATE = {
    "StackName": "api",
    "UsePreviousTemplate": True,
    "Parameters": [
        {"ParameterKey": "DbEndpoint", "UsePreviousValue": True},
        {"ParameterKey": "Stage", "UsePreviousValue": True},
    ],
    "Capabilities": CAPABILITIES,
    "ClientRequestToken": request_token("redeploy", TOKEN, LATER.isoformat()),
}


def stack(status: str, reason: str | None = None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "StackId": STACK_ID,
        "StackName": "api",
        "CreationTime": WHEN,
        "LastUpdatedTime": LATER,
        "StackStatus": status,
        "Parameters": [
            {"ParameterKey": "DbEndpoint", "ParameterValue": "/cira/prod/db-endpoint", "ResolvedValue": "db-1"},
            {"ParameterKey": "Stage", "ParameterValue": "prod"},
        ],
    }
    if reason:
        described["StackStatusReason"] = reason
    return {"Stacks": [described]}


def event(event_id: str, status: str, logical: str = "api", token: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "StackId": STACK_ID,
        "EventId": event_id,
        "StackName": "api",
        "LogicalResourceId": logical,
        "PhysicalResourceId": STACK_ID if logical == "api" else f"{logical}-physical",
        "ResourceType": "AWS::CloudFormation::Stack" if logical == "api" else "AWS::Lambda::Function",
        "Timestamp": WHEN,
        "ResourceStatus": status,
    }
    if token:
        item["ClientRequestToken"] = token
    return item


@pytest.fixture
def stub(aws: AwsClients) -> Iterator[Stubber]:
    stubber = Stubber(aws.client("cloudformation"))
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    return KindContext(app="cira", env="prod", aws=aws, token=TOKEN)


def describe(stub: Stubber, status: str, reason: str | None = None) -> None:
    stub.add_response("describe_stacks", stack(status, reason), NAME)


def test_redeploy_updates_with_the_same_template_and_waits(stub: Stubber, ctx: KindContext) -> None:
    step = RedeployStep(CloudFormationStack())
    describe(stub, "UPDATE_COMPLETE")
    stub.add_response("update_stack", {"StackId": STACK_ID}, UPDATE)
    result = step.apply(SPEC, ctx, {"after": ["db-secret"]})
    assert result.changed and result.detail == "UpdateStack started with the same template (2 parameters kept)"
    describe(stub, "UPDATE_IN_PROGRESS")
    assert step.verify(SPEC, ctx, {}) == ["stack api is UPDATE_IN_PROGRESS"]
    describe(stub, "UPDATE_COMPLETE")
    assert step.verify(SPEC, ctx, {}) == []


def test_a_retry_while_our_redeploy_runs_waits_for_it(stub: Stubber, ctx: KindContext) -> None:
    step = RedeployStep(CloudFormationStack())
    describe(stub, "UPDATE_IN_PROGRESS")
    ours = request_token("redeploy", TOKEN, WHEN.isoformat())
    stub.add_response("describe_stack_events", {"StackEvents": [event("e1", "UPDATE_IN_PROGRESS", token=ours)]}, NAME)
    result = step.apply(SPEC, ctx, {})
    assert result.detail == "the redeploy is already under way"  # no second UpdateStack stubbed: none sent


def test_someone_elses_update_is_waited_out(stub: Stubber, ctx: KindContext) -> None:
    step = RedeployStep(CloudFormationStack())
    describe(stub, "UPDATE_IN_PROGRESS")
    other = "console-update-1"
    stub.add_response("describe_stack_events", {"StackEvents": [event("e1", "UPDATE_IN_PROGRESS", token=other)]}, NAME)
    with pytest.raises(StackSettledElsewhere, match="the redeploy starts once it settles") as error:
        step.apply(SPEC, ctx, {})
    assert error.value.retryable


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_redeploy_that_rolls_back_fails(stub: Stubber, ctx: KindContext) -> None:
    step = RedeployStep(CloudFormationStack())
    describe(stub, "UPDATE_COMPLETE")
    stub.add_response("update_stack", {"StackId": STACK_ID}, UPDATE)
    step.apply(SPEC, ctx, {})
    describe(stub, "UPDATE_ROLLBACK_COMPLETE", "Resource update cancelled")
    stub.add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                event("e3", "UPDATE_ROLLBACK_COMPLETE"),
                event("e2", "UPDATE_FAILED", logical="Handler"),
                event("e1", "UPDATE_IN_PROGRESS"),
            ]
        },
        NAME,
    )
    with pytest.raises(StepFailed, match=r"stack api is UPDATE_ROLLBACK_COMPLETE .*failed: Handler"):
        step.verify(SPEC, ctx, {})


def test_nothing_to_do_is_done_at_once(stub: Stubber, ctx: KindContext) -> None:
    step = RedeployStep(CloudFormationStack())
    describe(stub, "UPDATE_COMPLETE")
    stub.add_client_error(
        "update_stack", "ValidationError", "No updates are to be performed.", 400, expected_params=UPDATE
    )
    result = step.apply(SPEC, ctx, {})
    assert not result.changed and "see redeploy_command" in result.detail
    assert step.verify(SPEC, ctx, {}) == []  # no describe stubbed: none sent
