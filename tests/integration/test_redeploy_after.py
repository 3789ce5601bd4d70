"""redeploy_after on moto's server, through the CLI: CIRA's API stack redeployed after the database endpoint's
secret moves back, a command component redeployed by its redeploy_command, the plan naming both redeploys and
ordering them after their dependency; bad config exits 2 and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.testing.endpoint import LocalEndpoint

pytestmark = [pytest.mark.aws, pytest.mark.slow]

SECRET = "cira/prod/db"
STACK = "cira-api-prod"
TEMPLATE = json.dumps(
    {
        "Parameters": {"Stage": {"Type": "String", "Default": "prod"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Ref": "Stage"}}}},
    }
)


def runbook(tmp_path: Path, endpoint: str, api_extra: str = "redeploy_after: [db-endpoint]") -> Path:
    marker = tmp_path / "worker-redeploys.txt"
    path = tmp_path / "lastgood.yaml"
    path.write_text(
        f"""
app: cira
state: sqlite:///{tmp_path / "state.db"}
environments:
  prod: {{aws: {{region: us-east-1, endpoint_url: "{endpoint}"}}}}
components:
  - name: db-endpoint
    kind: secret
    secret: {SECRET}
  - name: api
    kind: cloudformation-stack
    stack: {STACK}
    {api_extra}
  - name: worker
    kind: command
    record: echo w1
    rollback: "true"
    redeploy_after: [db-endpoint]
    redeploy_command: echo "$LASTGOOD_ENV $LASTGOOD_STEP" >> {marker}
"""
    )
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any]:
    code = main([*args, "-o", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_api_stack_and_worker_redeploy_after_the_secret_moves_back(
    tmp_path: Path, aws_env: LocalEndpoint, aws: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    secrets = aws.client("secretsmanager")
    secrets.create_secret(Name=SECRET, SecretString=json.dumps({"host": "db-1.example.com"}))
    aws.client("cloudformation").create_stack(StackName=STACK, TemplateBody=TEMPLATE)
    path = runbook(tmp_path, aws_env.url)
    assert cli(capsys, "release", "record", "prod", "--version", "r1", "-f", str(path))[0] == 0
    secrets.put_secret_value(SecretId=SECRET, SecretString=json.dumps({"host": "db-restored.example.com"}))
    assert cli(capsys, "release", "record", "prod", "--version", "r2", "-f", str(path))[0] == 0

    code, plan = cli(capsys, "plan", "prod", "--to", "r1", "-f", str(path))
    assert code == 0
    steps = {s["component"]: s for s in plan["steps"]}
    assert list(steps) == ["db-endpoint", "api:redeploy", "worker:redeploy"]
    api = steps["api:redeploy"]
    assert api["action"] == "redeploy" and api["kind"] == "cloudformation-stack"
    assert api["to"] == "UpdateStack with the same template and parameters"
    assert api["waits_for"] == ["db-endpoint"] and api["notes"] == ["picks up the rollback of db-endpoint"]
    assert steps["worker:redeploy"]["to"] == "runs redeploy_command"

    code, result = cli(capsys, "rollback", "prod", "--to", "r1", "--yes", "-f", str(path))
    assert code == 0 and result["status"] == "succeeded", result
    marker = (tmp_path / "worker-redeploys.txt").read_text().split()
    assert marker[0] == "prod" and marker[1].endswith("-worker:redeploy")
    code, shown = cli(capsys, "show", result["id"], "-f", str(path))
    ran = {s["component"]: s for s in shown["steps"]}
    assert ran["worker:redeploy"]["status"] == "succeeded"
    # moto, like CloudFormation, finds nothing to do for the same template and parameter values: the step says
    # so and counts as done (the started-and-polled path: tests/integration/test_kind_cloudformation_redeploy.py).
    assert ran["api:redeploy"]["status"] == "unchanged"
    assert "no updates are to be performed" in ran["api:redeploy"]["detail"]

    # Everything is at r1 now: nothing to change, so nothing to redeploy.
    code, plan = cli(capsys, "plan", "prod", "--to", "r1", "-f", str(path))
    assert plan["steps"] == []


@pytest.mark.parametrize(
    ("api_extra", "message"),
    [
        ("redeploy_after: [db-endpiont]", "components[1].redeploy_after[0]: no component named 'db-endpiont'"),
        ("redeploy_after: [api]", "components[1].redeploy_after[0]: a component cannot redeploy after itself"),
    ],
)
def test_bad_redeploy_config_exits_2(
    tmp_path: Path, aws_env: LocalEndpoint, capsys: pytest.CaptureFixture[str], api_extra: str, message: str
) -> None:
    path = runbook(tmp_path, aws_env.url, api_extra)
    code = main(["validate", "-f", str(path)])
    captured = capsys.readouterr()
    assert code == 2 and message in captured.out + captured.err


def test_kind_without_redeploy_action_needs_a_command(
    tmp_path: Path, aws_env: LocalEndpoint, capsys: pytest.CaptureFixture[str]
) -> None:
    path = runbook(tmp_path, aws_env.url)
    path.write_text(
        path.read_text().replace("    secret: " + SECRET, f"    secret: {SECRET}\n    redeploy_after: [api]")
    )
    code = main(["validate", "-f", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert "components[0].redeploy_after: a secret has no redeploy action of its own; add redeploy_command" in (
        captured.out + captured.err
    )
