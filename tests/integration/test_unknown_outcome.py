"""Writes whose outcome is unknown are not re-sent blindly: a dropping proxy between lastgood's boto3 and moto.

The proxy forwards a write to moto and then drops the connection without the answer (the write took effect,
the client cannot know), or drops it before forwarding. botocore must not re-send such a write; the executor
retries the kind's apply, which reads first. Issue 9, item 5: 20 rollbacks, no double PutParameter, no failed
secret stage move.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from dropping_proxy import Action, Call, DroppingProxy, seeded_decider
from lastgood.aws import clients
from lastgood.aws.clients import AwsClients
from lastgood.aws.errors import map_aws_errors
from lastgood.config.loader import load_runbook
from lastgood.config.models import AwsSettings
from lastgood.engine.executor import Executor, RetryPolicy
from lastgood.engine.planner import build_plan
from lastgood.engine.record import record_release
from lastgood.errors import TransientAwsError
from lastgood.ledger.db import open_ledger, resolve_url
from lastgood.runtime.context import EnvContext
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint

PARAMETERS = 12
SECRETS = 6
FUNCTIONS = 2
ROLLBACKS = 20
FAST = RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05, verify_interval=0.05)


@pytest.fixture
def proxy_to(aws_env: LocalEndpoint) -> Iterator[Any]:
    proxies: list[DroppingProxy] = []

    def start(decide: Any) -> DroppingProxy:
        proxies.append(DroppingProxy(aws_env.url, decide).start())
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.stop()


# -- the client alone -------------------------------------------------------------------------------------------


class Script:
    """Drop the first call of each named operation, at the given point; forward everything else."""

    def __init__(self, drops: dict[str, Action]) -> None:
        self.drops = dict(drops)

    def __call__(self, call: Call) -> Action:
        return self.drops.pop(call.operation, "forward")


def test_a_write_whose_answer_was_lost_is_not_resent(aws: AwsClients, proxy_to: Any) -> None:
    aws.client("ssm").put_parameter(Name="/t/p", Value="one", Type="String")
    proxy = proxy_to(Script({"PutParameter": "drop-after"}))
    through = AwsClients(AwsSettings(region="us-east-1", endpoint_url=proxy.url))

    with pytest.raises(TransientAwsError), map_aws_errors("ssm:PutParameter"):
        through.client("ssm").put_parameter(Name="/t/p", Value="two", Type="String", Overwrite=True)

    assert proxy.count("PutParameter") == 1
    history = aws.client("ssm").get_parameter_history(Name="/t/p")["Parameters"]
    assert [h["Value"] for h in history] == ["one", "two"]  # applied once, though the client never heard


def test_a_write_lost_before_aws_is_not_resent_either(aws: AwsClients, proxy_to: Any) -> None:
    # The client cannot tell this drop from the one above: both are a connection closed after sending.
    proxy = proxy_to(Script({"PutParameter": "drop-before"}))
    through = AwsClients(AwsSettings(region="us-east-1", endpoint_url=proxy.url))
    with pytest.raises(TransientAwsError), map_aws_errors("ssm:PutParameter"):
        through.client("ssm").put_parameter(Name="/t/q", Value="one", Type="String")
    assert proxy.count("PutParameter") == 1


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_read_is_retried_by_botocore(aws: AwsClients, proxy_to: Any) -> None:
    aws.client("ssm").put_parameter(Name="/t/p", Value="one", Type="String")
    aws.client("secretsmanager").create_secret(Name="t/s", SecretString="x")
    proxy = proxy_to(Script({"GetParameter": "drop-after", "DescribeSecret": "drop-before"}))
    through = AwsClients(AwsSettings(region="us-east-1", endpoint_url=proxy.url))

    assert through.client("ssm").get_parameter(Name="/t/p")["Parameter"]["Value"] == "one"
    assert through.client("secretsmanager").describe_secret(SecretId="t/s")["Name"] == "t/s"
    assert proxy.count("GetParameter") == 2 and proxy.count("GetParameter", "drop-after") == 1
    assert proxy.count("DescribeSecret") == 2


@dataclass
class _Http:
    status_code: int


@pytest.mark.parametrize(
    ("response", "error", "unknown"),
    [
        (None, ConnectionClosedError(endpoint_url="u"), True),
        (None, ReadTimeoutError(endpoint_url="u"), True),
        (None, EndpointConnectionError(endpoint_url="u"), False),  # the connection was never opened
        (None, ConnectTimeoutError(endpoint_url="u"), False),
        ((_Http(500), {"Error": {"Code": "InternalError"}}), None, True),
        ((_Http(503), {"Error": {"Code": "ServiceUnavailable"}}), None, True),
        ((_Http(503), {"Error": {"Code": "SlowDown"}}), None, False),  # throttled: refused, not applied
        ((_Http(400), {"Error": {"Code": "ThrottlingException"}}), None, False),
        ((_Http(400), {"Error": {"Code": "ValidationException"}}), None, False),
    ],
)
def test_which_failures_leave_the_outcome_unknown(response: Any, error: Exception | None, unknown: bool) -> None:
    assert clients.outcome_unknown(response, error) is unknown


# -- 20 rollbacks through the engine, 5-10% of writes dropped ---------------------------------------------------


def _runbook(endpoint: str, functions: list[str]) -> str:
    lines = [
        "app: flaky",
        "state: sqlite:///state.db",
        "environments:",
        "  prod:",
        f"    aws: {{region: us-east-1, endpoint_url: '{endpoint}'}}",
        "components:",
    ]
    lines += [f"  - {{name: p{i:02d}, kind: ssm-parameter, parameters: [/flaky/p{i:02d}]}}" for i in range(PARAMETERS)]
    lines += [f"  - {{name: s{i:02d}, kind: secret, secret: flaky/s{i:02d}}}" for i in range(SECRETS)]
    lines += [f"  - {{name: {f}, kind: lambda-alias, function: {f}, alias: live}}" for f in functions]
    return "\n".join(lines) + "\n"


def _create_app(aws: AwsClients) -> list[str]:
    for i in range(PARAMETERS):
        aws.client("ssm").put_parameter(Name=f"/flaky/p{i:02d}", Value="good", Type="String")
    for i in range(SECRETS):
        aws.client("secretsmanager").create_secret(Name=f"flaky/s{i:02d}", SecretString="good")
    role = shop._role(aws)
    functions = [f"flaky-fn{i}" for i in range(FUNCTIONS)]
    for name in functions:
        shop.create_function(aws, name, role)
    return functions


def _bad_release(aws: AwsClients, functions: list[str], label: str) -> None:
    for i in range(PARAMETERS):
        aws.client("ssm").put_parameter(Name=f"/flaky/p{i:02d}", Value=f"bad-{label}", Type="String", Overwrite=True)
    for i in range(SECRETS):
        _rotate(aws, f"flaky/s{i:02d}", f"bad-{label}")
    for name in functions:
        shop.shift_alias(aws, name, "1", shop.publish_new_version(aws, name, label), 1.0)


def _rotate(aws: AwsClients, secret: str, value: str) -> None:
    """A new version made AWSCURRENT as rotation does (moto's put_secret_value after a stage move would leave
    AWSCURRENT on two versions)."""
    client = aws.client("secretsmanager")
    (current,) = _current(aws, secret)
    new = client.put_secret_value(SecretId=secret, SecretString=value, VersionStages=["AWSPENDING"])["VersionId"]
    client.update_secret_version_stage(
        SecretId=secret, VersionStage="AWSCURRENT", MoveToVersionId=new, RemoveFromVersionId=current
    )


def _versions(aws: AwsClients) -> dict[str, int]:
    ssm = aws.client("ssm")
    return {
        f"/flaky/p{i:02d}": len(ssm.get_parameter_history(Name=f"/flaky/p{i:02d}")["Parameters"])
        for i in range(PARAMETERS)
    }


def _current(aws: AwsClients, secret: str) -> list[str]:
    stages = aws.client("secretsmanager").describe_secret(SecretId=secret)["VersionIdsToStages"]
    return [v for v, s in stages.items() if "AWSCURRENT" in s]


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_twenty_rollbacks_through_a_dropping_proxy(aws: AwsClients, proxy_to: Any, tmp_path: Path) -> None:
    functions = _create_app(aws)
    good_secrets = {f"flaky/s{i:02d}": _current(aws, f"flaky/s{i:02d}") for i in range(SECRETS)}
    decide = seeded_decider(
        seed=9,
        write_rates={"PutParameter": 0.1, "UpdateSecretVersionStage": 0.1},
        default_write_rate=0.06,
        read_rate=0.02,
    )
    proxy = proxy_to(decide)
    (tmp_path / "lastgood.yaml").write_text(_runbook(proxy.url, functions))
    runbook = load_runbook(tmp_path / "lastgood.yaml")
    ledger = open_ledger(resolve_url(runbook.state, runbook.base_dir))

    def context() -> EnvContext:  # one per rollback, as one CLI process per rollback would have
        return EnvContext(runbook, "prod", ledger, AwsClients(runbook.environment("prod").aws))

    record_release(context(), "good")
    failed: list[str] = []
    doubled: dict[int, list[str]] = {}
    wrong_secrets: dict[int, list[str]] = {}
    wrong_aliases: dict[int, list[str]] = {}
    for n in range(ROLLBACKS):
        _bad_release(aws, functions, f"bad{n}")
        record_release(context(), f"bad{n}")
        before = _versions(aws)
        ctx = context()
        executor = Executor(ctx, retry=FAST)
        result = executor.run(executor.create(build_plan(ctx), reason=f"rollback {n}"))
        if result.status != "succeeded":
            failed.append(f"{n}: {result.failed}")
        after = _versions(aws)
        doubled[n] = [name for name in before if after[name] - before[name] != 1]
        wrong_secrets[n] = [s for s, good in good_secrets.items() if _current(aws, s) != good]
        lam = aws.client("lambda")
        wrong_aliases[n] = [
            f for f in functions if lam.get_alias(FunctionName=f, Name="live")["FunctionVersion"] != "1"
        ]

    drops = {
        op: (proxy.count(op, "drop-after"), proxy.count(op, "drop-before"))
        for op in (
            "PutParameter",
            "UpdateSecretVersionStage",
            *(f"PUT /2015-03-31/functions/{f}/aliases/live" for f in functions),
        )
    }
    figures = (
        f"rollbacks failed: {len(failed)}/{ROLLBACKS} {failed}; "
        f"rollbacks with a parameter not written exactly once: {sum(1 for v in doubled.values() if v)}/{ROLLBACKS}; "
        f"rollbacks leaving a secret off its version: {sum(1 for v in wrong_secrets.values() if v)}/{ROLLBACKS}; "
        f"rollbacks leaving an alias off version 1: {sum(1 for v in wrong_aliases.values() if v)}/{ROLLBACKS}; "
        f"drops (after, before): {drops}; requests: {proxy.count()}"
    )
    print(figures)
    assert drops["PutParameter"][0] > 0 and drops["UpdateSecretVersionStage"][0] > 0, figures
    assert not failed, figures
    assert not any(doubled.values()), figures
    assert not any(wrong_secrets.values()), figures
    assert not any(wrong_aliases.values()), figures
    for i in range(PARAMETERS):
        value = aws.client("ssm").get_parameter(Name=f"/flaky/p{i:02d}")["Parameter"]["Value"]
        assert value == "good"
