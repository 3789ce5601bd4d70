"""`codedeploy_hooks:` failed BeforeAllowTraffic/AfterAllowTraffic hooks counted per period. moto 5 has no
ListDeploymentTargets or BatchGetDeploymentTargets (moto/codedeploy/models.py), so the calls are pinned with
botocore's Stubber on their exact request shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from lastgood.config.models import Trigger
from lastgood.sources.base import SeriesRequest
from lastgood.sources.codedeploy_hooks import CodeDeployHooksSource, HookQuery

START = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
END = START + timedelta(minutes=3)
QUERY = HookQuery(application="shop", deployment_group="shop-api-prod")


def event(name: str, status: str, minute: float) -> dict[str, Any]:
    at = START + timedelta(minutes=minute)
    return {"lifecycleEventName": name, "status": status, "startTime": at - timedelta(seconds=5), "endTime": at}


def stubbed(targets: list[dict[str, Any]], ids: list[str]) -> tuple[Any, Stubber]:
    client = boto3.client("codedeploy", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    listed = {
        "applicationName": "shop",
        "deploymentGroupName": "shop-api-prod",
        "createTimeRange": {"start": START - timedelta(hours=6), "end": END},
    }
    stubber.add_response("list_deployments", {"deployments": ["d-1"], "nextToken": "n"}, listed)
    stubber.add_response("list_deployments", {"deployments": []}, {**listed, "nextToken": "n"})
    stubber.add_response("list_deployment_targets", {"targetIds": ids}, {"deploymentId": "d-1"})
    for index in range(0, len(ids), 25):
        chunk = ids[index : index + 25]
        answer = {"deploymentTargets": targets[index : index + 25]}
        stubber.add_response("batch_get_deployment_targets", answer, {"deploymentId": "d-1", "targetIds": chunk})
    return client, stubber


def fetch(client: Any, stubber: Stubber, query: HookQuery = QUERY) -> Any:
    clients: Any = type("Clients", (), {"client": lambda _self, service: client})()
    with stubber:
        got = CodeDeployHooksSource(clients).fetch([SeriesRequest("hooks", query, 60)], START, END)["hooks"]
    stubber.assert_no_pending_responses()
    return got


def test_failed_traffic_hooks_are_counted_in_the_period_they_ended() -> None:
    lambda_target = {
        "deploymentTargetType": "LambdaFunction",
        "lambdaTarget": {
            "lifecycleEvents": [
                event("BeforeAllowTraffic", "Succeeded", 0.5),
                event("AllowTraffic", "Failed", 0.6),  # not a hook the file counts
                event("AfterAllowTraffic", "Failed", 1.5),
            ]
        },
    }
    ecs_target = {"ecsTarget": {"lifecycleEvents": [event("BeforeAllowTraffic", "Failed", 1.2)]}}
    late = {"ecsTarget": {"lifecycleEvents": [event("AfterAllowTraffic", "Failed", 4)]}}  # after the window
    targets = [lambda_target, ecs_target, late] + [{"lambdaTarget": {"lifecycleEvents": []}}] * 25
    client, stubber = stubbed(targets, [f"t{i}" for i in range(len(targets))])  # 28 targets: two batches
    got = fetch(client, stubber)
    assert got.status == "ok"
    assert list(got.points.values()) == [0.0, 2.0, 0.0]


def test_a_failing_call_is_an_error_series() -> None:
    client = boto3.client("codedeploy", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_client_error("list_deployments", "DeploymentGroupDoesNotExistException", "no such group")
    got = fetch(client, stubber)
    assert got.status == "error" and "shop/shop-api-prod" in str(got.error) and "no such group" in str(got.error)


def test_a_hook_trigger_in_the_file() -> None:
    data = {"name": "hook-failures", "codedeploy_hooks": {"application": "shop", "deployment_group": "g"}}
    trigger = Trigger.model_validate({**data, "when": "> 0", "action": "rollback"})
    assert trigger.source_type == "codedeploy_hooks"
    assert trigger.query.hooks == ["BeforeAllowTraffic", "AfterAllowTraffic"]
    with pytest.raises(ValueError, match="not compared with a baseline"):
        Trigger.model_validate({**data, "when": "> 2x baseline"})
