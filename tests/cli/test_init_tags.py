"""`lastgood init --from-tags`: a starter runbook from the resources with a tag, on moto's server over HTTP
(its Resource Groups Tagging API answers for Lambda, SSM, Secrets Manager, S3 and Step Functions; it does not
list DynamoDB tables or API Gateway APIs, whose ARNs are mapped in test_init_drafts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.config.loader import load_runbook
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint

TAGS = {"app": "shop"}


@pytest.fixture
def tagged(aws: AwsClients) -> None:
    role = shop._role(aws)
    functions = aws.client("lambda")
    for name in ("shop-api", "shop-cron", "other-api"):
        shop.create_function(aws, name, role)
    functions.tag_resource(Resource=arn(functions, "shop-api"), Tags=TAGS)
    functions.tag_resource(Resource=arn(functions, "shop-cron"), Tags=TAGS)
    functions.tag_resource(Resource=arn(functions, "other-api"), Tags={"app": "other"})
    functions.delete_alias(FunctionName="shop-cron", Name="live")  # the shop's functions come with one
    aws.client("ssm").put_parameter(Name="/shop/prod/pricing", Value="v4", Type="String", Tags=tag_list())
    aws.client("secretsmanager").create_secret(Name="shop/prod/db", SecretString="s3cr3t", Tags=tag_list())
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="shop-prod-assets")
    s3.put_bucket_tagging(Bucket="shop-prod-assets", Tagging={"TagSet": tag_list()})
    sfn = aws.client("stepfunctions")
    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    machine = sfn.create_state_machine(
        name="shop-checkout", definition=definition, roleArn=role, publish=True, tags=[{"key": "app", "value": "shop"}]
    )
    routing = [{"stateMachineVersionArn": machine["stateMachineVersionArn"], "weight": 100}]
    sfn.create_state_machine_alias(name="live", routingConfiguration=routing)


def arn(functions: object, name: str) -> str:
    return str(functions.get_function(FunctionName=name)["Configuration"]["FunctionArn"])  # type: ignore[attr-defined]


def tag_list() -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in TAGS.items()]


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_the_tagged_resources_become_components_data_last(
    aws_env: LocalEndpoint, tagged: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lastgood.yaml"
    args = [
        "init",
        "--from-tags",
        "app=shop",
        "--out",
        str(out),
        "--region",
        "us-east-1",
        "--endpoint-url",
        aws_env.url,
    ]
    assert main(args) == 0
    runbook = load_runbook(out)
    specs = {c.name: c for c in runbook.components}
    assert runbook.app == "shop"
    assert {name: spec.kind for name, spec in specs.items()} == {
        "shop-api-live": "lambda-alias",
        "shop-prod-pricing": "ssm-parameter",
        "shop-prod-db": "secret",
        "shop-checkout-live": "stepfunctions-alias",
        "shop-prod-assets": "s3-prefix",
    }
    assert specs["shop-prod-pricing"].parameters == ["/shop/prod/pricing"]
    assert specs["shop-prod-db"].secret.startswith("arn:aws:secretsmanager:us-east-1:")
    assert specs["shop-checkout-live"].alias_arn.endswith(":stateMachine:shop-checkout:live")
    # No references to follow from tags: the data last is the one order the starter sets.
    for name in ("shop-api-live", "shop-prod-pricing", "shop-prod-db", "shop-checkout-live"):
        assert specs[name].depends_on == ["shop-prod-assets"], name
    text = out.read_text()
    assert "# CHOOSE: shop-cron has no alias" in text and "#   function: shop-cron" in text
    assert "other-api" not in text and "s3cr3t" not in text
    capsys.readouterr()
    assert main(["validate", "-f", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.slow  # about a second: moto resources or a server in a thread
def test_no_tagged_resources_is_a_file_with_no_components(
    aws_env: LocalEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lastgood.yaml"
    args = [
        "init",
        "--from-tags",
        "app=none",
        "--out",
        str(out),
        "--region",
        "us-east-1",
        "--endpoint-url",
        aws_env.url,
    ]
    assert main(args) == 0
    assert load_runbook(out).components == []
    assert "wrote" in capsys.readouterr().err
