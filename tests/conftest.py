"""Shared fixtures: a moto server over HTTP (as a user's boto3 talks to AWS) and a shop app on it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastgood.aws.clients import AwsClients
from lastgood.aws.overrides import AwsOverrides, set_overrides
from lastgood.config.models import AwsSettings
from lastgood.testing import shop
from lastgood.testing.endpoint import FAKE_CREDENTIALS, LocalEndpoint

pytest_plugins = ["pg_fixture", "canary_fixture", "server_fixture", "markers", "pytester"]


@pytest.fixture(autouse=True)
def _no_leftover_aws_flags() -> Iterator[None]:
    """`--endpoint-url` and the other global flags are process-wide (one command per process in real use): a test
    running the CLI in-process must not leave them to the next test's own AwsClients."""
    yield
    set_overrides(AwsOverrides())


@pytest.fixture(scope="session")
def endpoint() -> Iterator[LocalEndpoint]:
    server = LocalEndpoint().start()
    yield server
    server.stop()


@pytest.fixture
def aws_env(endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch) -> LocalEndpoint:
    endpoint.reset()
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("LASTGOOD_STATE", raising=False)
    monkeypatch.setenv("LASTGOOD_USER", "tester")
    return endpoint


@pytest.fixture
def aws(aws_env: LocalEndpoint) -> AwsClients:
    return AwsClients(AwsSettings(region="us-east-1", endpoint_url=aws_env.url))


@pytest.fixture
def shop_dir(aws_env: LocalEndpoint, aws: AwsClients, tmp_path: Path) -> Path:
    """A directory with the shop's lastgood.yaml; the shop exists in prod at release 1."""
    shop.create_shop(aws, "prod")
    state = os.environ.get("LASTGOOD_TEST_STATE") or "sqlite:///.lastgood/state.db"
    (tmp_path / "lastgood.yaml").write_text(shop.runbook_text(aws_env.url, state))
    return tmp_path
