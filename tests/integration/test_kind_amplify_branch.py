"""amplify-branch: record -> change -> plan -> apply -> verify, re-apply, failure paths.

Stubber-only paths: amplify:ListJobs, amplify:StartJob, amplify:GetDomainAssociation,
amplify:UpdateDomainAssociation (moto 5.2 does not implement Amplify at all), so every call is stubbed with its
exact request shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from lastgood.aws.clients import AwsClients
from lastgood.errors import AwsError, StepFailed
from lastgood.kinds.amplify_branch import AmplifyBranch, AmplifyBranchSpec
from lastgood.kinds.base import KindContext

APP, BRANCH, DOMAIN = "d1abc", "main", "example.com"
LIST = {"appId": APP, "branchName": BRANCH, "maxResults": 50}
GET_DOMAIN = {"appId": APP, "domainName": DOMAIN}
START = {
    "appId": APP,
    "branchName": BRANCH,
    "jobId": "2",
    "jobType": "RETRY",
    "jobReason": "lastgood rollback rb-7-site",
}
WHEN = datetime(2024, 5, 1, tzinfo=UTC)


def job(job_id: str, status: str, commit: str, source_url: str | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "jobArn": f"arn:aws:amplify:us-east-1:123456789012:apps/{APP}/branches/{BRANCH}/jobs/{job_id}",
        "jobId": job_id,
        "commitId": commit,
        "commitMessage": "msg",
        "commitTime": WHEN,
        "startTime": WHEN,
        "status": status,
        "jobType": "WEB_HOOK",
    }
    if source_url:
        summary["sourceUrl"] = source_url
    return summary


def domain(mapping: dict[str, str]) -> dict[str, Any]:
    subs = [
        {"subDomainSetting": {"prefix": prefix, "branchName": branch}, "verified": True, "dnsRecord": "x"}
        for prefix, branch in mapping.items()
    ]
    return {
        "domainAssociation": {
            "domainAssociationArn": f"arn:aws:amplify:us-east-1:123456789012:apps/{APP}/domains/{DOMAIN}",
            "domainName": DOMAIN,
            "enableAutoSubDomain": False,
            "domainStatus": "AVAILABLE",
            "statusReason": "",
            "subDomains": subs,
        }
    }


@pytest.fixture
def stub(aws: AwsClients) -> Iterator[Stubber]:
    stubber = Stubber(aws.client("amplify"))
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


@pytest.fixture
def progress() -> list[str]:
    return []


@pytest.fixture
def ctx(aws: AwsClients, progress: list[str]) -> KindContext:
    return KindContext(app="site", env="prod", aws=aws, token="rb-7-site", progress=progress.append)


def jobs(stub: Stubber, *summaries: dict[str, Any]) -> None:
    stub.add_response("list_jobs", {"jobSummaries": list(summaries)}, LIST)


@pytest.mark.slow
def test_amplify_redeploys_recorded_job_and_switches_domain_back(
    stub: Stubber, ctx: KindContext, progress: list[str]
) -> None:
    kind = AmplifyBranch()
    spec = AmplifyBranchSpec(name="site", app_id=APP, branch=BRANCH, domain=DOMAIN, prefix="www")
    signed = "https://artifacts.s3.amazonaws.com/a/2.zip?X-Amz-Credential=AKIA123&X-Amz-Signature=abc"
    jobs(stub, job("2", "SUCCEED", "aaaaaaaaaa", signed), job("1", "SUCCEED", "0000"))
    stub.add_response("get_domain_association", domain({"www": "blue", "": "blue"}), GET_DOMAIN)
    recorded = kind.read(spec, ctx)
    assert recorded == {
        "job_id": "2",
        "commit_id": "aaaaaaaaaa",
        "source_url": "https://artifacts.s3.amazonaws.com/a/2.zip",  # the signature is not stored
        "domain_branch": "blue",
    }

    # A bad release: commit bbb deployed, and www switched to the green branch.
    jobs(stub, job("3", "SUCCEED", "bbbbbbbbbb"), job("2", "SUCCEED", "aaaaaaaaaa"))
    stub.add_response("get_domain_association", domain({"www": "green", "": "blue"}), GET_DOMAIN)
    current = kind.read(spec, ctx)
    change = kind.plan(spec, current, recorded)
    assert change is not None and change.action == "redeploy" and change.slow
    assert change.before == "commit bbbbbbbb (job 3), domain -> green"
    assert change.after == "commit aaaaaaaa (job 2), domain -> blue"
    assert "redeploys job 2's artifact (https://artifacts.s3.amazonaws.com/a/2.zip)" in change.notes

    jobs(stub, job("3", "SUCCEED", "bbbbbbbbbb"), job("2", "SUCCEED", "aaaaaaaaaa"))
    stub.add_response("start_job", {"jobSummary": job("4", "PENDING", "aaaaaaaaaa")}, START)
    stub.add_response("get_domain_association", domain({"www": "green", "": "blue"}), GET_DOMAIN)
    stub.add_response(
        "update_domain_association",
        domain({"www": "blue", "": "blue"}),
        {
            "appId": APP,
            "domainName": DOMAIN,
            "subDomainSettings": [{"prefix": "www", "branchName": "blue"}, {"prefix": "", "branchName": "blue"}],
            "enableAutoSubDomain": False,
        },
    )
    result = kind.apply(spec, ctx, recorded)
    assert result.changed and "job 4 redeploys commit aaaaaaaa (job 2)" in result.detail
    assert "www.example.com -> branch blue" in result.detail

    jobs(stub, job("4", "RUNNING", "aaaaaaaaaa"), job("3", "SUCCEED", "bbbbbbbbbb"))
    assert kind.verify(spec, ctx, recorded) == ["job 4 is RUNNING"]
    assert "job 4 is RUNNING" in progress

    jobs(stub, job("4", "SUCCEED", "aaaaaaaaaa"), job("3", "SUCCEED", "bbbbbbbbbb"))
    stub.add_response("get_domain_association", domain({"www": "blue", "": "blue"}), GET_DOMAIN)
    assert kind.verify(spec, ctx, recorded) == []

    jobs(stub, job("4", "SUCCEED", "aaaaaaaaaa"), job("3", "SUCCEED", "bbbbbbbbbb"))
    stub.add_response("get_domain_association", domain({"www": "blue", "": "blue"}), GET_DOMAIN)
    assert not kind.apply(spec, ctx, recorded).changed  # idempotent


def test_amplify_does_not_start_a_second_redeploy_while_one_runs(stub: Stubber, ctx: KindContext) -> None:
    """A retried apply after a crash finds the redeploy of the recorded commit running and starts nothing."""
    kind, spec = AmplifyBranch(), AmplifyBranchSpec(name="site", app_id=APP, branch=BRANCH)
    recorded = {"job_id": "2", "commit_id": "aaaaaaaaaa", "source_url": None}
    jobs(stub, job("4", "RUNNING", "aaaaaaaaaa"), job("3", "SUCCEED", "bbbbbbbbbb"))
    result = kind.apply(spec, ctx, recorded)  # no start_job response is stubbed: none was sent
    assert result.changed and result.detail == "job 4 is already deploying commit aaaaaaaa"


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_amplify_redeploys_after_a_running_job_of_another_commit(stub: Stubber, ctx: KindContext) -> None:
    """The recorded commit is live but a newer deploy is running: ours must land after it."""
    kind, spec = AmplifyBranch(), AmplifyBranchSpec(name="site", app_id=APP, branch=BRANCH)
    recorded = {"job_id": "2", "commit_id": "aaaaaaaaaa", "source_url": None}
    jobs(stub, job("3", "RUNNING", "bbbbbbbbbb"), job("2", "SUCCEED", "aaaaaaaaaa"))
    stub.add_response("start_job", {"jobSummary": job("4", "PENDING", "aaaaaaaaaa")}, START)
    assert kind.apply(spec, ctx, recorded).changed


def test_amplify_failed_redeploy_fails_the_step(stub: Stubber, ctx: KindContext) -> None:
    kind, spec = AmplifyBranch(), AmplifyBranchSpec(name="site", app_id=APP, branch=BRANCH)
    recorded = {"job_id": "2", "commit_id": "aaaaaaaaaa", "source_url": None}
    jobs(stub, job("4", "FAILED", "aaaaaaaaaa"), job("3", "SUCCEED", "bbbbbbbbbb"))
    with pytest.raises(StepFailed, match="job 4 FAILED"):
        kind.verify(spec, ctx, recorded)


def test_amplify_nothing_recorded_and_missing_app(stub: Stubber, ctx: KindContext) -> None:
    kind, spec = AmplifyBranch(), AmplifyBranchSpec(name="site", app_id=APP, branch=BRANCH)
    jobs(stub, job("1", "FAILED", "aaaaaaaaaa"))
    empty = kind.read(spec, ctx)
    assert empty == {"job_id": None, "commit_id": None, "source_url": None}
    assert kind.warnings(spec, empty) == [f"{APP}/{BRANCH} has no successful job: there is nothing to redeploy"]
    with pytest.raises(StepFailed, match="no successful job was recorded"):
        kind.apply(spec, ctx, empty)
    stub.add_client_error("list_jobs", "NotFoundException", "App d1abc not found", 404, expected_params=LIST)
    with pytest.raises(AwsError, match="amplify:ListJobs d1abc/main: NotFoundException"):
        kind.read(spec, ctx)
