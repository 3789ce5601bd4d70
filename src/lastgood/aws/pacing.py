"""Client-side pacing: a token bucket per AWS API, so that a rollback of 1,000 components stays under the
account's request quotas instead of spending its retries on throttles.

AWS throttles its control planes per account and region (Lambda's answers about 15 requests a second). With
16 workers and calls of a few milliseconds, a rollback would ask for hundreds a second, be refused, and back off
at random; botocore's standard retries give up after 8 attempts and its retry quota runs dry, so steps fail.
Paced, every request waits for a token before it is sent (each retry too) and the rollback runs at the quota.

A call takes its token from the bucket of its operation (`service:Operation`) when the file or the defaults
name one, else from its service's bucket; a service with no rate is not paced. The buckets are botocore's own
(`botocore.retries.bucket.TokenBucket`, the one its adaptive mode uses): they hold a second's worth of tokens,
so a burst after a pause is as large as the rate. One set of buckets per environment's clients, shared by
every thread of the process; other processes calling the same account share the quota but not the buckets.

The defaults apply to AWS's own endpoints (no `endpoint_url`, or one under amazonaws.com or api.aws, such as a
VPC endpoint); a local emulator (moto, LocalStack) has no quota, so there only the file's rates pace.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:  # botocore is imported when the first bucket is made: commands that call no AWS API skip it
    from botocore.retries.bucket import TokenBucket

DEFAULT_RATES: Mapping[str, float] = {
    # Lambda: the control plane (every API but Invoke, GetFunction and GetPolicy) shares 15 requests a second.
    "lambda": 15.0,
    "lambda:GetFunction": 100.0,
    "lambda:GetPolicy": 15.0,
    # Parameter Store at its standard throughput: 40 transactions a second.
    "ssm": 40.0,
    # Secrets Manager: 50 a second for writes and version listings; its reads 10,000.
    "secretsmanager": 50.0,
    "secretsmanager:GetSecretValue": 10000.0,
    "secretsmanager:DescribeSecret": 10000.0,
    # Route 53's API: 5 requests a second per account.
    "route53": 5.0,
}
"""Requests a second, from AWS's published default quotas; `aws.rate_limits` in the file overrides any of them
(0: not paced)."""


AWS_DOMAINS = (".amazonaws.com", ".amazonaws.com.cn", ".api.aws")


def is_aws_endpoint(endpoint_url: str | None) -> bool:
    host = (urlsplit(endpoint_url).hostname or "") if endpoint_url else ""
    return endpoint_url is None or host.endswith(AWS_DOMAINS)


def rates_for(endpoint_url: str | None, overrides: Mapping[str, float]) -> dict[str, float]:
    """The rates that pace calls to this endpoint: AWS's defaults (on AWS's endpoints) and the file's."""
    return {**(DEFAULT_RATES if is_aws_endpoint(endpoint_url) else {}), **overrides}


class MonotonicClock:
    """The clock botocore's bucket reads (its `Clock`'s two methods): monotonic, so a wall-clock jump neither
    stalls nor floods the calls."""

    def sleep(self, amount: float) -> None:
        time.sleep(amount)

    def current_time(self) -> float:
        return time.monotonic()


class Pacer:
    """The buckets of one environment's clients, made on first use."""

    def __init__(self, rates: Mapping[str, float]) -> None:
        self.rates = dict(rates)
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self._clock = MonotonicClock()
        self.waited = 0.0  # seconds the calls spent waiting for tokens, all threads together

    def key_for(self, service: str, operation: str) -> str | None:
        """The bucket a call takes its token from: its operation's, else its service's; None: not paced."""
        for key in (f"{service}:{operation}", service):
            if key in self.rates:
                return key if self.rates[key] > 0 else None
        return None

    def bucket(self, key: str) -> TokenBucket:
        with self._lock:
            if key not in self._buckets:
                from botocore.retries.bucket import TokenBucket

                clock: Any = self._clock  # duck-typed: botocore reads only sleep() and current_time()
                self._buckets[key] = TokenBucket(self.rates[key], clock, min_rate=self.rates[key])
            return self._buckets[key]

    def wait_for_token(self, service: str, operation: str) -> None:
        key = self.key_for(service, operation)
        if key is None:
            return
        started = time.monotonic()
        self.bucket(key).acquire()
        waited = time.monotonic() - started
        with self._lock:
            self.waited += waited

    def attach(self, client: Any, service: str) -> Any:
        """Every request this client sends (each attempt, retries included) first takes a token."""

        def before_send(event_name: str, **_: Any) -> None:
            self.wait_for_token(service, event_name.rsplit(".", 1)[-1])

        client.meta.events.register("before-send", before_send, unique_id="lastgood-pacing")
        return client
