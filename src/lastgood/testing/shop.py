"""The sample `shop` application: creates its AWS resources on any endpoint and deploys releases of it.

Used by `lastgood demo`, `lastgood sandbox`, the tests and the benchmarks, always against a local endpoint.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from lastgood.aws.clients import AwsClients

ROLE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}

RUNBOOK = """\
app: shop
state: {state}
environments:
  staging:
    aws: {{region: {region}, endpoint_url: "{endpoint}"}}
  prod:
    aws: {{region: {region}, endpoint_url: "{endpoint}"}}
    protected: true
    confirm_phrase: rollback-production
components:
  - name: api
    kind: lambda-alias
    function: shop-api-{{env}}
    alias: live
  - name: worker
    kind: lambda-alias
    function: shop-worker-{{env}}
    alias: live
    depends_on: [api-config]
  - name: api-config
    kind: ssm-parameter
    parameters: [/shop/{{env}}/api/]
  - name: db-credentials
    kind: secret
    secret: shop/{{env}}/db
triggers:
  - name: api-errors
    cloudwatch: {{namespace: AWS/Lambda, metric: Errors, stat: Sum, dimensions: {{FunctionName: shop-api-{{env}}}}}}
    per: {{namespace: AWS/Lambda, metric: Invocations, stat: Sum, dimensions: {{FunctionName: shop-api-{{env}}}}}}
    when: "> 5%"
    for: {for_}
    period: {period}
    severity: critical
    action: rollback
  - name: api-throttles
    cloudwatch: {{namespace: AWS/Lambda, metric: Throttles, stat: Sum, dimensions: {{FunctionName: shop-api-{{env}}}}}}
    when: "> 100"
    for: {for_}
    period: {period}
    severity: medium
    action: alert
"""


# The canary judge over Lambda's per-version metrics of whichever alias has a canary in flight. alpha 0.01 and a
# tolerated ratio of 1.5: an equally good canary is rolled back at most 1% of the time, a clearly worse one fast.
CANARY = """\
canary:
  alpha: 0.01
  tolerated_ratio: 1.5
  period: {period}
  warmup: {warmup}
  latency: []
  cloudwatch:
    requests: {{namespace: AWS/Lambda, metric: Invocations, dimensions: {{FunctionName: {{function}}, Resource: "{{function}}:{{alias}}", ExecutedVersion: {{version}}}}}}
    errors: {{namespace: AWS/Lambda, metric: Errors, dimensions: {{FunctionName: {{function}}, Resource: "{{function}}:{{alias}}", ExecutedVersion: {{version}}}}}}
"""  # noqa: E501


def runbook_text(endpoint: str, state: str, region: str = "us-east-1", period: str = "1m", for_: str = "5m") -> str:
    return RUNBOOK.format(endpoint=endpoint, state=state, region=region, period=period, for_=for_)


def canary_text(period: str = "1m", warmup: str = "2m") -> str:
    """The `canary:` block, to append to `runbook_text`."""
    return CANARY.format(period=period, warmup=warmup)


def handler_zip(body: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", body)
    return buffer.getvalue()


@dataclass(frozen=True)
class Shop:
    env: str
    functions: tuple[str, ...]
    parameter_path: str
    secret: str


def create_shop(aws: AwsClients, env: str = "prod", extra_functions: int = 0) -> Shop:
    """Release 1 of the shop: two functions at version 1 behind alias `live`, parameters and a secret."""
    role_arn = _role(aws)
    functions = [f"shop-api-{env}", f"shop-worker-{env}", *(f"shop-fn{i:03d}-{env}" for i in range(extra_functions))]
    for name in functions:
        create_function(aws, name, role_arn)
    ssm = aws.client("ssm")
    path = f"/shop/{env}/api"
    ssm.put_parameter(Name=f"{path}/timeout-ms", Value="3000", Type="String", Overwrite=True)
    ssm.put_parameter(Name=f"{path}/pricing-engine", Value="v1", Type="String", Overwrite=True)
    ssm.put_parameter(Name=f"{path}/signing-key", Value="demo-signing-key-1", Type="SecureString", Overwrite=True)
    secrets = aws.client("secretsmanager")
    secret = f"shop/{env}/db"
    secrets.create_secret(Name=secret, SecretString=json.dumps({"user": "shop", "password": "demo-password-1"}))
    return Shop(env=env, functions=tuple(functions), parameter_path=path + "/", secret=secret)


def _role(aws: AwsClients) -> str:
    iam = aws.client("iam")
    try:
        return str(iam.get_role(RoleName="shop-lambda")["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="shop-lambda", AssumeRolePolicyDocument=json.dumps(ROLE_POLICY))
        return str(role["Role"]["Arn"])


def create_function(aws: AwsClients, name: str, role_arn: str) -> None:
    client = aws.client("lambda")
    client.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn,
        Handler="handler.main",
        Code={"ZipFile": handler_zip("def main(event, context):\n    return {'statusCode': 200}\n")},
        Publish=True,
    )
    client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")


def publish_new_version(aws: AwsClients, name: str, label: str) -> str:
    client = aws.client("lambda")
    body = f"def main(event, context):\n    return {{'statusCode': 200, 'release': {label!r}}}\n"
    client.update_function_code(FunctionName=name, ZipFile=handler_zip(body))
    return str(client.publish_version(FunctionName=name, Description=label)["Version"])


def shift_alias(aws: AwsClients, name: str, stable: str, canary: str | None, weight: float) -> None:
    """Point `live` at `stable`, with `weight` of traffic on `canary` (weight 1.0 moves it fully)."""
    client = aws.client("lambda")
    routing: dict[str, Any] = {"AdditionalVersionWeights": {}}
    version = stable
    if canary is not None and weight >= 1.0:
        version = canary
    elif canary is not None and weight > 0:
        routing = {"AdditionalVersionWeights": {canary: weight}}
    client.update_alias(FunctionName=name, Name="live", FunctionVersion=version, RoutingConfig=routing)


def deploy_config_change(aws: AwsClients, shop: Shop, label: str) -> None:
    """The rest of a release: a changed parameter and a rotated secret."""
    aws.client("ssm").put_parameter(
        Name=f"{shop.parameter_path}pricing-engine", Value=f"{label}-experimental", Type="String", Overwrite=True
    )
    aws.client("secretsmanager").put_secret_value(
        SecretId=shop.secret, SecretString=json.dumps({"user": "shop", "password": f"rotated-for-{label}"})
    )
