"""Counting the HTTP requests boto3 really sends (retries included), per service and operation.

botocore emits `before-send.<service>.<Operation>` once per request put on the wire; a handler that returns
None lets it go. Tests pin each kind's calls per component with it, and bench/rollback_speed.py prints them.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from functools import partial
from typing import Any

from lastgood.aws.clients import AwsClients


class CallCounter:
    """Counts what the clients of `aws` send for `services` (boto3 client names) from now on."""

    def __init__(self, aws: AwsClients, services: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[tuple[str, str]] = Counter()
        for service in services:
            handler = partial(self._sent, service)
            aws.client(service).meta.events.register("before-send", handler, unique_id=f"lastgood-calls-{id(self)}")

    def _sent(self, service: str, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.calls[(service, operation)] += 1

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def of(self, service: str) -> dict[str, int]:
        """Operation -> requests sent, for one service."""
        with self._lock:
            return {op: n for (svc, op), n in sorted(self.calls.items()) if svc == service}

    def total(self, service: str) -> int:
        return sum(self.of(service).values())
