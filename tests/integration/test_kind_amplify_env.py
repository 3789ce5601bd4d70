"""amplify-env: record -> change -> plan -> apply -> verify, app and branch variables, named or all, secrets.

Stubber-only paths: amplify:GetApp, amplify:GetBranch, amplify:UpdateApp, amplify:UpdateBranch (moto 5.2 does
not implement Amplify), each stubbed with its exact request shape. The vault (SSM SecureString) is moto's.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from pydantic import ValidationError

from lastgood.aws.clients import AwsClients
from lastgood.errors import StepFailed
from lastgood.kinds.amplify_env import AmplifyEnv, AmplifyEnvSpec
from lastgood.kinds.base import KindContext
from lastgood.redact import redact

pytestmark = pytest.mark.aws

APP, BRANCH = "d1abc", "main"
WHEN = datetime(2024, 5, 1, tzinfo=UTC)
RELEASED = {"API_URL": "https://api.example.com", "STRIPE_SECRET_KEY": "sk_live_released_1", "FLAG": "on"}


def app(variables: dict[str, str]) -> dict[str, Any]:
    return {
        "app": {
            "appId": APP,
            "appArn": f"arn:aws:amplify:us-east-1:123456789012:apps/{APP}",
            "name": "site",
            "description": "",
            "repository": "https://github.com/x/site",
            "platform": "WEB",
            "createTime": WHEN,
            "updateTime": WHEN,
            "environmentVariables": variables,
            "defaultDomain": "d1abc.amplifyapp.com",
            "enableBranchAutoBuild": True,
            "enableBasicAuth": False,
        }
    }


def branch(variables: dict[str, str]) -> dict[str, Any]:
    return {
        "branch": {
            "branchArn": f"arn:aws:amplify:us-east-1:123456789012:apps/{APP}/branches/{BRANCH}",
            "branchName": BRANCH,
            "description": "",
            "stage": "PRODUCTION",
            "displayName": BRANCH,
            "enableNotification": False,
            "createTime": WHEN,
            "updateTime": WHEN,
            "environmentVariables": variables,
            "enableAutoBuild": True,
            "customDomains": [],
            "framework": "React",
            "activeJobId": "3",
            "totalNumberOfJobs": "3",
            "enableBasicAuth": False,
            "ttl": "5",
            "enablePullRequestPreview": False,
        }
    }


@pytest.fixture
def stub(aws: AwsClients) -> Iterator[Stubber]:
    stubber = Stubber(aws.client("amplify"))
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


@pytest.fixture
def ctx(aws: AwsClients) -> KindContext:
    return KindContext(app="site", env="prod", aws=aws, token="rb-3-site-env")


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_app_variables_all_restored_secret_from_the_vault(stub: Stubber, ctx: KindContext, aws: AwsClients) -> None:
    kind = AmplifyEnv()
    spec = AmplifyEnvSpec(name="site-env", app_id=APP, vault="/lg/prod")
    stub.add_response("get_app", app(RELEASED), {"appId": APP})
    recorded = kind.record(spec, ctx)
    assert recorded["variables"]["API_URL"]["value"] == "https://api.example.com"
    assert set(recorded["variables"]["STRIPE_SECRET_KEY"]) == {"hash", "vault_version"}
    assert "sk_live" not in repr(recorded)
    assert redact("key sk_live_released_1") == "key ****"  # registered: masked wherever it would leave lastgood

    bad = {"API_URL": "https://api-v2.example.com", "STRIPE_SECRET_KEY": "sk_live_new_2", "FLAG": "on", "BETA": "1"}
    stub.add_response("get_app", app(bad), {"appId": APP})
    current = kind.read(spec, ctx)
    change = kind.plan(spec, current, recorded)
    assert change is not None and change.action == "update-variables"
    assert change.notes == (
        "API_URL: changed since the release",
        "STRIPE_SECRET_KEY: changed since the release",
        "BETA: added since the release (removed by the rollback)",
        "Amplify reads them at the next build (redeploy_after)",
    )
    assert change.before == "4 variables (API_URL, BETA, FLAG, STRIPE_SECRET_KEY)"
    assert "sk_live" not in repr(change)

    stub.add_response("get_app", app(bad), {"appId": APP})
    stub.add_response("update_app", app(RELEASED), {"appId": APP, "environmentVariables": RELEASED})
    result = kind.apply(spec, ctx, recorded)
    assert result.changed and result.observed is not None and "sk_live" not in result.detail
    assert not kind.differences(spec, result.observed, recorded)  # verified from UpdateApp's answer

    stub.add_response("get_app", app(RELEASED), {"appId": APP})
    assert not kind.apply(spec, ctx, recorded).changed


def test_branch_named_variables_only(stub: Stubber, ctx: KindContext) -> None:
    kind = AmplifyEnv()
    spec = AmplifyEnvSpec(name="site-env", app_id=APP, branch=BRANCH, variables=["API_URL", "NEW_ONLY"])
    request = {"appId": APP, "branchName": BRANCH}
    stub.add_response("get_branch", branch(RELEASED), request)
    recorded = kind.record(spec, ctx)
    assert list(recorded["variables"]) == ["API_URL"]  # NEW_ONLY did not exist at the release

    bad = {**RELEASED, "API_URL": "https://api-v2.example.com", "NEW_ONLY": "x", "OTHER": "kept"}
    wanted = {**RELEASED, "OTHER": "kept"}
    stub.add_response("get_branch", branch(bad), request)
    stub.add_response("update_branch", branch(wanted), {**request, "environmentVariables": wanted})
    assert kind.apply(spec, ctx, recorded).changed

    # Only the named variable added since the release differs: it is removed, the others are kept.
    only_new = {**RELEASED, "NEW_ONLY": "x", "OTHER": "kept"}
    stub.add_response("get_branch", branch(only_new), request)
    current = kind.read(spec, ctx)
    assert kind.differences(spec, current, recorded) == ["NEW_ONLY: added since the release (removed by the rollback)"]
    stub.add_response("get_branch", branch(only_new), request)
    stub.add_response("update_branch", branch(wanted), {**request, "environmentVariables": wanted})
    assert kind.apply(spec, ctx, recorded).changed


def test_secret_without_vault_cannot_be_restored(stub: Stubber, ctx: KindContext) -> None:
    kind = AmplifyEnv()
    spec = AmplifyEnvSpec(name="site-env", app_id=APP)
    stub.add_response("get_app", app(RELEASED), {"appId": APP})
    recorded = kind.record(spec, ctx)
    assert kind.warnings(spec, recorded) == [
        "STRIPE_SECRET_KEY: secret, so the value is not recorded; without a `vault` a change to it cannot be "
        "rolled back"
    ]
    stub.add_response("get_app", app({**RELEASED, "STRIPE_SECRET_KEY": "sk_live_new_2"}), {"appId": APP})
    with pytest.raises(StepFailed, match="STRIPE_SECRET_KEY: a secret whose value was not recorded"):
        kind.apply(spec, ctx, recorded)  # no UpdateApp stubbed: nothing is written


def test_iam_names_app_or_branch_and_vault() -> None:
    from lastgood.kinds.base import IamScope

    spec = AmplifyEnvSpec(name="site-env", app_id=APP, branch=BRANCH, vault="/lg/prod")
    statements = AmplifyEnv().iam_statements(spec, IamScope(region="us-east-1", account="123456789012"))
    assert statements[0].actions == ("amplify:GetBranch", "amplify:UpdateBranch")
    assert statements[0].resources == (f"arn:aws:amplify:us-east-1:123456789012:apps/{APP}/branches/{BRANCH}",)
    assert statements[1].resources == ("arn:aws:ssm:us-east-1:123456789012:parameter/lg/prod/site-env/*",)


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"variables": []}, "list at least one variable"), ({"vault": "x"}, "starts with '/'"), ({"app": "x"}, "app_id")],
)
def test_bad_config_is_refused(extra: dict[str, Any], message: str) -> None:
    data = {"name": "e", "kind": "amplify-env"} | ({} if "app" in extra else {"app_id": APP}) | extra
    with pytest.raises(ValidationError, match=message):
        AmplifyEnvSpec.model_validate(data)


def job(job_id: str, status: str, commit: str = "aaaaaaaaaa") -> dict[str, Any]:
    return {
        "jobArn": f"arn:aws:amplify:us-east-1:123456789012:apps/{APP}/branches/{BRANCH}/jobs/{job_id}",
        "jobId": job_id,
        "commitId": commit,
        "commitMessage": "msg",
        "commitTime": WHEN,
        "startTime": WHEN,
        "status": status,
        "jobType": "WEB_HOOK",
    }


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_amplify_branch_rebuilds_after_the_variables_are_restored(stub: Stubber, ctx: KindContext) -> None:
    """The branch's redeploy action (`redeploy_after: [site-env]`): a RETRY of the last successful job, polled."""
    from lastgood.kinds.amplify_branch import AmplifyBranch, AmplifyBranchSpec
    from lastgood.kinds.redeploy import RedeployStep

    spec = AmplifyBranchSpec(name="site", app_id=APP, branch=BRANCH, redeploy_after=["site-env"])
    step = RedeployStep(AmplifyBranch())
    listing = {"appId": APP, "branchName": BRANCH, "maxResults": 50}
    start = {
        "appId": APP,
        "branchName": BRANCH,
        "jobId": "3",
        "jobType": "RETRY",
        "jobReason": "lastgood redeploy rb-3-site-env",
    }
    stub.add_response("list_jobs", {"jobSummaries": [job("3", "SUCCEED"), job("2", "SUCCEED")]}, listing)
    stub.add_response("start_job", {"jobSummary": job("4", "PENDING")}, start)
    assert step.apply(spec, ctx, {}).detail == "job 4 rebuilds commit aaaaaaaa (job 3)"
    stub.add_response("list_jobs", {"jobSummaries": [job("4", "RUNNING"), job("3", "SUCCEED")]}, listing)
    assert step.verify(spec, ctx, {}) == ["job 4 is RUNNING"]
    # A retry while the rebuild runs starts no second job (no StartJob stubbed).
    stub.add_response("list_jobs", {"jobSummaries": [job("4", "RUNNING"), job("3", "SUCCEED")]}, listing)
    assert step.apply(spec, ctx, {}).detail == "job 4 is already rebuilding"
    stub.add_response("list_jobs", {"jobSummaries": [job("4", "FAILED"), job("3", "SUCCEED")]}, listing)
    with pytest.raises(StepFailed, match="the rebuild, job 4, ended FAILED"):
        step.verify(spec, ctx, {})


def test_bad_component_in_the_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lastgood.cli.app import main

    path = tmp_path / "lastgood.yaml"
    path.write_text(
        "app: shop\nstate: sqlite:///state.db\nenvironments: {prod: {}}\n"
        "components:\n  - {name: c, kind: amplify-env, app_id: d1, vault: relative/path}\n"
    )
    code = main(["validate", "-f", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and "components[0].vault" in captured.out + captured.err
    assert not (tmp_path / "state.db").exists()
