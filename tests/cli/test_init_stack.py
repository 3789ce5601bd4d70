"""`lastgood init --from-stack`: a starter runbook from a CloudFormation stack on moto's server over HTTP.

The stack (init_stack.yaml) holds a table with its pointer parameter, a parameter, a bucket, a secret, three
functions (one alias in the template, one made outside the stack, one without any), a state machine with an
alias made outside the stack, and a REST API with a stage; moto's CloudFormation creates neither Lambda aliases
nor secrets, so the test makes the secret by hand and init reads the template's alias from the template.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.cli.app import main
from lastgood.config.loader import load_runbook, parse_runbook
from lastgood.domain.ordering import waits_for
from lastgood.testing.endpoint import LocalEndpoint

TEMPLATE = Path(__file__).with_name("init_stack.yaml")
CODE = {"pricing", "db-secret", "api-live", "worker-function-live", "checkout-live", "shop-api-prod"}
DATA = {"orders-table", "assets"}


@pytest.fixture
def stack(aws: AwsClients) -> str:
    aws.client("cloudformation").create_stack(
        StackName="shop-prod", TemplateBody=TEMPLATE.read_text(), Capabilities=["CAPABILITY_NAMED_IAM"]
    )
    aws.client("secretsmanager").create_secret(Name="shop/prod/db", SecretString="s3cr3t")
    functions = aws.client("lambda")
    version = functions.publish_version(FunctionName="shop-prod-worker")["Version"]
    functions.create_alias(FunctionName="shop-prod-worker", Name="live", FunctionVersion=version)
    sfn = aws.client("stepfunctions")
    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
    published = sfn.update_state_machine(stateMachineArn=machine, publish=True)["stateMachineVersionArn"]
    sfn.create_state_machine_alias(
        name="live", routingConfiguration=[{"stateMachineVersionArn": published, "weight": 100}]
    )
    return "shop-prod"


def before(name: str, order: dict[str, list[str]]) -> set[str]:
    """Every step that finishes before `name` starts (waits_for names the direct ones)."""
    found: set[str] = set()
    todo = list(order[name])
    while todo:
        step = todo.pop()
        if step not in found:
            found.add(step)
            todo += order[step]
    return found


def init(endpoint: LocalEndpoint, *args: str) -> int:
    return main(["init", "--region", "us-east-1", "--endpoint-url", endpoint.url, *args])


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_the_starter_names_the_stacks_components_in_order(
    aws_env: LocalEndpoint, stack: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lastgood.yaml"
    assert init(aws_env, "--from-stack", stack, "--out", str(out)) == 0
    assert "wrote" in capsys.readouterr().err
    runbook = load_runbook(out)
    specs = {c.name: c for c in runbook.components}
    assert set(specs) == CODE | DATA
    assert runbook.app == "shop-prod" and runbook.environments["prod"].aws.region == "us-east-1"
    assert specs["api-live"].model_dump(include={"kind", "function", "alias"}) == {
        "kind": "lambda-alias",
        "function": "shop-prod-api",
        "alias": "live",
    }
    assert specs["worker-function-live"].model_dump(include={"function", "alias"}) == {
        "function": "shop-prod-worker",
        "alias": "live",
    }
    assert specs["checkout-live"].alias_arn.endswith(":stateMachine:shop-prod-checkout:live")
    assert specs["shop-api-prod"].stage == "prod" and specs["shop-api-prod"].rest_api_id
    assert specs["db-secret"].secret == "shop/prod/db"
    assert specs["pricing"].parameters == ["/shop/prod/pricing"]
    # The table's pointer is the parameter that holds its name; that parameter is no component of its own.
    assert specs["orders-table"].pointer.ssm_parameter == "/shop/prod/orders-table"
    assert specs["assets"].bucket == "shop-prod-assets" and specs["assets"].prefix == ""

    # From the template's references: the function reads the pricing parameter and (through the pointer
    # parameter) the table; the worker reads the secret; the API and the state machine call the api function.
    assert {"pricing", "orders-table", "assets"} <= set(specs["api-live"].depends_on)
    assert specs["worker-function-live"].depends_on[0] == "db-secret"
    assert specs["shop-api-prod"].depends_on == ["api-live"]
    assert specs["checkout-live"].depends_on == ["api-live"]
    # The data last: no data component waits for nothing but data, every code component is rolled back first.
    order = waits_for({n: s.depends_on for n, s in specs.items()}, set(specs))
    for data in DATA:
        assert before(data, order) >= CODE, data
        assert not set(specs[data].depends_on) & CODE
    assert [c.name for c in runbook.components][-2:] == ["orders-table", "assets"]


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_the_starter_comments_where_a_choice_is_needed(aws_env: LocalEndpoint, stack: str, tmp_path: Path) -> None:
    out = tmp_path / "lastgood.yaml"
    assert init(aws_env, "--from-stack", stack, "--out", str(out)) == 0
    text = out.read_text()
    # A function without an alias is written commented out, with what to do.
    assert "# CHOOSE: shop-prod-report has no alias" in text
    assert "  # - name: report-function\n  #   kind: lambda-alias\n" in text
    assert "# CHOOSE: or roll the whole stack back" in text and "kind: cloudformation-stack, stack: shop-prod" in text
    assert "# CHOOSE: the prefix the releases change" in text
    assert "#   Role (AWS::IAM::Role)" in text  # what no kind rolls back is named, not dropped
    assert "could not be read" not in text
    assert "orders-table: ApiFunction refers to OrdersTable (through TableName) in the template" in text
    assert "s3cr3t" not in text


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_the_starter_validates_without_warnings(
    aws_env: LocalEndpoint, stack: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lastgood.yaml"
    assert init(aws_env, "--from-stack", stack, "--out", str(out)) == 0
    capsys.readouterr()
    assert main(["validate", "-f", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["validate", "-f", str(out), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_stdout_by_default_and_no_overwrite_without_force(
    aws_env: LocalEndpoint, stack: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init(aws_env, "--from-stack", stack, "--app", "shop", "--env", "staging") == 0
    printed = capsys.readouterr().out
    runbook = parse_runbook(printed)
    assert runbook.app == "shop" and set(runbook.environments) == {"staging"}

    out = tmp_path / "lastgood.yaml"
    out.write_text("app: mine\n")
    assert init(aws_env, "--from-stack", stack, "--out", str(out)) == 3
    assert "exists" in capsys.readouterr().err and out.read_text() == "app: mine\n"
    assert init(aws_env, "--from-stack", stack, "--out", str(out), "--force") == 0
    forced = load_runbook(out)
    assert forced.app == "shop-prod" and set(forced.environments) == {"prod"}


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_bad_input_is_exit_2_and_writes_nothing(
    aws_env: LocalEndpoint, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "lastgood.yaml"
    assert init(aws_env, "--from-stack", "no-such-stack", "--out", str(out)) == 2
    assert "no-such-stack" in capsys.readouterr().err and not out.exists()
    assert init(aws_env, "--out", str(out)) == 2
    assert "--from-stack NAME or --from-tags KEY=VALUE" in capsys.readouterr().err
    assert init(aws_env, "--from-stack", "a", "--from-tags", "app=shop") == 2
    assert init(aws_env, "--from-tags", "app") == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert init(aws_env, "--from-stack", "x", "--env", "no such env") == 2
    assert not out.exists()


@pytest.mark.slow  # seconds on a 2-core machine (moto, statistics or a clock)
def test_a_json_template_reads_the_same(aws: AwsClients, aws_env: LocalEndpoint, tmp_path: Path) -> None:
    """boto3 hands a JSON template back decoded (a dict), a YAML one as text: both give the same components."""
    template = {
        "Resources": {
            "Orders": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": {"Fn::Sub": "${AWS::StackName}-orders"},
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
                    "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                },
            },
            "Pointer": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/json/orders-table", "Type": "String", "Value": {"Ref": "Orders"}},
            },
        }
    }
    aws.client("cloudformation").create_stack(StackName="json-stack", TemplateBody=json.dumps(template))
    out = tmp_path / "lastgood.yaml"
    assert init(aws_env, "--from-stack", "json-stack", "--out", str(out)) == 0
    (table,) = load_runbook(out).components
    assert (table.kind, table.table, table.pointer.ssm_parameter) == (
        "dynamodb-table",
        "json-stack-orders",
        "/json/orders-table",
    )
    assert "CHOOSE: point-in-time recovery is off in the template" in out.read_text()
