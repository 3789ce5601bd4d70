"""How many AWS requests a rollback sends per component, plan included, counted on the wire against moto's
server: a Lambda alias 2 (GetAlias, UpdateAlias), an SSM parameter 2 (GetParameters asking for the live and the
recorded version at once, PutParameter), a secret 3 (DescribeSecret, UpdateSecretVersionStage, DescribeSecret to
verify: the write answers no state)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.config.loader import parse_runbook
from lastgood.config.models import AwsSettings
from lastgood.domain.actor import Actor
from lastgood.engine import executor as executor_module
from lastgood.engine.executor import Executor
from lastgood.engine.planner import build_plan
from lastgood.engine.record import record_release
from lastgood.ledger import store
from lastgood.ledger.db import open_ledger
from lastgood.runtime.context import EnvContext
from lastgood.testing import shop
from lastgood.testing.calls import CallCounter
from lastgood.testing.endpoint import LocalEndpoint

N = 3
FUNCTIONS = [f"calls-fn{i}" for i in range(N)]
PARAMETERS = [f"/calls/param{i}" for i in range(N)]
SECRETS = [f"calls/secret{i}" for i in range(N)]
SECURE = "/calls/secure"


def runbook(url: str) -> str:
    lines = ["app: calls", "environments:", f"  prod: {{aws: {{region: us-east-1, endpoint_url: '{url}'}}}}"]
    lines.append("components:")
    lines += [f"  - {{name: fn{i}, kind: lambda-alias, function: {name}}}" for i, name in enumerate(FUNCTIONS)]
    lines += [f"  - {{name: param{i}, kind: ssm-parameter, parameters: ['{n}']}}" for i, n in enumerate(PARAMETERS)]
    lines += [f"  - {{name: secret{i}, kind: secret, secret: {name}}}" for i, name in enumerate(SECRETS)]
    lines.append(f"  - {{name: secure, kind: ssm-parameter, parameters: ['{SECURE}']}}")
    return "\n".join(lines) + "\n"


def release(aws: AwsClients, label: str) -> None:
    ssm, secrets = aws.client("ssm"), aws.client("secretsmanager")
    for name in PARAMETERS:
        ssm.put_parameter(Name=name, Value=f"value-{label}", Type="String", Overwrite=True)
    ssm.put_parameter(Name=SECURE, Value=f"secure-{label}", Type="SecureString", Overwrite=True)
    for name in SECRETS:
        secrets.put_secret_value(SecretId=name, SecretString=json.dumps({"password": f"pw-{label}"}))


@pytest.fixture
def ctx(aws_env: LocalEndpoint, tmp_path: Path) -> Iterator[EnvContext]:
    aws = AwsClients(AwsSettings(region="us-east-1", endpoint_url=aws_env.url))
    role = shop._role(aws)
    for name in FUNCTIONS:
        shop.create_function(aws, name, role)
    for name in SECRETS:
        aws.client("secretsmanager").create_secret(Name=name, SecretString="{}")
    release(aws, "r1")
    ledger = open_ledger(f"sqlite:///{tmp_path / 'state.db'}")
    context = EnvContext(parse_runbook(runbook(aws_env.url)), "prod", ledger, aws, actor=Actor(name="alice"))
    record_release(context, "r1")
    for name in FUNCTIONS:
        shop.shift_alias(aws, name, shop.publish_new_version(aws, name, "r2"), None, 0.0)
    release(aws, "r2")
    record_release(context, "r2")
    yield context
    ledger.close()


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_calls_per_component_of_a_whole_rollback(ctx: EnvContext) -> None:
    counter = CallCounter(ctx.aws, ("lambda", "ssm", "secretsmanager"))
    executor = Executor(ctx)
    plan = build_plan(ctx)
    assert len(plan.steps) == 3 * N + 1
    result = executor.run(executor.create(plan))
    assert result.status == "succeeded", result.summary()

    assert counter.of("lambda") == {"GetAlias": N, "UpdateAlias": N}
    # The named String parameters: 2 each. The SecureString one reads its history too (it names its KMS key).
    assert counter.of("ssm") == {"GetParameterHistory": 1, "GetParameters": N + 1, "PutParameter": N + 1}
    assert counter.of("secretsmanager") == {"DescribeSecret": 2 * N, "UpdateSecretVersionStage": N}

    # ... and the rollback did what it says: every component is back on r1.
    lam, ssm = ctx.aws.client("lambda"), ctx.aws.client("ssm")
    assert {lam.get_alias(FunctionName=n, Name="live")["FunctionVersion"] for n in FUNCTIONS} == {"1"}
    assert {ssm.get_parameter(Name=n)["Parameter"]["Value"] for n in PARAMETERS} == {"value-r1"}
    assert ssm.get_parameter(Name=SECURE, WithDecryption=True)["Parameter"]["Value"] == "secure-r1"
    secrets = ctx.aws.client("secretsmanager")
    with ctx.session() as session:
        steps = store.get_rollback(session, result.id).steps
        assert {s.status for s in steps} == {"succeeded"} and all(s.attempts == 1 for s in steps)
        r1 = {c.component: c.state for c in store.get_release(session, "calls", "prod", "r1").components}
    for i, name in enumerate(SECRETS):  # moto's GetSecretValue does not follow the label: ask for the label
        stages = secrets.describe_secret(SecretId=name)["VersionIdsToStages"]
        assert [v for v, labels in stages.items() if "AWSCURRENT" in labels] == [r1[f"secret{i}"]["version_id"]]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_resumed_step_reads_again_before_it_writes(ctx: EnvContext, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the plan's reads (a resume in another process, or reads gone stale), apply reads the live state
    first and writes nothing for a component already back on its target."""
    monkeypatch.setattr(executor_module, "PLAN_READS_FRESH_SECONDS", -1.0)  # every plan read is stale
    executor = Executor(ctx)
    rollback_id = executor.create(build_plan(ctx))
    ssm = ctx.aws.client("ssm")
    ssm.put_parameter(Name=PARAMETERS[0], Value="value-r1", Type="String", Overwrite=True)  # as if it had run
    counter = CallCounter(ctx.aws, ("ssm",))
    result = Executor(ctx).run(rollback_id)
    assert result.status == "succeeded", result.summary()
    with ctx.session() as session:
        steps = {s.component: s.status for s in store.get_rollback(session, rollback_id).steps}
    assert steps["param0"] == "unchanged" and steps["param1"] == "succeeded"
    puts = counter.of("ssm")["PutParameter"]
    assert puts == N  # param1, param2 and secure; not param0
    assert {ssm.get_parameter(Name=n)["Parameter"]["Value"] for n in PARAMETERS} == {"value-r1"}
