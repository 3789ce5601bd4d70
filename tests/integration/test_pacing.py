"""Pacing: a throttling endpoint (AWS's token bucket, 429 beyond it) in front of moto's server does not fail a
rollback's steps, because every request waits for a token of its API's bucket first."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from lastgood.aws.clients import AwsClients
from lastgood.aws.pacing import DEFAULT_RATES, Pacer, rates_for
from lastgood.cli.app import main
from lastgood.config.loader import load_runbook
from lastgood.config.models import AwsSettings
from lastgood.errors import ConfigError
from lastgood.testing import shop
from lastgood.testing.endpoint import LocalEndpoint
from lastgood.testing.throttle import ThrottlingProxy

RATE = 20.0  # the proxy's quota and the file's rate for lambda
FUNCTIONS = 8


@pytest.fixture
def proxy(aws_env: LocalEndpoint) -> Iterator[ThrottlingProxy]:
    with ThrottlingProxy(aws_env.url, {"lambda": RATE}) as started:
        yield started


def clients(url: str, rate: float) -> AwsClients:
    return AwsClients(AwsSettings(region="us-east-1", endpoint_url=url, rate_limits={"lambda": rate}))


def burst(aws: AwsClients, names: list[str], calls: int) -> None:
    client = aws.client("lambda")
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: client.get_alias(FunctionName=names[i % len(names)], Name="live"), range(calls)))


def make_functions(aws: AwsClients, n: int) -> list[str]:
    role = shop._role(aws)
    names = [f"paced-{i}" for i in range(n)]
    for name in names:
        shop.create_function(aws, name, role)
        shop.publish_new_version(aws, name, "r2")
    return names


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_unpaced_calls_are_throttled_and_paced_ones_are_not(aws: AwsClients, proxy: ThrottlingProxy) -> None:
    names = make_functions(aws, 2)
    burst(clients(proxy.url, 0), names, 80)  # 0: not paced; botocore's retries absorb what they can
    assert proxy.throttled["lambda"] > 0, "the proxy let an unpaced burst through: it would prove nothing"
    proxy.reset_counts()
    paced = clients(proxy.url, RATE)
    started = time.monotonic()
    burst(paced, names, 60)
    elapsed = time.monotonic() - started
    # Paced at the quota: calls that queue in this busy process (moto and the proxy share it) may still arrive
    # together and meet a bucket that was full and wasted its refill; botocore retries those few.
    assert proxy.forwarded["lambda"] == 60 and proxy.throttled["lambda"] <= 6
    # The bucket starts empty and fills at RATE: 60 calls cannot be sent in much less than 60 / RATE seconds.
    assert elapsed >= 0.8 * 60 / RATE
    assert paced.pacer.waited > 0


@pytest.mark.slow  # about a second or more: moto resources, a server or a clock
def test_a_rollback_behind_a_throttling_endpoint_fails_no_step(
    aws: AwsClients, proxy: ThrottlingProxy, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = make_functions(aws, FUNCTIONS)
    runbook = {
        "app": "paced",
        "state": "sqlite:///state.db",
        "environments": {
            "prod": {
                "aws": {"region": "us-east-1", "endpoint_url": proxy.url, "rate_limits": {"lambda": RATE}},
                "protected": False,
            }
        },
        "components": [{"name": n, "kind": "lambda-alias", "function": n, "alias": "live"} for n in names],
    }
    file = tmp_path / "lastgood.yaml"
    file.write_text(yaml.safe_dump(runbook))
    assert main(["release", "record", "prod", "--version", "r1", "-f", str(file)]) == 0
    for name in names:
        shop.shift_alias(aws, name, "2", None, 0.0)
    assert main(["release", "record", "prod", "--version", "r2", "-f", str(file)]) == 0
    capsys.readouterr()
    proxy.reset_counts()
    assert main(["rollback", "prod", "--yes", "--parallel", "16", "-f", str(file), "-o", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "succeeded" and sorted(result["done"]) == sorted(names)
    assert not result.get("failed")
    assert proxy.forwarded["lambda"] >= 2 * FUNCTIONS and proxy.throttled["lambda"] <= proxy.forwarded["lambda"] // 10
    lam = aws.client("lambda")
    assert {lam.get_alias(FunctionName=n, Name="live")["FunctionVersion"] for n in names} == {"1"}


def test_a_call_takes_its_operations_bucket_else_its_services() -> None:
    pacer = Pacer({"lambda": 15, "lambda:GetFunction": 100, "ssm": 0})
    assert pacer.key_for("lambda", "UpdateAlias") == "lambda"
    assert pacer.key_for("lambda", "GetFunction") == "lambda:GetFunction"
    assert pacer.key_for("ssm", "GetParameter") is None  # 0: not paced
    assert pacer.key_for("ecs", "UpdateService") is None  # no rate: not paced


def test_defaults_apply_on_aws_endpoints_and_the_file_overrides_them() -> None:
    assert rates_for(None, {})["lambda"] == DEFAULT_RATES["lambda"] == 15.0
    assert rates_for("https://vpce-1.lambda.eu-west-1.vpce.amazonaws.com", {})["lambda"] == 15.0
    assert rates_for("http://127.0.0.1:5000", {}) == {}  # an emulator has no quota
    assert rates_for(None, {"lambda": 5, "ssm:PutParameter": 2}) == {
        **DEFAULT_RATES,
        "lambda": 5,
        "ssm:PutParameter": 2,
    }


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        ({"lambda": -1}, "environments.prod.aws.rate_limits"),
        ({"lambda:": 5}, "service:Operation"),
        ({"lambda": "fast"}, "environments.prod.aws.rate_limits.lambda"),
    ],
)
def test_bad_rates_are_named_with_their_path(tmp_path: Path, rates: dict[str, object], expected: str) -> None:
    file = tmp_path / "lastgood.yaml"
    file.write_text(
        yaml.safe_dump({"app": "a", "environments": {"prod": {"aws": {"rate_limits": rates}}}, "components": []})
    )
    with pytest.raises(ConfigError) as raised:
        load_runbook(file)
    assert raised.value.exit_code == 2
    assert any(expected in problem for problem in raised.value.problems), raised.value.problems
