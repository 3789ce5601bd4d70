"""Clients built the way the AWS CLI builds them: profile, region, endpoint and AWS_* variables honoured.

Retries: botocore's standard mode, except that a write whose outcome is unknown is never re-sent blindly.
A read timeout, a connection closed after the request went out, or a 5xx answer may mean AWS applied the
write; re-sending it would write twice (a second `PutParameter` version) or fail (`UpdateSecretVersionStage`
removing a stage the first attempt already moved). Such a write fails fast as `TransientAwsError`, and the
executor retries the kind's whole `apply`, which reads the live state first and does nothing if already there.
botocore still retries reads, throttled writes (AWS refused them) and writes that never reached AWS
(the connection could not be opened).

Pacing: every request first takes a token from its API's bucket (aws/pacing.py), at AWS's published rates
unless the file's `aws.rate_limits` says otherwise.
"""

from __future__ import annotations

import os
import threading
from functools import partial
from typing import TYPE_CHECKING, Any

from lastgood.aws.errors import is_throttling, map_aws_errors
from lastgood.aws.overrides import apply_overrides
from lastgood.aws.pacing import Pacer, rates_for
from lastgood.config.models import AwsSettings
from lastgood.errors import CredentialsError

if TYPE_CHECKING:  # boto3 is imported when the first client is made: commands that call no AWS API skip its cost
    import boto3

READ_PREFIXES = ("Get", "List", "Describe", "Head", "BatchGet", "Query", "Scan", "Search", "Lookup", "Filter")
"""Operations that only read: botocore may re-send them whatever happened to the first attempt."""
CONNECT_TIMEOUT = 3.0
"""Seconds to open a connection: AWS's endpoints answer in well under a second; a dead one should not hold a
person at a terminal (botocore's default is 60 s)."""
CONNECT_ATTEMPTS = 3
"""Attempts at a request whose connection could not be opened. Throttling and 5xx keep the standard 8: those are
AWS answering; an endpoint that does not answer three times in a row (a few seconds with backoff) is down."""


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


def outcome_unknown(response: Any, caught_exception: Exception | None) -> bool:
    """Whether AWS may have applied a request that failed this way (the arguments of botocore's needs-retry)."""
    if caught_exception is not None:
        from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

        return not isinstance(caught_exception, EndpointConnectionError | ConnectTimeoutError)  # never sent
    if response is None:
        return True
    http, parsed = response
    code = (parsed or {}).get("Error", {}).get("Code", "")
    return int(http.status_code) >= 500 and not is_throttling(code)


def _needs_retry(botocore_retry: Any, **kwargs: Any) -> Any:
    """botocore's standard decision, except for writes whose outcome is unknown (never re-sent) and for connections
    that could not be opened (CONNECT_ATTEMPTS, not the standard budget)."""
    from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

    never_sent = isinstance(kwargs["caught_exception"], EndpointConnectionError | ConnectTimeoutError)
    if never_sent and kwargs.get("attempts", 1) >= CONNECT_ATTEMPTS:
        return None
    if not is_read(kwargs["operation"].name) and outcome_unknown(kwargs["response"], kwargs["caught_exception"]):
        return None
    return botocore_retry(**kwargs)


def guard_writes(client: Any) -> Any:
    """Put `_needs_retry` in place of the standard retry handler botocore registered for this client."""
    from botocore.retries import standard

    events = client.meta.events
    service = client.meta.service_model.service_id.hyphenize()
    event, unique_id = f"needs-retry.{service}", f"retry-config-{service}"
    # botocore keeps no public handle on the handler it registered: register a new one to get one, then wrap it.
    events.unregister(event, unique_id=unique_id)
    attempts = client.meta.config.retries.get("total_max_attempts")
    handler = standard.register_retry_handler(client, max_attempts=attempts)
    events.unregister(event, unique_id=unique_id)
    events.register(event, partial(_needs_retry, handler.needs_retry), unique_id=unique_id)
    return client


class AwsClients:
    """A cache of thread-safe boto3 clients for one environment.

    boto3 sessions are not thread-safe but clients are, so clients are made once under a lock and shared
    by the engine's worker threads.
    """

    def __init__(self, settings: AwsSettings | None = None, max_pool_connections: int = 32) -> None:
        self.settings = apply_overrides(settings or AwsSettings())
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}
        self._session: boto3.Session | None = None
        self.pacer = Pacer(rates_for(self.endpoint_url, self.settings.rate_limits))
        self._max_pool_connections = max_pool_connections

    def _client_config(self) -> Any:
        from botocore.config import Config

        return Config(
            retries={"mode": "standard", "max_attempts": 8},
            max_pool_connections=self._max_pool_connections,
            connect_timeout=CONNECT_TIMEOUT,
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
            import boto3

            with map_aws_errors("AWS profile"):
                self._session = boto3.Session(profile_name=self.settings.profile, region_name=self.settings.region)
        return self._session

    def client(self, service: str, region: str | None = None) -> Any:
        """The environment's client for `service`; `region` for another region's (an S3 replica's)."""
        key = service if region is None else f"{service}@{region}"
        with self._lock:
            if key not in self._clients:
                kwargs: dict[str, Any] = {"region_name": region or self.region, "config": self._client_config()}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                client = self._get_session().client(service, **kwargs)  # type: ignore[call-overload]
                self._clients[key] = self.pacer.attach(guard_writes(client), service)
            return self._clients[key]

    def account_id(self) -> str:
        with map_aws_errors("sts:GetCallerIdentity"):
            return str(self.client("sts").get_caller_identity()["Account"])
