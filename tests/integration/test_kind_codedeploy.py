"""codedeploy: record -> change -> plan -> apply -> verify, re-apply, failure paths.

On the moto server: CreateApplication, CreateDeploymentGroup, GetDeploymentGroup, GetDeployment, ListDeployments
(with includeOnlyStatuses), BatchGetDeployments and CreateDeployment. moto 5.2 has no fleet: its deployments stay
"Created" and GetDeploymentGroup leaves lastSuccessfulDeployment empty, so the `fleet` fixture plays that part
in-process (it ends deployments and fills lastSuccessfulDeployment from them).
Stubber-only paths: codedeploy:StopDeployment (moto 5.2 does not implement it) and CodeDeploy's own rollback
deployments, stubbed with the exact request shapes of GetDeploymentGroup, GetDeployment, ListDeployments,
BatchGetDeployments, StopDeployment and CreateDeployment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from moto.codedeploy import responses as moto_codedeploy
from moto.codedeploy.models import CodeDeployBackend, DeploymentGroup, codedeploy_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.utils import utcnow

from lastgood.aws.clients import AwsClients
from lastgood.errors import ResourceNotFound, StepFailed
from lastgood.kinds.base import IamScope, KindContext
from lastgood.kinds.codedeploy import IN_FLIGHT, CodeDeploy, CodeDeploySpec, GroupSettledElsewhere
from lastgood.kinds.registry import get_kind

TOKEN = "rb-2-app"
SPEC = CodeDeploySpec(name="app", application="web", deployment_group="prod")


def s3(key: str) -> dict[str, Any]:
    return {"revisionType": "S3", "s3Location": {"bucket": "builds", "key": key, "bundleType": "zip"}}


V1, V2 = s3("web-v1.zip"), s3("web-v2.zip")


@pytest.fixture
def progress() -> list[str]:
    return []


@pytest.fixture
def ctx(aws: AwsClients, progress: list[str]) -> KindContext:
    return KindContext(app="web", env="prod", aws=aws, token=TOKEN, progress=progress.append)


class Fleet:
    """What CodeDeploy's agents and service do and moto 5.2 does not: end deployments."""

    @staticmethod
    def backend() -> CodeDeployBackend:
        return codedeploy_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]

    def finish(self, deployment_id: str, status: str = "Succeeded") -> None:
        deployment = self.backend().deployments[deployment_id]
        deployment.status = status
        deployment.complete_time = utcnow()

    def last_success(self, group: DeploymentGroup) -> dict[str, Any] | None:
        done = [
            d for d in self.backend().deployments.values() if d.deployment_group is group and d.status == "Succeeded"
        ]
        if not done:
            return None
        last = max(done, key=lambda d: d.complete_time or d.create_time)
        return {
            "deploymentId": last.deployment_id,
            "status": "Succeeded",
            "endTime": last.complete_time,
            "createTime": last.create_time,
        }


@pytest.fixture
def fleet(aws: AwsClients, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    fleet = Fleet()
    original = moto_codedeploy._deployment_group_info

    def with_last_success(group: DeploymentGroup) -> dict[str, Any]:
        info = original(group)
        info["lastSuccessfulDeployment"] = fleet.last_success(group) or {}
        return info

    monkeypatch.setattr(moto_codedeploy, "_deployment_group_info", with_last_success)
    codedeploy = aws.client("codedeploy")
    codedeploy.create_application(applicationName="web", computePlatform="Server")
    codedeploy.create_deployment_group(
        applicationName="web", deploymentGroupName="prod", serviceRoleArn="arn:aws:iam::123456789012:role/deploy"
    )
    return fleet


def deploy(aws: AwsClients, fleet: Fleet, revision: dict[str, Any], status: str = "Succeeded") -> str:
    created = aws.client("codedeploy").create_deployment(
        applicationName="web", deploymentGroupName="prod", revision=revision, description="ci"
    )
    fleet.finish(created["deploymentId"], status)
    return str(created["deploymentId"])


def all_deployments(aws: AwsClients) -> list[str]:
    listed = aws.client("codedeploy").list_deployments(applicationName="web", deploymentGroupName="prod")
    return list(listed["deployments"])


@pytest.mark.slow
def test_codedeploy_redeploys_the_recorded_revision(
    aws: AwsClients, fleet: Fleet, ctx: KindContext, progress: list[str]
) -> None:
    kind = get_kind("codedeploy")
    assert isinstance(kind, CodeDeploy) and kind.slow
    first = deploy(aws, fleet, V1)
    recorded = kind.record(SPEC, ctx)
    assert recorded == {"deployment_id": first, "revision": V1, "in_flight": []}
    assert kind.warnings(SPEC, recorded) == []

    second = deploy(aws, fleet, V2)
    current = kind.read(SPEC, ctx)
    assert kind.differences(SPEC, current, recorded) == ["revision s3://builds/web-v2.zip -> s3://builds/web-v1.zip"]
    change = kind.plan(SPEC, current, recorded)
    assert change is not None and change.action == "redeploy" and change.slow and not change.destructive
    assert change.before == f"s3://builds/web-v2.zip ({second})"
    assert change.after == f"s3://builds/web-v1.zip ({first})"

    result = kind.apply(SPEC, ctx, recorded)
    assert result.changed and result.detail.startswith("started deployment ")
    restore = next(d for d in all_deployments(aws) if d not in (first, second))
    info = aws.client("codedeploy").get_deployment(deploymentId=restore)["deploymentInfo"]
    assert info["revision"] == V1
    assert info["description"] == f"lastgood rollback {TOKEN}: redeploy the revision of {first}"
    assert kind.verify(SPEC, ctx, recorded) == [f"deployment {restore} is Created"]
    assert progress == [f"deployment {restore} is Created"]

    again = kind.apply(SPEC, ctx, recorded)  # a retry after a crash: finds its deployment by the token
    assert again.detail == f"deployment {restore} of this rollback is already Created"
    assert len(all_deployments(aws)) == 3

    fleet.finish(restore)
    assert kind.verify(SPEC, ctx, recorded) == []
    assert not kind.apply(SPEC, ctx, recorded).changed  # idempotent
    assert kind.plan(SPEC, kind.read(SPEC, ctx), recorded) is None


@pytest.mark.slow
def test_failed_redeploy_fails_the_step(aws: AwsClients, fleet: Fleet, ctx: KindContext) -> None:
    kind = CodeDeploy()
    deploy(aws, fleet, V1)
    recorded = kind.read(SPEC, ctx)
    deploy(aws, fleet, V2)
    kind.apply(SPEC, ctx, recorded)
    (restore,) = aws.client("codedeploy").list_deployments(
        applicationName="web", deploymentGroupName="prod", includeOnlyStatuses=IN_FLIGHT
    )["deployments"]
    fleet.finish(restore, "Failed")
    with pytest.raises(StepFailed, match=f"deployment {restore} Failed"):
        kind.verify(SPEC, ctx, recorded)


def test_nothing_recorded_and_missing_group(aws: AwsClients, fleet: Fleet, ctx: KindContext) -> None:
    kind = CodeDeploy()
    empty = kind.read(SPEC, ctx)
    assert empty == {"deployment_id": None, "revision": None, "in_flight": []}
    assert kind.warnings(SPEC, empty) == [
        "web/prod has no successful deployment: a rollback to this release cannot redeploy"
    ]
    deploy(aws, fleet, V1)
    with pytest.raises(StepFailed, match="no successful deployment when the release was recorded"):
        kind.apply(SPEC, ctx, empty)
    with pytest.raises(ResourceNotFound, match="codedeploy:GetDeploymentGroup web/nope"):
        kind.read(CodeDeploySpec(name="x", application="web", deployment_group="nope"), ctx)


def test_deployment_in_flight_at_record_time_is_named(aws: AwsClients, fleet: Fleet, ctx: KindContext) -> None:
    kind = CodeDeploy()
    first = deploy(aws, fleet, V1)
    running = deploy(aws, fleet, V2, status="InProgress")
    recorded = kind.record(SPEC, ctx)
    assert recorded == {"deployment_id": first, "revision": V1, "in_flight": [running]}
    assert kind.warnings(SPEC, recorded) == [
        f"web/prod: {running} was in flight when recorded; the recorded revision is the last successful one ({first})"
    ]
    # The state recorded with something in flight is still a target: only the revision counts.
    assert kind.differences(SPEC, {**recorded, "in_flight": []}, recorded) == []


# Stubbed: stopping deployments in flight, and CodeDeploy's own rollback.

GROUP = {"applicationName": "web", "deploymentGroupName": "prod"}
LIST = {**GROUP, "includeOnlyStatuses": ["Created", "Queued", "InProgress", "Baking", "Ready"]}
RECORDED = {"deployment_id": "d-1", "revision": V1, "in_flight": []}


@pytest.fixture
def stub(aws: AwsClients) -> Iterator[Stubber]:
    stubber = Stubber(aws.client("codedeploy"))
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def deployment(deployment_id: str, status: str, revision: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"deploymentId": deployment_id, "status": status, "revision": revision, **extra}


def group_state(stub: Stubber, last: str, revision: dict[str, Any], in_flight: list[str]) -> None:
    """The three reads of every apply and verify: the group, its last successful deployment, what is in flight."""
    info = {"lastSuccessfulDeployment": {"deploymentId": last, "status": "Succeeded"}}
    stub.add_response("get_deployment_group", {"deploymentGroupInfo": info}, GROUP)
    stub.add_response(
        "get_deployment", {"deploymentInfo": deployment(last, "Succeeded", revision)}, {"deploymentId": last}
    )
    stub.add_response("list_deployments", {"deployments": in_flight}, LIST)


def batch(stub: Stubber, *deployments: dict[str, Any]) -> None:
    ids = [d["deploymentId"] for d in deployments]
    stub.add_response("batch_get_deployments", {"deploymentsInfo": list(deployments)}, {"deploymentIds": ids})


@pytest.mark.slow
def test_deployment_in_flight_is_stopped_then_the_record_redeployed(
    stub: Stubber, ctx: KindContext, progress: list[str]
) -> None:
    kind = CodeDeploy()
    group_state(stub, "d-2", V2, ["d-3"])
    batch(stub, deployment("d-3", "InProgress", s3("web-v3.zip"), creator="user", description="ci"))
    stub.add_response("stop_deployment", {"status": "Pending"}, {"deploymentId": "d-3", "autoRollbackEnabled": True})
    change = kind.plan(SPEC, {"deployment_id": "d-2", "revision": V2, "in_flight": ["d-3"]}, RECORDED)
    assert change is not None and change.action == "stop-and-redeploy"
    assert change.notes == ("stops d-3 first (CodeDeploy rolls its targets back)",)
    result = kind.apply(SPEC, ctx, RECORDED)
    assert result.changed and result.detail == "stopped d-3; CodeDeploy rolls their instances back"

    group_state(stub, "d-2", V2, ["d-4"])
    overview = {"Pending": 0, "InProgress": 1, "Succeeded": 1, "Failed": 0, "Skipped": 0, "Ready": 0}
    rollback = deployment("d-4", "InProgress", V2, creator="codeDeployRollback", deploymentOverview=overview)
    batch(stub, rollback)
    line = "deployment d-4 (CodeDeploy's rollback) is InProgress: 1/2 targets succeeded"
    assert kind.verify(SPEC, ctx, RECORDED) == [line]
    assert progress == [line]

    group_state(stub, "d-4", V2, [])
    with pytest.raises(GroupSettledElsewhere, match=r"idle on s3://builds/web-v2\.zip") as raised:
        kind.verify(SPEC, ctx, RECORDED)
    assert raised.value.retryable  # the engine applies again

    group_state(stub, "d-4", V2, [])
    stub.add_response(
        "create_deployment",
        {"deploymentId": "d-5"},
        {
            **GROUP,
            "revision": V1,
            "description": f"lastgood rollback {TOKEN}: redeploy the revision of d-1",
        },
    )
    assert kind.apply(SPEC, ctx, RECORDED).detail == "started deployment d-5 of s3://builds/web-v1.zip"

    group_state(stub, "d-4", V2, ["d-5"])
    batch(stub, deployment("d-5", "InProgress", V1, description=f"lastgood rollback {TOKEN}: ..."))
    assert kind.verify(SPEC, ctx, RECORDED) == ["deployment d-5 is InProgress"]

    group_state(stub, "d-5", V1, [])
    assert kind.verify(SPEC, ctx, RECORDED) == []


@pytest.mark.slow
def test_codedeploys_own_rollback_is_not_stopped(stub: Stubber, ctx: KindContext) -> None:
    kind = CodeDeploy()
    group_state(stub, "d-2", V2, ["d-4"])
    batch(stub, deployment("d-4", "InProgress", V2, creator="codeDeployRollback"))
    result = kind.apply(SPEC, ctx, RECORDED)  # no stop_deployment is stubbed: none was sent
    assert result.detail == "waiting for CodeDeploy's own rollback d-4"


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_deployment_that_completes_while_being_stopped_is_fine(stub: Stubber, ctx: KindContext) -> None:
    kind = CodeDeploy()
    group_state(stub, "d-2", V2, ["d-3"])
    batch(stub, deployment("d-3", "InProgress", s3("web-v3.zip"), creator="user"))
    stub.add_client_error(
        "stop_deployment",
        "DeploymentAlreadyCompletedException",
        "The deployment d-3 is already completed.",
        400,
        expected_params={"deploymentId": "d-3", "autoRollbackEnabled": True},
    )
    assert kind.apply(SPEC, ctx, RECORDED).changed


def test_iam_statements_are_scoped_to_the_group() -> None:
    statements = CodeDeploy().iam_statements(SPEC, IamScope(region="eu-west-1", account="111122223333"))
    by_action = {action: s.resources for s in statements for action in s.actions}
    group = ("arn:aws:codedeploy:eu-west-1:111122223333:deploymentgroup:web/prod",)
    assert by_action["codedeploy:StopDeployment"] == by_action["codedeploy:CreateDeployment"] == group
    assert by_action["codedeploy:RegisterApplicationRevision"] == (
        "arn:aws:codedeploy:eu-west-1:111122223333:application:web",
    )
