"""Steps of the CI examples run as written, by bash / sh, on moto's server: GitHub's staging deploy and record
(the aws CLI, then `lastgood validate` and `lastgood release record`), prod's publish step (its version handed on
through GITHUB_OUTPUT), and both pipelines' "roll back on failure" scripts: they roll back a release that is
still live, and do nothing when lastgood has already rolled it back. Only `${{ ... }}` expressions are filled in.
The deploy and guard steps are not run here (5-minute steps, 10-15 minute watches): they parse against the CLI
(test_delivery_files.py), and the commands themselves are tested in tests/integration/test_deploy*.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from delivery_files import CI, load_yaml

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint

FUNCTION = "checkout-api-{env}"


@pytest.fixture
def checkout(aws: AwsClients) -> AwsClients:
    """The example runbook's app at version 1 in staging and prod: function, alias, parameter, secret."""
    role = shop._role(aws)
    for env in ("staging", "prod"):
        shop.create_function(aws, FUNCTION.format(env=env), role)
        aws.client("ssm").put_parameter(Name=f"/checkout/{env}/api/flags", Value="{}", Type="String")
        aws.client("secretsmanager").create_secret(Name=f"checkout/{env}/db", SecretString='{"password": "p1"}')
    return aws


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A checkout of the repository the pipelines run in: the runbook, a build, the configuration."""
    (tmp_path / "examples" / "ci").mkdir(parents=True)
    shutil.copy(CI / "lastgood.yaml", tmp_path / "examples" / "ci" / "lastgood.yaml")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "api.zip").write_bytes(shop.handler_zip("def main(event, context):\n    return 2\n"))
    for env in ("staging", "prod"):
        (tmp_path / "config" / env).mkdir(parents=True)
        (tmp_path / "config" / env / "flags.json").write_text(json.dumps({"env": env, "release": 2}))
    return tmp_path


@pytest.fixture
def pipeline_env(aws_env: LocalEndpoint, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The runner's environment (and this process's, for the checks made in-process): AWS on moto, the ledger."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env.url)
    monkeypatch.setenv("LASTGOOD_STATE", f"sqlite:///{workspace / 'ledger.db'}")
    monkeypatch.setenv("LASTGOOD_FILE", str(workspace / "examples" / "ci" / "lastgood.yaml"))
    env = dict(os.environ) | {"AWS_DEFAULT_REGION": "us-east-1", "GITHUB_OUTPUT": str(workspace / "outputs")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def cli_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    """A lastgood command in this process (faster than a process per check), its --output json."""
    capsys.readouterr()
    assert main([*args, "-o", "json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def github_step(job: str, name: str) -> str:
    workflow = load_yaml(CI / "github-actions.yml")
    (step,) = [s for s in workflow["jobs"][job]["steps"] if s.get("name") == name]
    return str(step["run"])


def expressions(script: str, values: dict[str, str]) -> str:
    """GitHub's ${{ ... }}, filled in as the runner would."""
    return re.sub(r"\$\{\{\s*([^}]*?)\s*\}\}", lambda m: values[m.group(1)], script)


def run(shell: str, script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """GitHub runs `bash -e {0}`; GitLab's python image runs the job's lines in one `sh`."""
    argv = ["bash", "-e", "-c", script] if shell == "bash" else ["sh", "-e", "-c", script]
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done


def alias_version(aws: AwsClients, env: str) -> str:
    return str(aws.client("lambda").get_alias(FunctionName=FUNCTION.format(env=env), Name="live")["FunctionVersion"])


def live_release(where: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    return dict(cli_json(["status", where], capsys)["live"])  # type: ignore[arg-type]


@pytest.mark.slow  # runs the workflow's shell steps: seconds
def test_github_staging_deploys_and_records(
    checkout: AwsClients, pipeline_env: dict[str, str], workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow_env = load_yaml(CI / "github-actions.yml")["env"]
    env = pipeline_env | {k: v for k, v in workflow_env.items() if "${{" not in v} | {"RELEASE": "abc123"}
    run("bash", github_step("staging", "Check the runbook"), env, workspace)
    run("bash", github_step("staging", "Deploy (configuration, then code, all at once)"), env, workspace)
    assert alias_version(checkout, "staging") == "2"
    record = github_step("staging", "Record the release (every component's live state, in the ledger)")
    run("bash", record, env, workspace)
    live = live_release("staging", capsys)
    assert live["label"] == "abc123" and live["recorded_by"] == "github-actions"
    flags = checkout.client("ssm").get_parameter(Name="/checkout/staging/api/flags")["Parameter"]["Value"]
    assert json.loads(flags) == {"env": "staging", "release": 2}

    run("bash", github_step("prod", "Publish the new version (no traffic yet)"), env, workspace)
    assert (workspace / "outputs").read_text() == "version=2\n"  # what the deploy step reads
    assert alias_version(checkout, "prod") == "1"


@pytest.mark.slow  # a Python process, server or browser of its own
@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_rollback_on_failure_rolls_back_a_live_release_once(
    ci: str, checkout: AwsClients, pipeline_env: dict[str, str], workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if ci == "github":
        variables = load_yaml(CI / "github-actions.yml")["env"]
        script = expressions(
            github_step("prod", "Roll back on failure (unless lastgood already did)"), {"github.run_id": "77"}
        )
        shell = "bash"
    else:
        pipeline = load_yaml(CI / "gitlab-ci.yml")
        variables = pipeline["variables"] | {"CI_PIPELINE_ID": "77"}
        script = "\n".join(pipeline["rollback-prod"]["script"])
        shell = "sh"
    env = pipeline_env | {k: v for k, v in variables.items() if "$" not in v}
    cli_json(["release", "record", "prod", "--version", "v1"], capsys)
    version = shop.publish_new_version(checkout, FUNCTION.format(env="prod"), "v2")
    shop.shift_alias(checkout, FUNCTION.format(env="prod"), version, None, 0)
    cli_json(["release", "record", "prod", "--version", "v2"], capsys)
    env["RELEASE"] = "v2"  # the release this pipeline deployed, now live, and a later step failed

    first = run(shell, script, env, workspace)
    assert alias_version(checkout, "prod") == "1", first.stdout + first.stderr
    status = cli_json(["status", "prod"], capsys)
    assert status["live"]["label"] == "v1"  # type: ignore[index]
    rollback = cli_json(["show", status["last_rollback"]["id"]], capsys)  # type: ignore[index]
    assert rollback["reason"] == "pipeline 77 failed after the deploy" and rollback["status"] == "succeeded"
    assert rollback["requested_by"] == variables["LASTGOOD_USER"]

    again = run(shell, script, env, workspace)  # a second failure report, or lastgood had rolled back already
    assert "is not live" in again.stdout and "nothing to do" in again.stdout
    assert alias_version(checkout, "prod") == "1"
    assert cli_json(["status", "prod"], capsys)["last_rollback"] == status["last_rollback"]
