"""apigateway-stage against the moto server: record -> change -> plan -> apply -> verify, re-apply, failure paths,
and the emergency stop (throttle to 0, release exactly).

Stubber-only paths: apigateway:UpdateStage with `remove /*/*` (moto 5.2 accepts it but ignores it, so releasing a
stop on a stage that had no stage-wide method settings is checked on its exact request shape only).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber

from lastgood.aws.clients import AwsClients
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds.apigateway_stage import ApigatewayStage, ApigatewayStageSpec
from lastgood.kinds.base import IamScope, KindContext


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws)


def make_api(aws: AwsClients, name: str = "shop-api") -> str:
    client = aws.client("apigateway")
    api_id: str = client.create_rest_api(name=name)["id"]
    root = client.get_resources(restApiId=api_id)["items"][0]["id"]
    client.put_method(restApiId=api_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    client.put_integration(restApiId=api_id, resourceId=root, httpMethod="GET", type="MOCK")
    return api_id


def deploy(aws: AwsClients, api_id: str) -> str:
    return str(aws.client("apigateway").create_deployment(restApiId=api_id, stageName="prod")["id"])


def throttle(aws: AwsClients, api_id: str, rate: str, burst: str) -> None:
    aws.client("apigateway").update_stage(
        restApiId=api_id,
        stageName="prod",
        patchOperations=[
            {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": rate},
            {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": burst},
        ],
    )


def limits(aws: AwsClients, api_id: str) -> dict[str, Any]:
    settings = aws.client("apigateway").get_stage(restApiId=api_id, stageName="prod")["methodSettings"]["*/*"]
    return {"rate": settings["throttlingRateLimit"], "burst": settings["throttlingBurstLimit"]}


@pytest.mark.slow
def test_stage_goes_back_to_recorded_deployment_and_throttling(aws: AwsClients, ctx: KindContext) -> None:
    api_id = make_api(aws)
    good = deploy(aws, api_id)
    throttle(aws, api_id, "100", "200")
    kind, spec = ApigatewayStage(), ApigatewayStageSpec(name="api", rest_api="shop-api", stage="prod")
    recorded = kind.read(spec, ctx)
    assert recorded == {"deployment_id": good, "throttling": {"rate_limit": 100.0, "burst_limit": 200}}

    bad = deploy(aws, api_id)  # moto replaces the stage: its method settings go with it
    throttle(aws, api_id, "2500.5", "5000")
    change = kind.plan(spec, kind.read(spec, ctx), recorded)
    assert change is not None and change.action == "update-stage"
    assert change.before == f"deployment {bad}, throttling 2500.5/s burst 5000"
    assert change.after == f"deployment {good}, throttling 100/s burst 200"

    assert kind.apply(spec, ctx, recorded).changed
    assert kind.verify(spec, ctx, recorded) == []
    assert aws.client("apigateway").get_stage(restApiId=api_id, stageName="prod")["deploymentId"] == good
    assert limits(aws, api_id) == {"rate": 100.0, "burst": 200}
    assert not kind.apply(spec, ctx, recorded).changed  # idempotent
    assert kind.plan(spec, kind.read(spec, ctx), recorded) is None


@pytest.mark.slow
def test_deleted_deployment_fails_clearly(aws: AwsClients, ctx: KindContext) -> None:
    api_id = make_api(aws)
    deploy(aws, api_id)
    kind, spec = ApigatewayStage(), ApigatewayStageSpec(name="api", rest_api_id=api_id, stage="prod")
    recorded = {"deployment_id": "gone12", "throttling": None}
    with pytest.raises(StepFailed, match=r"deployment gone12 of REST API .* no longer exists"):
        kind.apply(spec, ctx, recorded)


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_rest_api_name_must_be_unique(aws: AwsClients, ctx: KindContext) -> None:
    make_api(aws, "twin")
    make_api(aws, "twin")
    kind = ApigatewayStage()
    with pytest.raises(ResourceNotFound, match=r"2 REST APIs .* named 'twin'"):
        kind.read(ApigatewayStageSpec(name="api", rest_api="twin", stage="prod"), ctx)
    with pytest.raises(ResourceNotFound, match="no REST API named 'nope'"):
        kind.read(ApigatewayStageSpec(name="api", rest_api="nope", stage="prod"), ctx)
    with pytest.raises(ValueError, match="exactly one of rest_api_id or rest_api"):
        ApigatewayStageSpec(name="api", stage="prod")


@pytest.mark.slow
def test_emergency_stop_throttles_to_zero_and_release_restores(aws: AwsClients, ctx: KindContext) -> None:
    api_id = make_api(aws)
    deploy(aws, api_id)
    throttle(aws, api_id, "100", "200")
    kind, spec = ApigatewayStage(), ApigatewayStageSpec(name="api", rest_api_id=api_id, stage="prod")
    assert kind.takes_part_in_stop(spec)

    saved = kind.stop(spec, ctx)
    assert saved == {"throttling": {"rate_limit": 100.0, "burst_limit": 200}, "already_stopped": False}
    assert limits(aws, api_id) == {"rate": 0.0, "burst": 0}
    again = kind.stop(spec, ctx)  # repeated: nothing changes, and the first saved state must be kept
    assert again["already_stopped"] and again["throttling"] == {"rate_limit": 0.0, "burst_limit": 0}

    assert kind.release_stop(spec, ctx, saved).changed
    assert limits(aws, api_id) == {"rate": 100.0, "burst": 200}
    assert not kind.release_stop(spec, ctx, saved).changed
    assert not kind.release_stop(spec, ctx, again).changed  # stopped before us: left at 0 by design


def test_emergency_stop_of_a_stage_without_method_settings(aws: AwsClients, ctx: KindContext) -> None:
    api_id = make_api(aws)
    deploy(aws, api_id)
    kind, spec = ApigatewayStage(), ApigatewayStageSpec(name="api", rest_api_id=api_id, stage="prod")
    saved = kind.stop(spec, ctx)
    assert saved == {"throttling": None, "already_stopped": False}
    assert limits(aws, api_id) == {"rate": 0.0, "burst": 0}

    client = aws.client("apigateway")
    stage = client.get_stage(restApiId=api_id, stageName="prod")
    stage.pop("ResponseMetadata")
    with Stubber(client) as stub:
        stub.add_response("get_stage", stage, {"restApiId": api_id, "stageName": "prod"})
        stub.add_response(
            "update_stage",
            {**stage, "methodSettings": {}},
            {"restApiId": api_id, "stageName": "prod", "patchOperations": [{"op": "remove", "path": "/*/*"}]},
        )
        result = kind.release_stop(spec, ctx, saved)
        stub.assert_no_pending_responses()
    assert result.changed and result.detail == "throttling restored to account default"


def test_plan_warns_that_restoring_lifts_a_stop(aws: AwsClients, ctx: KindContext) -> None:
    kind, spec = ApigatewayStage(), ApigatewayStageSpec(name="api", rest_api_id="abc", stage="prod")
    stopped = {"deployment_id": "d1", "throttling": {"rate_limit": 0.0, "burst_limit": 0}}
    change = kind.plan(spec, stopped, {"deployment_id": "d1", "throttling": None})
    assert change is not None
    assert any("emergency stop" in note for note in change.notes)
    assert any("removes the stage-wide */* method settings" in note for note in change.notes)
    statements = kind.iam_statements(spec, IamScope(region="us-east-1"))
    assert statements[0].resources == ("arn:aws:apigateway:us-east-1::/restapis/abc/stages/prod",)
