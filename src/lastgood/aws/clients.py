"""Clients built the way the AWS CLI builds them: profile, region, endpoint and AWS_* variables honoured."""

from __future__ import annotations

import os
import threading
from typing import Any

import boto3
from botocore.config import Config

from lastgood.aws.errors import map_aws_errors
from lastgood.config.models import AwsSettings
from lastgood.errors import CredentialsError


class AwsClients:
    """A cache of thread-safe boto3 clients for one environment.

    boto3 sessions are not thread-safe but clients are, so clients are made once under a lock and shared
    by the engine's worker threads.
    """

    def __init__(self, settings: AwsSettings | None = None, max_pool_connections: int = 32) -> None:
        self.settings = settings or AwsSettings()
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._session: boto3.Session | None = None
        self._config = Config(
            retries={"mode": "standard", "max_attempts": 8},
            max_pool_connections=max_pool_connections,
            connect_timeout=5,
            read_timeout=30,
        )

    @property
    def region(self) -> str:
        region = self.settings.region or self._get_session().region_name
        if not region:
            raise CredentialsError(
                "no AWS region: set environments.<env>.aws.region in the file, AWS_REGION, or a profile's region"
            )
        return region

    @property
    def endpoint_url(self) -> str | None:
        return self.settings.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")

    def _get_session(self) -> boto3.Session:
        if self._session is None:
            with map_aws_errors("AWS profile"):
                self._session = boto3.Session(profile_name=self.settings.profile, region_name=self.settings.region)
        return self._session

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                kwargs: dict[str, Any] = {"region_name": self.region, "config": self._config}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                self._clients[service] = self._get_session().client(service, **kwargs)  # type: ignore[call-overload]
            return self._clients[service]

    def account_id(self) -> str:
        with map_aws_errors("sts:GetCallerIdentity"):
            return str(self.client("sts").get_caller_identity()["Account"])
