"""ecs-service against the moto server: record -> change -> plan -> apply -> verify, re-apply, failure paths.

Stubber-only paths: ecs:DescribeServices answering with a FAILED rollout (moto never fails a deployment).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from lastgood.aws.clients import AwsClients
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds.base import KindContext
from lastgood.kinds.ecs_service import EcsService, EcsServiceSpec

SPEC = EcsServiceSpec(name="web", cluster="shop", service="web")


@pytest.fixture
def progress() -> list[str]:
    return []


@pytest.fixture
def ctx(aws: AwsClients, progress: list[str]) -> KindContext:
    return KindContext(app="shop", env="prod", aws=aws, progress=progress.append)


def register(aws: AwsClients, image: str) -> str:
    return str(
        aws.client("ecs").register_task_definition(
            family="web", containerDefinitions=[{"name": "web", "image": image, "memory": 128}]
        )["taskDefinition"]["taskDefinitionArn"]
    )


def create_service(aws: AwsClients, task_definition: str, count: int = 2) -> None:
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName="shop")
    ecs.create_service(cluster="shop", serviceName="web", taskDefinition=task_definition, desiredCount=count)


@pytest.mark.slow
def test_service_redeploys_recorded_revision(
    aws: AwsClients, ctx: KindContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOTO_ECS_SERVICE_RUNNING", "2")  # moto's in-process server: tasks come up at once
    good, bad = register(aws, "web:1"), register(aws, "web:2")
    create_service(aws, good)
    kind = EcsService()
    recorded = kind.read(SPEC, ctx)
    assert recorded == {"task_definition": good, "desired_count": 2}

    aws.client("ecs").update_service(cluster="shop", service="web", taskDefinition=bad, desiredCount=3)
    change = kind.plan(SPEC, kind.read(SPEC, ctx), recorded)
    assert change is not None and change.action == "deploy" and change.slow
    assert change.before == "web:2 x3" and change.after == "web:1 x2"
    assert change.notes == ("desired count drops 3 -> 2 (as at the release)",)

    assert kind.apply(SPEC, ctx, recorded).changed
    assert kind.verify(SPEC, ctx, recorded) == []
    service = aws.client("ecs").describe_services(cluster="shop", services=["web"])["services"][0]
    assert service["taskDefinition"] == good and service["desiredCount"] == 2
    assert not kind.apply(SPEC, ctx, recorded).changed  # idempotent


def test_verify_waits_for_the_rollout(aws: AwsClients, ctx: KindContext, progress: list[str]) -> None:
    create_service(aws, register(aws, "web:1"))  # no tasks running on moto: the rollout stays IN_PROGRESS
    kind = EcsService()
    problems = kind.verify(SPEC, ctx, kind.read(SPEC, ctx))
    assert len(problems) == 1 and problems[0].endswith("IN_PROGRESS: 0/2 running")
    assert progress == problems


def test_deregistered_revision_and_missing_service_fail_clearly(aws: AwsClients, ctx: KindContext) -> None:
    good = register(aws, "web:1")
    create_service(aws, register(aws, "web:2"))
    aws.client("ecs").deregister_task_definition(taskDefinition=good)
    with pytest.raises(StepFailed, match="web:1 is INACTIVE: ECS will not deploy it"):
        EcsService().apply(SPEC, ctx, {"task_definition": good, "desired_count": 2})
    with pytest.raises(ResourceNotFound, match="ecs:DescribeServices shop/nope: MISSING"):
        EcsService().read(EcsServiceSpec(name="x", cluster="shop", service="nope"), ctx)


def test_failed_rollout_fails_the_step(aws: AwsClients, ctx: KindContext) -> None:
    arn = "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"
    deployment = {
        "id": "ecs-svc/1",
        "status": "PRIMARY",
        "taskDefinition": arn,
        "desiredCount": 2,
        "runningCount": 0,
        "rolloutState": "FAILED",
        "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
        "createdAt": datetime(2024, 5, 1, tzinfo=UTC),
    }
    answer = {"services": [{"serviceName": "web", "status": "ACTIVE", "taskDefinition": arn, "desiredCount": 2,
                            "deployments": [deployment]}], "failures": []}  # fmt: skip
    client = aws.client("ecs")
    with Stubber(client) as stub:
        stub.add_response("describe_services", answer, {"cluster": "shop", "services": ["web"]})
        with pytest.raises(StepFailed, match="deployment ecs-svc/1 FAILED: ECS deployment circuit breaker"):
            EcsService().verify(SPEC, ctx, {"task_definition": arn, "desired_count": 2})
        stub.assert_no_pending_responses()
