"""A traffic simulator: each second, Poisson requests split by the alias weights, errors by each version's rate,
written to CloudWatch as AWS/Lambda Invocations and Errors, as Lambda itself would: for the whole function
(FunctionName) and per version served through the alias (FunctionName, Resource `function:alias`,
ExecutedVersion), which is what the canary judge reads."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from lastgood.aws.clients import AwsClients


@dataclass
class FunctionTraffic:
    name: str
    requests_per_second: float
    error_rate_by_version: dict[str, float] = field(default_factory=dict)
    default_error_rate: float = 0.005


class TrafficSimulator:
    def __init__(self, aws: AwsClients, functions: list[FunctionTraffic], seed: int = 7) -> None:
        self.aws = aws
        self.functions = functions
        self.random = np.random.default_rng(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="traffic", daemon=True)
        self.seconds = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        written: datetime | None = None
        while not self._stop.is_set():
            # Stamped at the second's start, so each datapoint lands in exactly one 1-second period; every second
            # gets one, also those a stalled thread (a loaded machine) slept through, as Lambda's own metrics do.
            now = datetime.now(UTC).replace(microsecond=0)
            second = now if written is None else min(written + timedelta(seconds=1), now)
            self.tick(second)
            written = second
            self.seconds += 1
            if second == now:
                self._stop.wait(1.0 - datetime.now(UTC).microsecond / 1e6)

    def tick(self, at: datetime) -> None:
        data = []
        for function in self.functions:
            by_version = self._one_second(function)
            total = float(sum(served for served, _ in by_version.values()))
            errors = float(sum(failed for _, failed in by_version.values()))
            data += _counts([{"Name": "FunctionName", "Value": function.name}], at, total, errors)
            for version, (served, failed) in by_version.items():
                if served == 0:
                    continue  # Lambda publishes nothing for a version that served nothing
                dimensions = [
                    {"Name": "FunctionName", "Value": function.name},
                    {"Name": "Resource", "Value": f"{function.name}:{ALIAS}"},
                    {"Name": "ExecutedVersion", "Value": version},
                ]
                data += _counts(dimensions, at, float(served), float(failed))
        self.aws.client("cloudwatch").put_metric_data(Namespace="AWS/Lambda", MetricData=data)

    def _one_second(self, function: FunctionTraffic) -> dict[str, tuple[int, int]]:
        """Requests and errors per version served this second."""
        alias = self.aws.client("lambda").get_alias(FunctionName=function.name, Name=ALIAS)
        weights = {
            str(k): float(v) for k, v in (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights", {}).items()
        }
        shares = {str(alias["FunctionVersion"]): 1.0 - sum(weights.values()), **weights}
        left = int(self.random.poisson(function.requests_per_second))
        out: dict[str, tuple[int, int]] = {}
        remaining_share = 1.0
        for version, share in shares.items():
            # A multinomial split, one version at a time: the versions' requests add up to the total.
            p = min(1.0, max(0.0, share / remaining_share)) if remaining_share > 0 else 0.0
            served = int(self.random.binomial(left, p))
            left -= served
            remaining_share -= share
            rate = function.error_rate_by_version.get(version, function.default_error_rate)
            out[version] = (served, int(self.random.binomial(served, rate)))
        return out


ALIAS = "live"


def _counts(dimensions: list[dict[str, str]], at: datetime, requests: float, errors: float) -> list[dict[str, Any]]:
    return [
        {
            "MetricName": name,
            "Dimensions": dimensions,
            "Timestamp": at,
            "Value": value,
            "Unit": "Count",
            "StorageResolution": 1,
        }
        for name, value in (("Invocations", requests), ("Errors", errors))
    ]
