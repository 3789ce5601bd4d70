"""`lastgood iam-policy`: least privilege, scoped to the file's resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lastgood.cli.app import main

RUNBOOK = """
app: shop
environments:
  prod: {aws: {region: eu-west-1}}
components:
  - {name: api, kind: lambda-alias, function: shop-api-{env}}
  - {name: cfg, kind: ssm-parameter, parameters: [/shop/{env}/api/, /shop/{env}/flag]}
  - {name: db, kind: secret, secret: shop/{env}/db}
triggers:
  - name: errors
    cloudwatch: {namespace: AWS/Lambda, metric: Errors}
    when: "> 5"
"""


def test_policy_lists_each_kinds_actions_on_its_resources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK)
    assert main(["iam-policy", "--account", "111122223333", "-f", str(tmp_path / "lastgood.yaml")]) == 0
    policy = json.loads(capsys.readouterr().out)
    by_service: dict[str, dict[str, Any]] = {}
    for statement in policy["Statement"]:  # a service may have several statements (other resources)
        merged = by_service.setdefault(statement["Action"][0].split(":")[0], {"Action": [], "Resource": []})
        merged["Action"] += statement["Action"]
        merged["Resource"] += (
            [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        )
    assert policy["Version"] == "2012-10-17"
    # The alias's reads and writes, its versions' configuration; InvokeFunction for the secret's rotation (resumed
    # after its rollback), on this account's functions since the rotation function is known only at run time.
    assert set(by_service["lambda"]["Action"]) == {
        "lambda:GetAlias",
        "lambda:UpdateAlias",
        "lambda:GetFunctionConfiguration",
        "lambda:InvokeFunction",
    }
    assert "arn:aws:lambda:eu-west-1:111122223333:function:shop-api-prod:live" in by_service["lambda"]["Resource"]
    ssm = by_service["ssm"]["Resource"]
    assert "arn:aws:ssm:eu-west-1:111122223333:parameter/shop/prod/api/*" in ssm
    assert "arn:aws:ssm:eu-west-1:111122223333:parameter/shop/prod/flag" in ssm
    assert set(by_service["secretsmanager"]["Resource"]) == {  # the stages' statement and the rotation's
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:shop/prod/db-*"
    }
    assert "secretsmanager:GetSecretValue" not in by_service["secretsmanager"]["Action"]  # values are never read
    assert by_service["cloudwatch"]["Action"] == ["cloudwatch:GetMetricData"]
    assert all(r != "*" for s in policy["Statement"] if s["Action"][0].startswith("lambda") for r in s["Resource"])


LOG_TRIGGERS = """
  - name: errors-in-logs
    log_events: {log_group: /aws/lambda/shop-api-{env}, pattern: ERROR}
    when: "> 20 per 5m"
  - name: timeouts-in-logs
    logs_insights: {log_groups: [/aws/lambda/shop-api-{env}], query: "stats count(*) as n", field: n}
    when: "> 1"
  - name: hook-failures
    codedeploy_hooks: {application: shop, deployment_group: shop-api-{env}}
    when: "> 0"
"""


def test_log_and_hook_triggers_add_the_calls_they_make(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "lastgood.yaml").write_text(RUNBOOK + LOG_TRIGGERS)
    assert main(["iam-policy", "--account", "111122223333", "-f", str(tmp_path / "lastgood.yaml")]) == 0
    actions = {a for s in json.loads(capsys.readouterr().out)["Statement"] for a in s["Action"]}
    assert {"logs:FilterLogEvents", "logs:StartQuery", "logs:GetQueryResults", "logs:StopQuery"} <= actions
    assert {"codedeploy:ListDeployments", "codedeploy:BatchGetDeploymentTargets"} <= actions
